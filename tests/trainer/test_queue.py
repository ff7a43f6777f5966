"""The quest queue on disk: real folders, real renames; nothing is ever deleted."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from realm.home import Home
from trainer.queue import MAX_NAME, QuestGone, QuestQueue, intake_name, renamed_because


@pytest.fixture
def queue(tmp_path) -> QuestQueue:
    return QuestQueue(Home(tmp_path / "home").ensure())


def _drop(queue: QuestQueue, name: str, content: str = '{"text": "t"}\n', age: float = 10.0):
    path = queue.home.inbox / name
    path.write_text(content, encoding="utf-8")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def _names(queue: QuestQueue) -> list[tuple[str, str]]:
    return [(priority, path.name) for priority, path in queue.queued()]


def test_fifo_within_a_priority_high_first(queue):
    for name, priority in [("n1", "normal"), ("l1", "low"), ("h1", "high"), ("n2", "normal"), ("h2", "high")]:
        queue.admit(_drop(queue, name), priority)
    assert _names(queue) == [("high", "h1"), ("high", "h2"), ("normal", "n1"), ("normal", "n2"), ("low", "l1")]


def test_unsettled_inbox_files_wait(queue):
    _drop(queue, "old.jsonl", age=10)
    _drop(queue, "fresh.jsonl", age=0)
    _drop(queue, ".hidden.part", age=10)
    assert [path.name for path in queue.inbox_files()] == ["old.jsonl"]


def test_names_are_unique_across_every_quest_folder(queue):
    first = queue.admit(_drop(queue, "q.jsonl"))
    queue.finish(queue.activate(first), "done")
    second = queue.admit(_drop(queue, "q.jsonl"))
    failed = queue.reject(_drop(queue, "q.jsonl"), "bad")
    assert (second.name, failed.name) == ("q-2.jsonl", "q-3.jsonl")
    assert (queue.home.failed / "q-3.jsonl.reason.txt").read_text() == "bad\n"


def test_move_reprioritises_and_reorders(queue):
    for name in ["a", "b", "c"]:
        queue.admit(_drop(queue, name))
    assert queue.move("c", position=0) == ("normal", 0)
    assert _names(queue) == [("normal", "c"), ("normal", "a"), ("normal", "b")]
    assert queue.move("b", position=1) == ("normal", 1)
    assert _names(queue) == [("normal", "c"), ("normal", "b"), ("normal", "a")]
    assert queue.move("a", priority="high") == ("high", 0)
    assert _names(queue) == [("high", "a"), ("normal", "c"), ("normal", "b")]
    assert queue.move("c", priority="low", position=99) == ("low", 0)
    queue.admit(_drop(queue, "d"), "low")
    assert _names(queue)[-2:] == [("low", "c"), ("low", "d")]  # a reorder does not jump later arrivals


def test_remove_keeps_the_file_and_retry_brings_quests_back(queue):
    queue.admit(_drop(queue, "keep", content="precious\n"))
    removed = queue.remove("keep")
    assert removed == queue.home.removed / "keep"
    assert removed.read_text() == "precious\n"
    assert queue.queued() == []

    failed = queue.reject(_drop(queue, "bad"), "line 1: not valid JSON")
    assert queue.retry(failed.name, "high") == queue.home.queued("high") / "bad"
    skipped = queue.finish(queue.activate(queue.admit(_drop(queue, "long"))), "skipped", "skipped by request")
    assert skipped == queue.home.skipped / "long"
    queue.retry("long")
    assert _names(queue) == [("high", "bad"), ("normal", "long")]


def test_requests_for_quests_not_there_say_why(queue):
    with pytest.raises(QuestGone, match="no queued quest named 'ghost'"):
        queue.remove("ghost")
    with pytest.raises(QuestGone, match="no queued quest named 'ghost'"):
        queue.move("ghost", priority="high")
    with pytest.raises(QuestGone, match="no failed or skipped quest named 'ghost'"):
        queue.retry("ghost")
    active = queue.activate(queue.admit(_drop(queue, "busy")))
    with pytest.raises(QuestGone, match="is being trained; `realm skip` ends it"):
        queue.remove("busy")
    assert active.exists()


def test_a_quest_moved_after_it_was_picked_is_gone_not_a_crash(queue):
    picked = queue.admit(_drop(queue, "q"))
    queue.move("q", priority="high")
    with pytest.raises(QuestGone, match="left normal/"):
        queue.activate(picked)


def test_the_listing_shows_every_quest_where_it_is(queue):
    queue.admit(_drop(queue, "n"))
    queue.admit(_drop(queue, "h"), "high")
    queue.reject(_drop(queue, "f"), "line 2: not valid JSON")
    queue.finish(queue.activate(queue.admit(_drop(queue, "d"))), "done")
    queue.activate(queue.admit(_drop(queue, "a")))
    (queue.home.quarantine / "n.quarantine.jsonl").write_text("{}\n")
    entries = {entry.name: entry for entry in queue.listing()}
    assert [(e.name, e.state, e.priority, e.position) for e in queue.listing()][:2] == [
        ("h", "queued", "high", 0),
        ("n", "queued", "normal", 1),
    ]
    assert entries["a"].state == "active" and entries["d"].state == "done"
    assert entries["f"].state == "failed" and entries["f"].reason == "line 2: not valid JSON"
    assert entries["n"].quarantine == "quests/quarantine/n.quarantine.jsonl"
    assert entries["n"].bytes == len('{"text": "t"}\n')
    assert queue.completed_count() == 1


def test_the_listing_shows_a_quest_once_while_the_training_thread_moves_it(queue):
    # the control thread lists while the training thread starts and finishes quests: folder by
    # folder, a quest moved between two folders' reads would be listed in both
    paths = [queue.admit(_drop(queue, f"q{i}.jsonl")) for i in range(40)]
    mover = threading.Thread(target=lambda: [queue.finish(queue.activate(path), "done") for path in paths])
    mover.start()
    listings = []
    while mover.is_alive():
        listings.append([entry.name for entry in queue.listing()])
    mover.join()
    assert listings and all(len(names) == len(set(names)) == 40 for names in listings)


def test_a_file_name_that_is_not_utf8_gets_a_name_the_bus_can_carry(queue):
    import msgspec

    from realm.protocol import QuestInfo

    path = queue.home.inbox / os.fsdecode(b"caf\xe9.jsonl")
    path.write_text('{"text": "t"}\n')
    queued = queue.admit(path)
    assert queued.name == "caf_.jsonl"
    assert msgspec.msgpack.encode(QuestInfo(name=queued.name))
    assert [entry.name for entry in queue.listing()] == ["caf_.jsonl"]


def test_a_name_too_long_for_its_derived_names_is_shortened_the_same_way_every_time(queue):
    long = "q" * 240 + ".jsonl"  # 246 bytes: fine alone, too long with ".reason.txt" or ".tmp" added
    short = intake_name(long)
    assert len(short.encode()) <= MAX_NAME and short.endswith(".jsonl") and short.startswith("q" * 100)
    assert intake_name(long) == short and intake_name("q" * 240 + "x.jsonl") != short
    accents = intake_name("é" * 150 + ".jsonl")  # 306 bytes in 156 characters
    assert len(accents.encode()) <= MAX_NAME and accents.startswith("é" * 90)

    active = queue.activate(queue.admit(_drop(queue, long)))
    failed = queue.finish(active, "failed", "a reason beside it")
    assert failed.name == short
    assert [(e.name, e.reason) for e in queue.listing()] == [(short, "a reason beside it")]


def test_control_characters_in_a_name_become_underscores(queue):
    assert intake_name("two\nlines\r.jsonl") == "two_lines_.jsonl"
    assert intake_name("red\x1b[31m\x7f\x85\u2028.jsonl") == "red_[31m___.jsonl"
    assert intake_name("plain café.jsonl") == "plain café.jsonl"
    assert renamed_because("a\nb") == "it holds control characters" and renamed_because("ok.jsonl") == ""


def test_quest_files_are_regular_files_and_links_are_not_followed(queue, tmp_path):
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"text": "t"}\n')
    _drop(queue, "real.jsonl")
    (queue.home.inbox / "link.jsonl").symlink_to(secret)
    (queue.home.inbox / "dangling.jsonl").symlink_to(tmp_path / "gone")
    (queue.home.inbox / "folder").mkdir()
    os.mkfifo(queue.home.inbox / "pipe")
    assert [path.name for path in queue.inbox_files()] == ["real.jsonl"]
    assert [path.name for path in queue.inbox_strays()] == ["dangling.jsonl", "link.jsonl", "pipe"]


def test_what_the_queue_writes_is_private_to_its_user(queue):
    old = os.umask(0o022)
    try:
        failed = queue.reject(_drop(queue, "bad"), "line 1: not valid JSON")
        lineage = queue.keep_original("a_b", "a\nb")
    finally:
        os.umask(old)
    for path in (failed.with_name("bad.reason.txt"), lineage):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert json.loads(lineage.read_text())["original_name"] == "a\nb"
