"""The trainer for real: DIO-nano trains real steps, pauses, stops, resumes, survives bad quests."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import msgspec
import pytest
from conftest import fast_config, wait_for, write_chat_quest

from realm.bus import TrainerUnreachable
from realm.config import ModelConfig
from realm.errors import SetupError
from realm.protocol import Ack, PauseRequest, ResumeRequest, StopRequest
from realm.state import every_line
from realm.vault.checkpoints import complete_checkpoints, parse_step, read_sidecar
from realm.vault.ledger import Ledger
from trainer import quest_board
from trainer.daemon import TrainerBusy
from trainer.telemetry import read_metrics


def test_trains_a_quest_and_loss_goes_down(trainer_factory, tmp_path):
    home = tmp_path / "home"
    write_chat_quest(home / "quests" / "queued" / "normal" / "reverse.jsonl", n=200)
    trainer = trainer_factory(fast_config(lr=3e-3, batch_size=8), max_steps=60, home=home)
    assert trainer.start().join() == 0

    losses = [loss for _, loss in trainer.state.battle.losses]
    assert len(losses) == 60
    assert statistics.mean(losses[-10:]) < 0.5 * statistics.mean(losses[:10])
    assert trainer.state.hero.steps == 60
    assert trainer.state.hero.val_loss is not None
    assert trainer.state.battle.status == "stopped"
    assert (trainer.state.battle.gpu, trainer.state.battle.gpu_memory_mb) == (None, None)  # a CPU trainer reads no GPU
    steps = [r for r in read_metrics(home / "logs" / "metrics.jsonl") if r["kind"] == "step"]
    assert len(steps) == 60 and steps[-1]["gpu"] is None


def test_a_victory_carries_the_rows_trained_and_the_held_out_loss_before_and_after(trainer_factory, tmp_path):
    home = tmp_path / "home"
    write_chat_quest(home / "quests" / "queued" / "normal" / "reverse.jsonl", n=200)
    trainer = trainer_factory(fast_config(lr=3e-3, batch_size=8, val_every=1000), max_steps=40, home=home)
    assert trainer.start().join() == 0

    won = next(r for r in trainer.state.board.recent if r.name == "reverse.jsonl")
    vals = [r for r in read_metrics(home / "logs" / "metrics.jsonl") if r["kind"] == "val"]
    assert vals[0]["step"] == 0 and vals[0]["val_loss"] == won.val_loss_start  # measured before the first step
    assert vals[1]["step"] == won.steps and vals[1]["val_loss"] == won.val_loss_end  # and after the last
    assert won.val_loss_end < won.val_loss_start
    assert (won.steps - 1) * 8 < won.examples_trained <= won.steps * 8 and won.examples_trained < 200  # some held out
    victory = f"Victory: reverse.jsonl — val {won.val_loss_start:.3f}→{won.val_loss_end:.3f}, "
    victory += f"{won.examples_trained} rows, {won.steps} steps"
    assert victory in [line.text for line in trainer.state.log]


def test_pause_takes_effect_within_one_step_and_resume_continues(trainer_factory):
    trainer = trainer_factory().start()
    wait_for(lambda: trainer.state.hero.steps >= 3, what="a few training steps")

    reply = trainer.client.request(PauseRequest())
    asked_at = trainer.state.hero.steps
    assert isinstance(reply, Ack)
    wait_for(lambda: trainer.state.battle.status == "paused", what="the paused status")
    paused_at = trainer.state.hero.steps
    assert paused_at <= asked_at + 1
    time.sleep(0.5)  # several step-times: a trainer that ignored the pause would move on
    assert trainer.state.hero.steps == paused_at, "a paused trainer took a step"
    assert trainer.state.battle.status == "paused"

    trainer.client.request(ResumeRequest())
    wait_for(lambda: trainer.state.hero.steps > paused_at + 2, what="training to resume")
    assert trainer.state.battle.status == "training"

    trainer.client.request(StopRequest())
    assert trainer.join() == 0


def test_stop_saves_a_checkpoint_and_a_restart_resumes_from_it(trainer_factory, tmp_path):
    home = tmp_path / "home"
    first = trainer_factory(max_steps=12, home=home).start()
    assert first.join() == 0

    checkpoints = complete_checkpoints(home / "vault" / "checkpoints")
    assert [parse_step(c.name) for c in checkpoints] == [12]
    folder = checkpoints[0]
    assert (folder / "model.safetensors").exists()
    sidecar = read_sidecar(folder)
    assert sidecar["step"] == 12 and len(sidecar["sha256"]) == 64 and sidecar["train_loss"] > 0
    ledger = Ledger(home / "vault" / "realm.db")
    assert [c.step for c in ledger.present()] == [12]
    ledger.close()

    second = trainer_factory(max_steps=5, home=home).start()
    wait_for(lambda: second.state.trainer is not None, what="TrainerStarted")
    assert second.join() == 0
    assert second.daemon.start_step == 12
    assert second.state.hero.steps == 17
    assert [c.step for c in second.state.vault.checkpoints] == [12, 17]

    # a typo in model.name: the run loaded the vault's weights and trained them under the typo's name and profile
    typo = msgspec.structs.replace(fast_config(), model=ModelConfig(name="/nonexistent/model"))
    with pytest.raises(SetupError) as refused:
        trainer_factory(typo, max_steps=5, home=home).start()
    latest = complete_checkpoints(home / "vault" / "checkpoints")[-1].name
    assert str(refused.value) == (
        f"model.name is /nonexistent/model, but this home's vault holds builtin:dio-nano (latest {latest}): "
        "set model.name: builtin:dio-nano to go on training it, or give /nonexistent/model a home of its own (--home DIR)"
    )
    assert [parse_step(c.name) for c in complete_checkpoints(home / "vault" / "checkpoints")] == [12, 17]


def test_bad_quest_is_moved_aside_with_a_reason_and_training_goes_on(trainer_factory, tmp_path):
    home = tmp_path / "home"
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "broken.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n')
    (inbox / "array.jsonl").write_text('[{"messages": []}]\n')
    (inbox / "deep.jsonl").write_text("[" * 100_000 + "\n")  # each of these two stopped the trainer at every start
    (inbox / "lone.jsonl").write_text('{"prompt": "\\ud800", "completion": "x"}\n' * 5)
    write_chat_quest(inbox / "good.jsonl", n=40)
    old = time.time() - 10  # older than the inbox's settle time
    for path in inbox.iterdir():
        os.utime(path, (old, old))

    trainer = trainer_factory(fast_config(), max_steps=15, home=home).start()
    assert trainer.join() == 0

    failed = home / "quests" / "failed"
    assert sorted(p.name for p in failed.glob("*.jsonl")) == ["array.jsonl", "broken.jsonl", "deep.jsonl", "lone.jsonl"]
    assert "nested too deep" in (failed / "deep.jsonl.reason.txt").read_text()
    assert "half a UTF-16 pair" in (failed / "lone.jsonl.reason.txt").read_text()
    reason = (failed / "broken.jsonl.reason.txt").read_text()
    assert "line 2: not valid JSON" in reason and "1 of 2 lines (50%) are bad" in reason
    quarantined = (home / "quests" / "quarantine" / "broken.jsonl.quarantine.jsonl").read_text()
    assert '"line": 2' in quarantined and '"raw": "not json"' in quarantined
    assert "one JSON object per line" in (failed / "array.jsonl.reason.txt").read_text()
    outcomes = {r.name: r.outcome for r in trainer.state.board.recent}
    assert outcomes["broken.jsonl"] == "failed" and outcomes["array.jsonl"] == "failed"
    assert outcomes.get("good.jsonl") == "done"
    assert trainer.state.hero.steps == 15  # training went on
    assert trainer.state.hero.quests_completed >= 1


def test_a_second_trainer_on_the_same_home_is_refused(trainer_factory, tmp_path):
    home = tmp_path / "home"
    trainer_factory(home=home).start()
    second = trainer_factory(home=home)
    with pytest.raises(TrainerBusy, match="already runs"):
        second.daemon.run()


def test_requests_to_a_stopped_trainer_fail_fast(trainer_factory):
    trainer = trainer_factory(max_steps=1).start()
    trainer.join()
    trainer.client.timeout_s, trainer.client.retries = 0.2, 1
    with pytest.raises(TrainerUnreachable, match="trainer-ctl"):
        trainer.client.request(PauseRequest())


def test_the_trainer_never_imports_textual():
    code = "import sys, trainer.daemon, trainer.engine, realm.cli.main; assert 'textual' not in sys.modules, 'textual'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_idle_quests_that_fail_whole_pause_the_trainer_instead_of_spinning(trainer_factory):
    """An empty queue makes the next idle quest at once: one that fails whole every time (here every
    example is longer than train.max_length) must not spin without a step. The trainer pauses, says
    why, and a resume tries again."""
    from trainer.training_loop import OWN_FAILURES_TO_PAUSE

    config = fast_config(max_length=4)
    trainer = trainer_factory(config).start()
    wait_for(lambda: trainer.state.battle.status == "paused", what="the pause")
    reason = trainer.state.battle.reason
    assert f"the game's own quests failed {OWN_FAILURES_TO_PAUSE} times in a row" in reason
    assert "quests/failed/" in reason and "Resume to try again" in reason
    failed = sorted((trainer.home / "quests" / "failed").glob("idle-*.jsonl"))
    assert len(failed) == OWN_FAILURES_TO_PAUSE and trainer.state.hero.steps == 0
    assert "longer than train.max_length" in (failed[0].parent / f"{failed[0].name}.reason.txt").read_text()
    trainer.client.request(ResumeRequest())
    failed_now = lambda: len(list((trainer.home / "quests" / "failed").glob("idle-*.jsonl")))  # noqa: E731
    wait_for(lambda: failed_now() == 2 * OWN_FAILURES_TO_PAUSE, what="three more tries")
    wait_for(lambda: trainer.state.battle.status == "paused", what="the second pause")


def test_a_check_that_breaks_fails_its_quest_and_training_goes_on(trainer_factory, tmp_path, monkeypatch):
    """A fault no rule foresaw, at intake or before the battle, fails that one file (a file that
    stopped the trainer would stop it again at each start) and says it is ours to fix."""
    home = tmp_path / "home"
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    for name in ("at-intake.jsonl", "before-battle.jsonl", "good.jsonl"):
        write_chat_quest(inbox / name, n=40)
    old = time.time() - 10
    for path in inbox.iterdir():
        os.utime(path, (old, old))

    def breaks(real, name):
        def check(path, *args, **kwargs):
            if path.name == name:
                raise RuntimeError("an unforeseen fault")
            return real(path, *args, **kwargs)

        return check

    monkeypatch.setattr(quest_board, "check_intake", breaks(quest_board.check_intake, "at-intake.jsonl"))
    monkeypatch.setattr(
        quest_board, "check_for_training", breaks(quest_board.check_for_training, "before-battle.jsonl")
    )
    trainer = trainer_factory(fast_config(), max_steps=15, home=home).start()
    assert trainer.join() == 0

    failed = home / "quests" / "failed"
    for name in ("at-intake.jsonl", "before-battle.jsonl"):
        reason = (failed / f"{name}.reason.txt").read_text()
        assert "could not be checked (RuntimeError: an unforeseen fault); a bug in realm" in reason, reason
    assert {r.name: r.outcome for r in trainer.state.board.recent}["good.jsonl"] == "done"
    assert trainer.state.hero.steps == 15


def test_a_quest_cut_by_a_stop_goes_on_first_after_a_restart_said_as_news(trainer_factory, tmp_path):
    home = tmp_path / "home"
    write_chat_quest(home / "quests" / "queued" / "normal" / "long.jsonl", n=400)
    assert trainer_factory(max_steps=3, home=home).start().join() == 0
    second = trainer_factory(max_steps=1, home=home).start()
    assert second.join() == 0
    said = [(line.level, line.text) for line in every_line(second.state) if "was interrupted" in line.text]
    assert said == [("info", "quest long.jsonl was interrupted; it is back at the front of the queue")]


def test_a_restarted_trainer_lists_the_quests_that_ended_in_earlier_runs(trainer_factory, tmp_path):
    """So the board can retry a quest that failed before the restart (it showed this run's alone)."""
    home = tmp_path / "home"
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "broken.jsonl").write_text("not json\n")
    write_chat_quest(inbox / "good.jsonl", n=8)
    old = time.time() - 10
    for path in inbox.iterdir():
        os.utime(path, (old, old))
    assert trainer_factory(max_steps=6, home=home).start().join() == 0

    second = trainer_factory(max_steps=1, home=home).start()
    wait_for(lambda: second.state.trainer is not None, what="TrainerStarted")
    ended = {r.name: r for r in second.state.board.recent}
    assert ended["broken.jsonl"].outcome == "failed" and "line 1: not valid JSON" in ended["broken.jsonl"].reason
    assert ended["good.jsonl"].outcome == "done" and ended["good.jsonl"].source == "inbox"
    assert second.state.hero.quests_completed == 1  # listed, not won again
    assert second.join() == 0
