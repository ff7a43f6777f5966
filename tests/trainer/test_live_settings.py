"""Live batch size, lr schedule and skill mix: a real DIO-nano trainer takes each change at the
next step, says no to bad values in one line, and a restart on the same HOME keeps them."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import yaml
from conftest import TrainerThread, wait_for, write_chat_quest

from realm.bus import RequestFailed
from realm.overrides import load_home_config
from realm.protocol import Ack, ConfigUpdateRequest, PauseRequest, ResumeRequest
from realm.skills.registry import SKILLS_DIR

FAST = {
    "train": {"batch_size": 4, "max_length": 64, "warmup_steps": 2, "threads": 1, "checkpoint_every": 1000},
    "idle": {"enabled": False},
    "skills": {"enabled": False},
}


def write_config(path, sections):
    path.write_text(yaml.safe_dump(sections), encoding="utf-8")
    return path


def step_lines(home) -> list[dict]:
    lines = (home / "logs" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [row for row in map(json.loads, lines) if row["kind"] == "step"]


def change(trainer, key: str, value: str) -> None:
    reply = trainer.client.request(ConfigUpdateRequest(key=key, value=value))
    assert isinstance(reply, Ack) and "saved in overrides.yaml" in reply.message


def cosine_lr(step: int, lr=0.003, warmup=2, steps=10, floor=0.5) -> float:
    progress = min(1.0, (step - warmup) / steps)
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def test_batch_size_and_schedule_change_live_and_survive_a_restart(tmp_path):
    home, config_file = tmp_path / "home", write_config(tmp_path / "fast.yaml", FAST)
    write_chat_quest(home / "inbox" / "words.jsonl", n=64)
    trainer = TrainerThread(home, load_home_config(home, config_file)).start()
    try:
        wait_for(lambda: trainer.state.battle.quest_step >= 3, what="a few steps of the quest")
        trainer.client.request(PauseRequest())
        wait_for(lambda: trainer.state.battle.status == "paused", what="paused")
        done_steps, step0 = trainer.state.battle.quest_step, trainer.daemon.engine.step
        quest = trainer.state.battle.quest
        trained = quest.examples - quest.held_out
        for key, value in [
            ("train.batch_size", "2"),
            ("train.schedule", "cosine"),
            ("train.cosine_steps", "10"),
            ("train.min_lr_ratio", "0.5"),
        ]:
            change(trainer, key, value)
        keys = {"train.batch_size", "train.schedule", "train.cosine_steps", "train.min_lr_ratio"}
        # announced with the Armory's "•override" mark once applied (while paused: between steps)
        wait_for(lambda: {f.key for f in trainer.state.config if f.overridden} == keys, what="the changes applied")
        assert trainer.daemon.engine.micro_batch == 2
        for value, words in [("0", "train.batch_size: must be at least 1"), ("many", "train.batch_size")]:
            with pytest.raises(RequestFailed, match=words):
                trainer.client.request(ConfigUpdateRequest(key="train.batch_size", value=value))
        with pytest.raises(RequestFailed, match="train.schedule"):
            trainer.client.request(ConfigUpdateRequest(key="train.schedule", value="sawtooth"))
        trainer.client.request(ResumeRequest())
        wait_for(lambda: trainer.daemon.engine.step >= step0 + 3, what="steps after the change")
    finally:
        trainer.stop()

    rows = {row["step"]: row for row in step_lines(home)}
    before, after = rows[step0], rows[step0 + 1]
    assert before["micro_batch"] == 4 and after["micro_batch"] == 2
    assert after["quest_step"] == done_steps + 1
    # 4 examples a step before the change, 2 after: the total is counted again, honestly
    assert before["quest_total"] == math.ceil(trained / 4)
    assert after["quest_total"] == done_steps + math.ceil((trained - 4 * done_steps) / 2)
    assert before["tokens"] > after["tokens"] > 0
    # the cosine picks up at the step training is at, not at its own start
    assert after["lr"] == pytest.approx(cosine_lr(step0))
    assert rows[step0 + 2]["lr"] == pytest.approx(cosine_lr(step0 + 1))
    saved = yaml.safe_load((home / "overrides.yaml").read_text())
    assert saved["train"] == {"batch_size": 2, "schedule": "cosine", "cosine_steps": 10, "min_lr_ratio": 0.5}

    last = max(rows)
    again = TrainerThread(home, load_home_config(home, config_file), max_steps=2).start()
    assert again.join() == 0
    later = [row for row in step_lines(home) if row["step"] > last - 1 and row not in rows.values()]
    assert later and all(row["micro_batch"] == 2 for row in later)
    assert later[0]["lr"] == pytest.approx(cosine_lr(later[0]["step"] - 1))
    assert again.daemon.config.train.schedule == "cosine"


def two_skills(tmp_path):
    folder = tmp_path / "skills"
    folder.mkdir()
    for name in ("bin.yaml", "sy.yaml"):
        shutil.copy(SKILLS_DIR / name, folder / name)
    return folder


def test_the_skill_mix_changes_live_refuses_bad_mixes_and_is_kept(tmp_path):
    folder = two_skills(tmp_path)
    sections = {
        **FAST,
        "train": {**FAST["train"], "max_length": 256},
        "idle": {"enabled": True, "examples": 8},
        "skills": {"enabled": True, "folder": str(folder), "mix": ["bin"], "eval_every": 100_000},
    }
    home, config_file = tmp_path / "home", write_config(tmp_path / "skills.yaml", sections)
    trainer = TrainerThread(home, load_home_config(home, config_file)).start()
    try:
        wait_for(lambda: trainer.state.skills.active == "bin", what="the skills loaded")
        refusals = [
            ("[nope]", "skills.mix: 'nope' is not a skill in"),
            ("[bin:-1]", "skills.mix"),
            ("[bin:0, sy:0]", "skills.mix: the weights add up to 0"),
            ("[bin, bin:2]", "skills.mix: a skill is listed twice"),
            ("bin", "skills.mix"),
        ]
        for value, words in refusals:
            with pytest.raises(RequestFailed, match=words):
                trainer.client.request(ConfigUpdateRequest(key="skills.mix", value=value))
        change(trainer, "skills.mix", "[sy:3, bin:1]")
        wait_for(lambda: trainer.state.skills.active == "sy", what="the new active skill")
        assert [s.id for s in trainer.state.skills.skills] == ["sy", "bin"]
        lineage = home / "quests" / "lineage"
        wait_for(lambda: list(lineage.glob("idle-sy*.meta.json")), what="an idle quest drawn from the new mix")
    finally:
        trainer.stop()
    assert yaml.safe_load((home / "overrides.yaml").read_text()) == {"skills": {"mix": ["sy:3", "bin:1"]}}

    again = TrainerThread(home, load_home_config(home, config_file), max_steps=1).start()
    assert again.join() == 0
    assert again.state.skills.active == "sy"
