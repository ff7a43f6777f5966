"""Quests trained for several epochs, and the plan that cuts a quest into steps."""

from __future__ import annotations

import json

import msgspec
import pytest
from conftest import fast_config, wait_for, write_chat_quest

from realm.cli.main import main as cli_main
from realm.home import Home
from trainer import lineage
from trainer.quest_board import quest_epochs
from trainer.quest_plan import QuestPlan


def test_the_plan_counts_examples_so_a_new_batch_size_recuts_only_the_rest():
    plan = QuestPlan([list(range(10)), list(range(10, 20)), ["h1", "h2", "h3"]], held_out=True)
    assert (plan.epochs, plan.examples, plan.total_steps(4)) == (2, 23, 3 + 3 + 1)
    plan.advance(len(plan.next_batch(4)))
    assert plan.next_batch(4) == [4, 5, 6, 7] and plan.total_steps(2) == 1 + 3 + 5 + 2
    plan.advance(4)
    assert plan.next_batch(4) == [8, 9], "a step never spans two passes"
    plan.advance(2)
    assert plan.epoch == 2 and not plan.in_held_out
    while not plan.at_held_out_start():
        plan.advance(len(plan.next_batch(3)))
    assert plan.in_held_out and plan.next_batch(8) == ["h1", "h2", "h3"]
    resumed = QuestPlan([list(range(10))], done=6, per_step=3)
    assert resumed.steps_done == 2 and resumed.next_batch(3) == [6, 7, 8]


def test_quest_epochs_come_from_the_quest_then_the_config(tmp_path):
    home = Home(tmp_path / "home").ensure()
    config = msgspec.structs.replace(fast_config(), quests=msgspec.structs.replace(fast_config().quests, epochs=3))
    assert quest_epochs(home, "plain.jsonl", config) == 3
    lineage.record(home, "mine.jsonl", {"source": "inbox", "epochs": 2})
    assert quest_epochs(home, "mine.jsonl", config) == 2


def test_a_two_epoch_quest_trains_its_rows_twice_each_pass_reshuffled(trainer_factory, tmp_path, capsys):
    home = tmp_path / "home"
    config = fast_config(val_examples=0, checkpoint_every=1000)
    config = msgspec.structs.replace(config, idle=msgspec.structs.replace(config.idle, enabled=False))
    trainer = trainer_factory(config, home=home).start()
    quest = write_chat_quest(tmp_path / "words.jsonl", n=64)  # 64 distinct lines: 16 steps of 4
    assert cli_main(["quest", "add", str(quest), "--epochs", "2", "--home", str(home)]) == 0
    assert "queued words.jsonl (normal, 2 epochs)" in capsys.readouterr().out
    wait_for(lambda: trainer.state.board.recent, what="the quest to finish")
    [result] = trainer.state.board.recent
    trainer.stop()
    assert result.outcome == "done" and result.steps == 32

    lines = (home / "logs" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    steps = [row for row in map(json.loads, lines) if row["kind"] == "step" and row["quest"] == "words.jsonl"]
    assert [(r["quest_epoch"], r["quest_epochs"]) for r in steps] == [(1, 2)] * 16 + [(2, 2)] * 16
    assert [r["quest_step"] for r in steps] == list(range(1, 33)) and {r["quest_total"] for r in steps} == {32}
    first, second = [r["tokens"] for r in steps[:16]], [r["tokens"] for r in steps[16:]]
    assert sum(first) == sum(second), "each epoch trains every line once"
    assert first != second, "the second pass is shuffled anew"


def test_quest_add_refuses_zero_epochs_in_one_line(tmp_path, capsys):
    quest = write_chat_quest(tmp_path / "words.jsonl", n=4)
    with pytest.raises(SystemExit) as exit_:
        cli_main(["quest", "add", str(quest), "--epochs", "0", "--home", str(tmp_path / "home")])
    assert exit_.value.code == 2
    assert "argument --epochs: 0 is not at least 1" in capsys.readouterr().err


def test_once_the_held_out_pass_is_trained_the_plan_says_so_to_the_end():
    plan = QuestPlan([[1, 2], ["h"]], held_out=True)
    plan.advance(2)
    assert plan.at_held_out_start() and plan.in_held_out
    plan.advance(1)
    assert plan.finished and plan.in_held_out  # no validation on lines just trained
