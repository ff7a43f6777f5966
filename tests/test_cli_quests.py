"""``realm quest ...`` and ``realm skip`` as a user runs them: real processes against a real trainer."""

from __future__ import annotations

import json
import os

import msgspec
from conftest import fast_config
from quest_files_fixtures import mixed
from test_cli import realm, write_config

from realm.config import IdleConfig
from realm.protocol import PauseRequest


def test_quest_commands_against_a_running_trainer(trainer_factory, tmp_path):
    home = tmp_path / "home"
    trainer = trainer_factory(msgspec.structs.replace(fast_config(), idle=IdleConfig(enabled=False)), home=home)
    trainer.start().client.request(PauseRequest())
    at = ("--home", str(home))

    quest = tmp_path / "alpaca.jsonl"
    quest.write_text("".join(json.dumps({"instruction": f"say {i}", "output": f"{i}"}) + "\n" for i in range(5)))
    added = realm("quest", "add", str(quest), "--priority", "high", *at)
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "queued alpaca.jsonl (high): 5 examples (chat_v1, alpaca)"

    bad = tmp_path / "notes.txt"
    bad.write_text("just some notes\nnot a quest\n")
    refused = realm("quest", "add", str(bad), *at)
    assert refused.returncode == 1
    assert "realm: refused; moved to quests/failed/notes.txt" in refused.stderr
    assert "not valid JSON" in refused.stderr

    listing = realm("quest", "list", "--json", *at)
    assert listing.returncode == 0, listing.stderr
    document = json.loads(listing.stdout)
    assert [(q["name"], q["state"], q["priority"]) for q in document["quests"]] == [
        ("alpaca.jsonl", "queued", "high"),
        ("notes.txt", "failed", None),
    ]
    text = realm("quest", "list", *at).stdout
    assert "queued (1):" in text and "1. high   alpaca.jsonl" in text and "failed (1):" in text

    assert realm("quest", "remove", "alpaca.jsonl", *at).stdout.startswith("removed alpaca.jsonl")
    assert (home / "quests" / "removed" / "alpaca.jsonl").exists()
    missing = realm("quest", "remove", "alpaca.jsonl", *at)
    assert missing.returncode == 1 and "no queued quest named 'alpaca.jsonl'" in missing.stderr
    assert realm("quest", "retry", "notes.txt", *at).stdout.strip() == "requeued notes.txt (normal)"
    escape = realm("quest", "retry", "../../realm.yaml", *at)
    assert escape.returncode == 1
    assert escape.stderr == "realm: quest name '../../realm.yaml': must be a plain file name, without folders\n"

    skip = realm("skip", *at)
    assert skip.returncode == 1 and "nothing to skip" in skip.stderr

    partial = realm("quest", "add", str(mixed(tmp_path)), *at)  # 3 bad lines of 33: queued, and said
    assert partial.returncode == 0, partial.stderr
    queued, skipped = partial.stdout.splitlines()
    assert queued.startswith("queued mixed.jsonl (normal):")
    assert skipped.startswith("3 of 33 lines will be skipped (first, line 31: turn 2: unknown role 'asistant'")
    assert skipped.endswith(f"see `realm quest check {tmp_path / 'mixed.jsonl'}`")
    trainer.stop()


def test_quest_add_refuses_files_the_bus_cannot_carry_and_missing_files(tmp_path):
    config = write_config(tmp_path / "small.yaml", bus={"max_message_bytes": 4096})
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"text": "x" * 10_000}) + "\n")
    result = realm("quest", "add", str(big), "--home", str(tmp_path / "h"), "--config", str(config))
    assert result.returncode == 1
    assert "one bus message carries at most 4,096" in result.stderr and "HOME/inbox/" in result.stderr
    missing = realm("quest", "add", str(tmp_path / "nope.jsonl"), "--home", str(tmp_path / "h"))
    assert missing.returncode == 1 and "nope.jsonl: file not found" in missing.stderr


def test_quest_add_and_check_refuse_a_device_or_a_pipe_at_once(tmp_path):
    """/dev/zero never ends and a pipe waits for a writer: both were read until memory ran out or forever."""
    pipe = tmp_path / "pipe.jsonl"
    os.mkfifo(pipe)
    for path in ("/dev/zero", str(pipe)):
        for command in ("add", "check"):
            result = realm("quest", command, path, "--home", str(tmp_path / "h"), timeout=60)
            assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
            assert f"{path}: not a regular file (a device, pipe or socket): give a file" in result.stderr, result.stderr


def test_help_lists_the_quest_commands():
    result = realm("--help")
    assert "quest" in result.stdout and "skip" in result.stdout
    actions = realm("quest", "--help").stdout
    for action in ("add", "list", "retry", "remove"):
        assert action in actions
