"""A model of the user's own starts from its profile: a visible resting state instead of DIO's
idle skill quests, and the profile named in the trainer's info and in `realm status`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import TrainerThread, wait_for

from realm.config import ModelConfig, config_from
from realm.model.loading import load_model
from trainer.training_loop import RESTING

ROOT = Path(__file__).resolve().parents[2]


def test_a_users_model_rests_when_the_queue_is_empty_and_says_how_to_train_on_skills(tmp_path):
    model, tokenizer = load_model(ModelConfig(device="cpu"), seed=3)
    folder = tmp_path / "my-model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    config = config_from(
        {
            "model": {"name": str(folder), "device": "cpu"},
            "train": {"threads": 1, "batch_size": 4, "grad_accum": 1, "max_length": 64},
        }
    )
    home = tmp_path / "home"
    trainer = TrainerThread(home, config).start()
    try:
        wait_for(lambda: trainer.state.battle.status == "idle", timeout=60, what="the trainer to rest")
        assert trainer.state.battle.reason == RESTING
        assert trainer.state.trainer.profile == "generic" and trainer.state.hero.steps == 0
        assert not list((home / "quests" / "queued" / "low").iterdir()), "no idle quest was written"
        status = subprocess.run(
            [sys.executable, "-m", "realm.cli", "status", "--home", str(home)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert status.returncode == 0, status.stderr
        assert "profile generic" in status.stdout and "idle.enabled: true turns them on" in status.stdout
    finally:
        trainer.stop()
