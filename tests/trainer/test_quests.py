"""Quests through the real trainer: a corpus of bad input, the quest requests over the bus, skip.

Each test runs a real ``Daemon`` (DIO-nano, real steps) in a thread, real ZeroMQ sockets and
real files. Idle quests are off so that every step belongs to a quest the test wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import msgspec
import pytest
from conftest import fast_config, wait_for

from realm.bus import RequestFailed
from realm.config import IdleConfig
from realm.protocol import (
    Ack,
    PauseRequest,
    QuestAddRequest,
    QuestList,
    QuestListRequest,
    QuestMoveRequest,
    QuestRemoveRequest,
    QuestRetryRequest,
    ResumeRequest,
    SkipRequest,
)


def quiet_config(**train):
    return msgspec.structs.replace(fast_config(**train), idle=IdleConfig(enabled=False))


def chat(i: int) -> dict:
    return {"messages": [{"role": "user", "content": f"echo {i}"}, {"role": "assistant", "content": f"{i}"}]}


def jsonl(records) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode("utf-8")


def settled(inbox: Path) -> None:
    """Age the inbox files past the settle time, keeping their order."""
    for index, path in enumerate(sorted(inbox.iterdir())):
        stamp = time.time() - 100 + index
        os.utime(path, (stamp, stamp))


def all_files(root: Path) -> dict[str, Path]:
    return {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in root.rglob("*") if p.is_file()}


def reason_of(home: Path, name: str) -> str:
    return (home / "quests" / "failed" / f"{name}.reason.txt").read_text(encoding="utf-8")


def quest_is_settled(trainer) -> bool:
    home = trainer.home
    pending = [*(home / "inbox").iterdir(), *(home / "quests" / "active").iterdir()]
    pending += [p for p in (home / "quests" / "queued").rglob("*") if p.is_file()]
    return not pending and trainer.state.battle.status == "idle"


# --------------------------------------------------------------------------- the bad-input corpus


def bad_input_corpus() -> dict[str, tuple[bytes, str | None]]:
    """name -> (bytes, a phrase its failure reason must hold; None for quests that train)."""
    conversation = lambda *turns: {"messages": [{"role": r, "content": c} for r, c in turns]}  # noqa: E731
    return {
        "empty.jsonl": (b"", "file is empty"),
        "array.jsonl": (json.dumps([chat(1), chat(2)], indent=2).encode(), "got a JSON array"),
        "latin1.jsonl": ('{"text": "caf\xe9"}\n{"text": "na\xefve"}\n'.encode("latin-1"), "not UTF-8 text (byte 0xe9"),
        "picture.png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary data"),
        "utf16.jsonl": (jsonl([chat(1), chat(2)]).decode().encode("utf-16"), "UTF-16 text (a NUL byte beside"),
        "utf16be.jsonl": (jsonl([chat(1)]).decode().encode("utf-16-be"), "save the file as UTF-8"),
        "unknown.jsonl": (jsonl([{"question": "q", "answer": "a"}]), "no known quest format"),
        "mixed.jsonl": (
            jsonl([chat(i) for i in range(5)] + [{"instruction": f"say {i}", "output": f"{i}"} for i in range(5)]),
            "mixed formats: this line is Alpaca instruction/input/output but the file is OpenAI messages",
        ),
        "typos.jsonl": (
            jsonl(conversation(("user", f"hi {i}"), ("asistant", f"yo {i}")) for i in range(6)),
            "unknown role 'asistant' (did you mean 'assistant'?)",
        ),
        "empty_answers.jsonl": (
            jsonl(conversation(("user", f"hi {i}"), ("assistant", "")) for i in range(6)),
            "turn 2 (assistant) is empty",
        ),
        "ends_with_user.jsonl": (
            jsonl(conversation(("user", f"a{i}"), ("assistant", f"b{i}"), ("user", "and?")) for i in range(6)),
            "the conversation ends with the user, not the assistant",
        ),
        "leaked.jsonl": (
            jsonl(
                conversation(("user", f"Repeat: the secret word {i}"), ("assistant", f"the secret word {i}"))
                for i in range(6)
            ),
            "answer leakage",
        ),
        # Below the 10 % line: these train, and their one bad line is quarantined.
        "truncated.jsonl": (jsonl(chat(i) for i in range(10)) + b'{"messages": [{"role": "us', None),
        "huge_line.jsonl": (
            jsonl([chat(i) for i in range(9)] + [conversation(("user", "x" * 5_000_000), ("assistant", "long"))]),
            None,
        ),
        "sharegpt.jsonl": (
            jsonl(
                {"conversations": [{"from": "human", "value": f"hey {i}"}, {"from": "gpt", "value": f"ho {i}"}]}
                for i in range(4)
            ),
            None,
        ),
        "story.jsonl": (jsonl({"text": f"Once upon a time there were {i} dragons."} for i in range(4)), None),
    }


def test_bad_input_gets_clear_reasons_loses_nothing_and_training_goes_on(trainer_factory, tmp_path):
    home = tmp_path / "home"
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    corpus = bad_input_corpus()
    for name, (content, _) in corpus.items():
        (inbox / name).write_bytes(content)
    settled(inbox)

    trainer = trainer_factory(quiet_config(batch_size=4), home=home).start()
    wait_for(lambda: quest_is_settled(trainer), timeout=240, what="every quest to be trained or refused")
    trainer.stop()

    outcomes = {result.name: result.outcome for result in trainer.state.board.recent}
    for name, (content, phrase) in corpus.items():
        if phrase is None:
            assert outcomes[name] == "done", name
            assert (home / "quests" / "done" / name).read_bytes() == content
        else:
            assert outcomes[name] == "failed", name
            assert phrase in reason_of(home, name), (name, reason_of(home, name))
            assert (home / "quests" / "failed" / name).read_bytes() == content  # moved whole, never rewritten
    # nothing is lost: every input byte sequence is somewhere under the data root
    on_disk = all_files(home)
    assert all(hashlib.sha256(content).hexdigest() in on_disk for content, _ in corpus.values())

    quarantine = home / "quests" / "quarantine"
    truncated = [
        json.loads(line) for line in (quarantine / "truncated.jsonl.quarantine.jsonl").read_text().splitlines()
    ]
    assert [(r["line"], r["level"]) for r in truncated] == [(11, "quick")]
    assert "looks cut off" in truncated[0]["reason"]
    huge = [json.loads(line) for line in (quarantine / "huge_line.jsonl.quarantine.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"].split(";")[0]) for r in huge] == [(10, "longer than train.max_length (64 tokens)")]
    assert trainer.state.hero.steps >= 3 + 3 + 1 + 1  # the four good quests were trained
    assert trainer.exit_code == 0


# --------------------------------------------------------------------------- requests over the bus


def test_quest_requests_over_the_bus(trainer_factory, tmp_path):
    trainer = trainer_factory(quiet_config(), home=tmp_path / "home").start()
    client = trainer.client
    client.request(PauseRequest())  # nothing trains: the queue stays as the requests leave it
    wait_for(lambda: trainer.state.battle.status == "paused", what="the pause")
    queued = trainer.home / "quests" / "queued"

    content = jsonl(chat(i) for i in range(8))
    add = QuestAddRequest(name="good.jsonl", content=content, request_id="req-1")
    reply = client.request(add)
    assert isinstance(reply, Ack)
    assert reply.message == "queued good.jsonl (normal): 8 examples (chat_v1, messages)"
    assert (queued / "normal" / "good.jsonl").read_bytes() == content
    assert client.request(add) == reply  # a resent add (Lazy Pirate) lands once
    assert sorted(p.name for p in (queued / "normal").iterdir()) == ["good.jsonl"]

    with pytest.raises(RequestFailed, match="refused; moved to quests/failed/array.jsonl: .*got a JSON array"):
        client.request(QuestAddRequest(name="array.jsonl", content=json.dumps([chat(1)], indent=1).encode()))
    with pytest.raises(RequestFailed, match="must be a plain file name"):
        client.request(QuestAddRequest(name="../escape.jsonl", content=content))

    client.request(QuestAddRequest(name="later.jsonl", content=jsonl([{"text": "t1"}, {"text": "t2"}]), priority="low"))
    client.request(
        QuestAddRequest(name="urgent.jsonl", content=jsonl([{"prompt": "p", "completion": "c"}]), priority="high")
    )
    board = lambda: [(q.name, q.priority) for q in trainer.state.board.queued]  # noqa: E731
    assert board() == [("urgent.jsonl", "high"), ("good.jsonl", "normal"), ("later.jsonl", "low")]
    assert [q.format for q in trainer.state.board.queued] == ["completion", "messages", "text"]

    client.request(QuestMoveRequest(name="later.jsonl", priority="high", position=0))
    assert board() == [("later.jsonl", "high"), ("urgent.jsonl", "high"), ("good.jsonl", "normal")]
    assert client.request(QuestRemoveRequest(name="good.jsonl")).message.startswith("removed good.jsonl")
    assert (trainer.home / "quests" / "removed" / "good.jsonl").read_bytes() == content
    assert board() == [("later.jsonl", "high"), ("urgent.jsonl", "high")]
    with pytest.raises(RequestFailed, match="no queued quest named 'good.jsonl'"):
        client.request(QuestRemoveRequest(name="good.jsonl"))

    listing = client.request(QuestListRequest())
    assert isinstance(listing, QuestList)
    states = {(q.name, q.state) for q in listing.quests}
    assert states == {
        ("later.jsonl", "queued"),
        ("urgent.jsonl", "queued"),
        ("good.jsonl", "removed"),
        ("array.jsonl", "failed"),
    }
    failed = next(q for q in listing.quests if q.state == "failed")
    assert "got a JSON array" in failed.reason

    assert client.request(QuestRetryRequest(name="array.jsonl")).message == "requeued array.jsonl (normal)"
    assert (queued / "normal" / "array.jsonl").exists()
    assert board()[-1] == ("array.jsonl", "normal")
    trainer.stop()


# --------------------------------------------------------------------------- skip


def test_skip_ends_the_active_quest_between_steps_and_training_goes_on(trainer_factory, tmp_path):
    home = tmp_path / "home"
    trainer = trainer_factory(quiet_config(batch_size=2), home=home).start()
    client = trainer.client
    with pytest.raises(RequestFailed, match="nothing to skip"):
        client.request(SkipRequest())

    for name, n in [("long.jsonl", 200), ("paused.jsonl", 200), ("next.jsonl", 4)]:
        client.request(QuestAddRequest(name=name, content=jsonl(chat(i) for i in range(n))))
    in_battle = lambda name: (
        lambda: (q := trainer.state.battle.quest) and q.name == name and trainer.state.battle.quest_step >= 1
    )  # noqa: E731
    finished = lambda name: lambda: any(r.name == name for r in trainer.state.board.recent)  # noqa: E731

    wait_for(in_battle("long.jsonl"), what="a step of long.jsonl")
    assert client.request(SkipRequest()).message == "skipping long.jsonl: it ends after the current step"
    wait_for(finished("long.jsonl"), what="long.jsonl to end")

    wait_for(in_battle("paused.jsonl"), what="a step of paused.jsonl")
    client.request(PauseRequest())
    wait_for(lambda: trainer.state.battle.status == "paused", what="the pause")
    steps = trainer.state.hero.steps
    client.request(SkipRequest())  # a skip while paused ends the quest now, and the pause holds
    wait_for(finished("paused.jsonl"), what="paused.jsonl to end")
    wait_for(lambda: trainer.state.battle.status == "paused", what="the pause to hold")
    assert trainer.state.hero.steps == steps
    assert (home / "quests" / "queued" / "normal" / "next.jsonl").exists()

    client.request(ResumeRequest())
    wait_for(finished("next.jsonl"), what="the next quest")
    trainer.stop()
    results = {r.name: r for r in trainer.state.board.recent}
    for name in ("long.jsonl", "paused.jsonl"):
        assert results[name].outcome == "skipped" and 1 <= results[name].steps < 90
        assert (home / "quests" / "skipped" / name).exists()
        assert "skipped by request after" in (home / "quests" / "skipped" / f"{name}.reason.txt").read_text()
    assert results["next.jsonl"].outcome == "done"
    assert trainer.state.hero.quests_completed == 1  # a skipped quest earns no gold


def test_a_quest_named_in_bytes_that_are_not_utf8_is_refused_by_a_readable_name(trainer_factory, tmp_path):
    home = tmp_path / "home"
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    (inbox / os.fsdecode(b"caf\xe9.jsonl")).write_bytes(b"")
    settled(inbox)
    trainer = trainer_factory(quiet_config(), home=home).start()
    wait_for(lambda: quest_is_settled(trainer), what="the quest to be refused")
    trainer.stop()
    assert [(r.name, r.outcome) for r in trainer.state.board.recent] == [("caf_.jsonl", "failed")]
    assert "caf_.jsonl: file is empty" in reason_of(home, "caf_.jsonl")


def test_every_quest_request_refuses_a_name_that_is_not_a_plain_quest_name(trainer_factory, tmp_path):
    home = tmp_path / "home"
    trainer = trainer_factory(quiet_config(), home=home).start()
    (home / "realm.yaml").write_text("train:\n  lr: 1e-4\n")
    victim = tmp_path / "victim.txt"  # outside HOME
    victim.write_text("not the realm's\n")
    folders = ["../../realm.yaml", "../../../victim.txt", str(victim), "a/b.jsonl", "..", "."]
    control = ["nul\x00.jsonl", "two\nlines.jsonl", "esc\x1b[2J.jsonl", "del\x7f.jsonl"]
    requests = [QuestAddRequest, QuestRetryRequest, QuestRemoveRequest, QuestMoveRequest]
    for name in [*folders, *control, "q" * 201]:
        for request in requests:
            extra = {"content": b'{"text": "t"}\n'} if request is QuestAddRequest else {}
            with pytest.raises(
                RequestFailed, match=r"quest name .*: (must be a plain file name|holds control|is longer)"
            ):
                trainer.client.request(request(name=name, **extra))
    assert (home / "realm.yaml").read_text() == "train:\n  lr: 1e-4\n"
    assert victim.read_text() == "not the realm's\n"
    assert not [p for p in (home / "quests" / "queued").rglob("*") if p.is_file()]
    trainer.stop()
