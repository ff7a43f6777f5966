"""Exact resume, proven with real trainer processes and SIGKILL.

One home trains uninterrupted to step N. Another is killed with SIGKILL mid-training, restarted,
killed again in the middle of a checkpoint save (the save is held open by a test hook after the
weights are written), and restarted to finish at step N. Every step's loss after each restart
must equal the uninterrupted run's within 1e-5, on the same quest and the same tokens (the same
example sequence), and both homes must end with the same quests done, each exactly once.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import yaml
from conftest import trainer_process, wait_for, write_chat_quest

from realm.vault.checkpoints import TEMP_PREFIX, complete_checkpoints, parse_step
from trainer.checkpointer import SAVE_PAUSE_ENV
from trainer.telemetry import read_metrics

ROOT = Path(__file__).resolve().parents[2]
TOTAL_STEPS = 14
CONFIG = {
    "train": {
        "batch_size": 4,
        "max_length": 64,
        "warmup_steps": 5,
        "checkpoint_every": 4,
        "val_every": 5,
        "val_examples": 4,
        "threads": 1,
    },
    "idle": {"examples": 32},
}


def _home(tmp_path: Path, name: str) -> tuple[Path, Path]:
    home = tmp_path / name
    write_chat_quest(home / "quests" / "queued" / "normal" / "reverse.jsonl", n=24)
    config = tmp_path / "realm.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    return home, config


def _trainer(home: Path, config: Path, max_steps: int, **env) -> subprocess.Popen:
    return trainer_process(home, config, max_steps, **env)


def _finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=240)
    assert process.returncode == 0, err.decode()[-2000:]


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def _steps(home: Path) -> dict[int, dict]:
    """The last record of every step: after a restart, the resumed run's."""
    path = home / "logs" / "metrics.jsonl"
    if not path.exists():
        return {}
    return {r["step"]: r for r in read_metrics(path) if r["kind"] == "step"}


def _latest_step(home: Path) -> int:
    found = complete_checkpoints(home / "vault" / "checkpoints")
    return parse_step(found[-1].name) if found else 0


def _done(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "quests" / "done").iterdir())


def test_sigkill_anywhere_then_restart_continues_the_same_loss_curve(tmp_path):
    reference_home, config = _home(tmp_path, "reference")
    _finish(_trainer(reference_home, config, TOTAL_STEPS))
    reference = _steps(reference_home)
    assert sorted(reference) == list(range(1, TOTAL_STEPS + 1))

    home, _ = _home(tmp_path, "killed")
    # 1. SIGKILL in the middle of training, a few steps past a checkpoint
    first = _trainer(home, config, TOTAL_STEPS)
    wait_for(lambda: max(_steps(home), default=0) >= 5 or first.poll() is not None, timeout=180, what="step 5")
    _kill(first)
    resumed_at = [_latest_step(home)]
    assert 0 < resumed_at[0] < TOTAL_STEPS

    # 2. SIGKILL in the middle of a checkpoint save: the weights are written, not yet published
    second = _trainer(home, config, TOTAL_STEPS, **{SAVE_PAUSE_ENV: "120"})
    checkpoints = home / "vault" / "checkpoints"

    def saving() -> bool:  # the engine has written everything; the save is held before publishing
        partials = [p for p in checkpoints.iterdir() if p.name.startswith(TEMP_PREFIX)]
        return any((p / "training_state.pt").exists() for p in partials)

    wait_for(lambda: saving() or second.poll() is not None, timeout=180, what="a checkpoint save in progress")
    assert second.poll() is None
    _kill(second)
    resumed_at.append(_latest_step(home))

    # 3. restart and finish
    _finish(_trainer(home, config, TOTAL_STEPS - resumed_at[-1]))
    assert not any(p.name.startswith(TEMP_PREFIX) for p in checkpoints.iterdir()), "the partial save was cleared"

    resumed = _steps(home)
    assert sorted(resumed) == list(range(1, TOTAL_STEPS + 1))
    for step in range(1, TOTAL_STEPS + 1):
        mine, theirs = resumed[step], reference[step]
        assert (mine["quest"], mine["quest_step"], mine["tokens"]) == (
            theirs["quest"],
            theirs["quest_step"],
            theirs["tokens"],
        ), step
        assert abs(mine["loss"] - theirs["loss"]) <= 1e-5, (step, mine["loss"], theirs["loss"])
    assert len({r["quest"] for r in resumed.values()}) >= 2  # the run crossed a quest boundary
    assert _done(home) == _done(reference_home) and "reverse.jsonl" in _done(home)
    assert _latest_step(home) == _latest_step(reference_home) == TOTAL_STEPS
