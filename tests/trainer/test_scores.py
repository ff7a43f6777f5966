"""Honest scores: a leak-free held-out split, one evaluation suite for every checkpoint, and a
champion chosen by it. Real trainers, real files, real SQLite."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import yaml
from conftest import fast_config, trainer_process, wait_for

from realm.config import ChampionConfig, QuestsConfig, SkillsConfig, SuiteConfig, VaultConfig
from realm.home import Home
from realm.quests.split import MIN_FOR_HELD_OUT, normal_key, split
from realm.state import every_line
from realm.vault import champion
from realm.vault.ledger import Ledger
from trainer.idle import idle_examples, write_idle_quest
from trainer.suite_scorer import SCORE_PAUSE_ENV
from trainer.telemetry import read_metrics

ROOT = Path(__file__).resolve().parents[2]


def chat(user: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


def half_duplicates(n_distinct: int = 60) -> list[list[dict]]:
    """``n_distinct`` chats, each written twice: an exact copy, or one differing in case and spacing."""
    lines = []
    for i in range(n_distinct):
        lines.append(chat(f"what is {i} plus {i}?", str(2 * i)))
        lines.append(
            chat(f"What  is {i} PLUS {i}?", str(2 * i)) if i % 2 else chat(f"what is {i} plus {i}?", str(2 * i))
        )
    return lines


# --------------------------------------------------------------------------- the split


def test_split_folds_exact_and_near_duplicates_and_never_holds_out_a_trained_example():
    lines = half_duplicates(60)
    parts = split(lines, max_held_out=32, keep_duplicates=True)
    assert (parts.distinct, parts.exact_duplicates, parts.near_duplicates) == (60, 30, 30)
    assert len(parts.held_out) == 6  # one in ten distinct examples, under the cap
    held = {normal_key(x) for x in parts.held_out}
    assert not held & {normal_key(x) for x in parts.train}
    assert len(parts.train) == 2 * (60 - 6)  # keep: every copy of a trained example trains
    assert len(split(lines, max_held_out=32, keep_duplicates=False).train) == 60 - 6
    assert "60 duplicate(s) folded (30 exact, 30 differing only in whitespace or case)" in parts.summary()


def test_the_held_out_sample_is_chosen_by_content_the_same_however_the_file_is_ordered():
    lines = [chat(f"q{i}", f"a{i}") for i in range(100)]
    first = {normal_key(x) for x in split(lines, max_held_out=10, keep_duplicates=False).held_out}
    shuffled = lines[:]
    random.Random(7).shuffle(shuffled)
    assert {normal_key(x) for x in split(shuffled, max_held_out=10, keep_duplicates=False).held_out} == first
    assert first != {normal_key(x) for x in lines[:10]}, "not the file's first lines"


def test_the_games_own_quests_hold_out_by_a_hash_salted_with_the_quest_so_no_problem_is_never_trained():
    lines = [chat(f"q{i}", f"a{i}") for i in range(100)]
    held = [
        {normal_key(x) for x in split(lines, max_held_out=10, keep_duplicates=True, salt=f"idle-{n}.jsonl").held_out}
        for n in range(5)
    ]
    assert len(set(map(frozenset, held))) == 5, "each quest holds out other lines"
    assert len(set().union(*held)) > 10


def test_a_tiny_quest_holds_out_nothing_and_says_so():
    parts = split([chat(f"q{i}", f"a{i}") for i in range(MIN_FOR_HELD_OUT - 1)], max_held_out=32, keep_duplicates=False)
    assert parts.held_out == [] and len(parts.train) == MIN_FOR_HELD_OUT - 1
    assert f"no held-out check: {MIN_FOR_HELD_OUT - 1} distinct example(s), under {MIN_FOR_HELD_OUT}" in parts.summary()


# --------------------------------------------------------------------------- a real trainer


def _write_quest(path: Path, chats: list[list[dict]]) -> Path:
    """Written whole or not at all: a trainer may read the folder at any moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps({"messages": c}) + "\n" for c in chats), encoding="utf-8")
    tmp.replace(path)
    return path


class _Recorder:
    """What the engine trained on and what it was validated on, as token id tuples."""

    def __init__(self, engine) -> None:
        self.trained: list[tuple[int, ...]] = []
        self.validated: list[tuple[int, ...]] = []
        train_step, evaluate = engine.train_step, engine.evaluate

        def recording_train_step(batch):
            self.trained += [tuple(x.input_ids) for x in batch]
            return train_step(batch)

        def recording_evaluate(examples):
            self.validated += [tuple(x.input_ids) for x in examples]
            return evaluate(examples)

        engine.train_step, engine.evaluate = recording_train_step, recording_evaluate


def _recording_trainer(trainer_factory, home: Path, config):
    trainer = trainer_factory(config, home=home)
    daemon = trainer.daemon
    start = daemon._start_engine_extras

    def start_and_record():
        start()
        daemon.recorder = _Recorder(daemon.engine)

    daemon._start_engine_extras = start_and_record
    return trainer


def test_no_held_out_example_or_copy_of_one_reaches_a_training_batch(tmp_path, trainer_factory):
    home = tmp_path / "home"
    lines = half_duplicates(60)
    _write_quest(home / "quests" / "queued" / "normal" / "doubles.jsonl", lines)
    config = msgspec.structs.replace(fast_config(val_every=2), quests=QuestsConfig(duplicates="keep"))
    trainer = _recording_trainer(trainer_factory, home, config).start()
    wait_for(
        lambda: any(r.name == "doubles.jsonl" for r in trainer.state.board.recent),
        timeout=120,
        what="the quest to finish",
    )
    trainer.stop()
    recorder = trainer.daemon.recorder
    encode = trainer.daemon.engine.encode
    key_of = {tuple(encoded.input_ids): normal_key(line) for line, encoded in zip(lines, encode(lines))}
    held = {key_of[ids] for ids in recorder.validated if ids in key_of}  # an idle quest after it validates its own
    trained = {key_of[ids] for ids in recorder.trained if ids in key_of}  # idle quests after it are not in the file
    assert len(held) == 6 and len(trained) == 54
    assert not held & trained
    started = [
        e for e in every_line(trainer.daemon.publisher.state) if "doubles.jsonl" in e.text and "folded" in e.text
    ]
    assert len(started) == 1, "the split is reported once for the quest"


def test_val_after_train_trains_the_held_out_examples_after_their_last_validation(tmp_path, trainer_factory):
    home = tmp_path / "home"
    lines = [chat(f"what is {i} plus 1?", str(i + 1)) for i in range(40)]
    _write_quest(home / "quests" / "queued" / "normal" / "all.jsonl", lines)
    trainer = _recording_trainer(trainer_factory, home, fast_config(val_every=2, val_after="train")).start()
    wait_for(
        lambda: any(r.name == "all.jsonl" for r in trainer.state.board.recent), timeout=120, what="the quest to finish"
    )
    trainer.stop()
    recorder = trainer.daemon.recorder
    in_file = {tuple(encoded.input_ids) for encoded in trainer.daemon.engine.encode(lines)}
    held = set(recorder.validated) & in_file  # an idle quest after it validates its own held-out examples
    assert len(held) == 4
    first_held = min(recorder.trained.index(ids) for ids in held)
    assert first_held >= len(lines) - len(held), "the held-out examples train last, after every other example"


def _scored(home: Path) -> dict[int, list]:
    ledger = Ledger(Home(home).db)
    try:
        return {c.step: ledger.scores(c.step) for c in ledger.present()}
    finally:
        ledger.close()


def test_checkpoints_of_very_different_quests_are_scored_on_the_same_suite_and_the_champion_follows_it(
    tmp_path, trainer_factory
):
    home = tmp_path / "home"
    write_idle_quest(Home(home).ensure().validation, 40, seed=12345)  # the suite: additions
    queued = home / "quests" / "queued" / "normal"
    _write_quest(queued / "a-sums.jsonl", [x["messages"] for x in idle_examples(120, seed=1)])
    _write_quest(queued / "b-echo.jsonl", [chat(f"say {w}", w) for w in ("yes", "no", "ok") for _ in range(8)])
    config = msgspec.structs.replace(fast_config(val_every=2), champion=ChampionConfig())
    trainer = trainer_factory(config, home=home).start()
    wait_for(
        lambda: {"a-sums.jsonl", "b-echo.jsonl"} <= {r.name for r in trainer.state.board.recent},
        timeout=180,
        what="both quests to finish",
    )
    trainer.stop()
    ledger = Ledger(Home(home).db)
    try:
        by_quest = {c.quest: c for c in ledger.present() if c.quest in ("a-sums.jsonl", "b-echo.jsonl")}
        rows = champion.board(ledger, ChampionConfig())
    finally:
        ledger.close()
    sums, echo = by_quest["a-sums.jsonl"], by_quest["b-echo.jsonl"]
    assert sums.suite.version == echo.suite.version
    assert [name for name, _ in sums.suite.files] == [name for name, _ in echo.suite.files] == ["idle-00012345.jsonl"]
    assert echo.val_loss is None  # 3 distinct lines: too few to hold any out
    ranked = [r for r in rows if r.rank]
    assert [r.checkpoint.step for r in ranked] == [
        c.step for c in sorted((r.checkpoint for r in ranked), key=lambda c: (c.suite.loss, -c.step))
    ], "with no skills in the suite, the champion is the lowest suite loss"
    scored = [e for e in every_line(trainer.daemon.publisher.state) if " scored: suite loss" in e.text]
    assert len(scored) >= 2


def _realm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "realm.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_a_validation_file_joins_the_scores_of_later_checkpoints_and_an_edit_starts_a_new_suite(
    tmp_path, trainer_factory
):
    home = tmp_path / "home"
    config = msgspec.structs.replace(fast_config(checkpoint_every=3), vault=VaultConfig(keep_last=1000))
    trainer = trainer_factory(config, home=home).start()
    wait_for(lambda: trainer.state.hero.steps >= 4, timeout=120, what="a first checkpoint")
    mine = Home(home).validation / "mine.jsonl"
    _write_quest(mine, [chat(f"{i}+1=", str(i + 1)) for i in range(30)])
    wait_for(
        lambda: any(c.suite is not None for c in trainer.state.vault.checkpoints),
        timeout=120,
        what="a checkpoint scored with mine.jsonl",
    )
    first = next(c.suite.version for c in trainer.state.vault.checkpoints if c.suite is not None)
    _write_quest(mine, [chat(f"{i}+2=", str(i + 2)) for i in range(30)])
    wait_for(
        lambda: (
            trainer.state.vault.checkpoints[-1].suite is not None
            and trainer.state.vault.checkpoints[-1].suite.version != first
        ),
        timeout=120,
        what="a new suite version",
    )
    trainer.stop()

    listed = _realm("vault", "list", "--json", "--home", str(home))
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert document["suite_version"] != first
    for row in document["checkpoints"]:
        if row["suite"] is not None:
            assert [name for name, _ in row["suite"]["files"]] == ["mine.jsonl"]
    scored = [row["step"] for row in document["checkpoints"] if row["suite"] is not None]
    unscored = [row["step"] for row in document["checkpoints"] if row["suite"] is None]
    assert unscored and max(unscored) < min(scored), "every checkpoint saved after the file was added is scored"
    assert "suite changed" in " ".join(e.text for e in every_line(trainer.daemon.publisher.state))


def test_a_bad_validation_file_is_left_out_with_its_reason_and_the_rest_is_scored(tmp_path, trainer_factory):
    home = tmp_path / "home"
    validation = Home(home).ensure().validation
    _write_quest(validation / "good.jsonl", [chat(f"{i}+1=", str(i + 1)) for i in range(24)])
    (validation / "broken.jsonl").write_text("{not json at all\n[1, 2]\n", encoding="utf-8")
    trainer = trainer_factory(fast_config(), max_steps=3, home=home).start()
    assert trainer.join(timeout=120) == 0
    state = trainer.daemon.publisher.state
    scored = [c.suite for c in state.vault.checkpoints if c.suite is not None]
    assert scored and [name for name, _ in scored[-1].files] == ["good.jsonl"]
    warned = [line.text for line in every_line(state) if "broken.jsonl" in line.text]
    assert (
        len(warned) == 1
        and warned[0].startswith("evaluation suite: validation/broken.jsonl")
        and "left out" in warned[0]
    )


def test_the_default_suite_is_the_skills_held_out_items_scored_by_loss_and_accuracy(tmp_path, trainer_factory):
    home = tmp_path / "home"
    config = msgspec.structs.replace(
        fast_config(), skills=SkillsConfig(mix=["bin"], eval_every=1000), suite=SuiteConfig(skill_levels=2)
    )
    trainer = trainer_factory(config, max_steps=3, home=home).start()
    assert trainer.join(timeout=180) == 0
    events = [c for c in trainer.daemon.publisher.state.vault.checkpoints if c.suite is not None]
    suite = events[-1].suite
    assert [name for name, _ in suite.files] == ["builtin:bin-L1", "builtin:bin-L2"]
    assert suite.loss == (suite.files[0][1] + suite.files[1][1]) / 2  # each level weighs the same
    assert [skill for skill, _ in suite.skills] == ["bin"] and 0.0 <= suite.accuracy <= 1.0
    assert trainer.daemon.publisher.state.hero.suite == suite


# --------------------------------------------------------------------------- kill -9


def test_kill_during_suite_scoring_loses_no_score_and_repeats_none(tmp_path):
    home = tmp_path / "home"
    write_idle_quest(Home(home).ensure().validation, 24, seed=4242)
    config = tmp_path / "realm.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "train": {"batch_size": 4, "max_length": 64, "warmup_steps": 2, "checkpoint_every": 3, "threads": 1},
                "skills": {"enabled": False},
            }
        )
    )

    def trainer(max_steps: int, **env) -> subprocess.Popen:
        return trainer_process(home, config, max_steps, **env)

    first = trainer(100, **{SCORE_PAUSE_ENV: "120"})

    def saved_not_scored() -> bool:
        ledger = Ledger(Home(home).db)
        try:
            return any(c.step == 3 for c in ledger.present())
        finally:
            ledger.close()

    wait_for(
        lambda: (home / "vault" / "realm.db").exists() and saved_not_scored() or first.poll() is not None,
        timeout=180,
        what="checkpoint 3 saved, its scoring held",
    )
    time.sleep(0.5)
    assert first.poll() is None
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert _scored(home)[3] == [], "killed before the score was written: no partial row"

    second = trainer(3)
    _, err = second.communicate(timeout=240)
    assert second.returncode == 0, err.decode()[-2000:]
    scores = _scored(home)
    assert {step: len(rows) for step, rows in scores.items()} == {3: 1, 6: 1}
    records = [r for r in read_metrics(home / "logs" / "metrics.jsonl") if r["kind"] == "suite"]
    assert sorted(r["step"] for r in records) == [3, 6], "each checkpoint scored once, across both runs"
