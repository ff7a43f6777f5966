"""The quest desk on real files with a real publisher: what the inbox holds and how it is taken in."""

from __future__ import annotations

import json
import os
import time

import pytest

from realm.bus import Publisher
from realm.config import RealmConfig
from realm.home import Home
from trainer.desk import QuestDesk
from trainer.queue import MAX_NAME, QuestQueue


@pytest.fixture
def desk(tmp_path):
    home = Home(tmp_path / "home").ensure()
    publisher = Publisher("tcp://127.0.0.1:*", "run-desk")
    yield QuestDesk(RealmConfig(), home, QuestQueue(home), publisher)
    publisher.close()


def drop(desk: QuestDesk, name: str, content: str) -> None:
    path = desk.home.inbox / name
    path.write_text(content, encoding="utf-8")
    stamp = time.time() - 10  # settled
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def notices(desk: QuestDesk) -> list[str]:
    return [line.text for line in desk.publisher.state.log if line.text.startswith("inbox:")]


def lines(n: int, bad: int = 0) -> str:
    return "".join(json.dumps({"text": f"story {i}"}) + "\n" for i in range(n)) + "not json\n" * bad


def test_long_and_control_character_names_are_renamed_at_intake_with_the_original_in_the_lineage(desk):
    long = "q" * 240 + ".jsonl"
    drop(desk, long, "not a quest\n")  # refused: its reason file is named after it
    drop(desk, "two\nlines.jsonl", lines(3))
    drop(desk, "red\x1b[31m.jsonl", lines(3))
    desk.take_inbox()

    [failed] = [p for p in desk.home.failed.iterdir() if not p.name.endswith(".reason.txt")]
    assert len(failed.name.encode()) <= MAX_NAME and failed.name.endswith(".jsonl")
    assert "not valid JSON" in failed.with_name(failed.name + ".reason.txt").read_text()
    queued = sorted(p.name for p in desk.home.queued("normal").iterdir())
    assert queued == ["red_[31m.jsonl", "two_lines.jsonl"]
    originals = {name: json.loads((desk.home.lineage / f"{name}.meta.json").read_text())["original_name"]
                 for name in [failed.name, *queued]}
    assert originals == {failed.name: long, "red_[31m.jsonl": "red\x1b[31m.jsonl", "two_lines.jsonl": "two\nlines.jsonl"}
    assert len(notices(desk)) == 3
    assert any(f"renamed {failed.name} because it is longer than {MAX_NAME} bytes" in text for text in notices(desk))
    assert all(entry.name.isprintable() for entry in desk.queue.listing())


def test_links_folders_and_fifos_in_the_inbox_stay_there_with_one_notice_each(desk, tmp_path):
    secret = tmp_path / "secret.jsonl"  # outside HOME, readable by its owner only
    secret.write_text(lines(20, bad=1))
    secret.chmod(0o600)
    os.utime(secret, (time.time() - 10, time.time() - 10))  # as settled as any inbox file
    inbox = desk.home.inbox
    (inbox / "link.jsonl").symlink_to(secret)
    (inbox / "dangling.jsonl").symlink_to(tmp_path / "gone")
    (inbox / "folder").mkdir()
    os.mkfifo(inbox / "pipe")
    for _ in range(3):
        desk.take_inbox()

    assert sorted(p.name for p in inbox.iterdir()) == ["dangling.jsonl", "folder", "link.jsonl", "pipe"]
    assert desk.queue.listing() == [] and list(desk.home.quarantine.iterdir()) == []
    link = "a symbolic link (never followed: copy the file in instead)"
    assert notices(desk) == [
        f"inbox: dangling.jsonl is not taken as a quest: it is {link}; it stays where it is",
        "inbox: folder is not taken as a quest: it is a folder (quests are files directly in the inbox); it stays where it is",
        f"inbox: link.jsonl is not taken as a quest: it is {link}; it stays where it is",
        "inbox: pipe is not taken as a quest: it is not a regular file; it stays where it is",
    ]


def test_quarantined_lines_and_reasons_are_private_files(desk):
    old = os.umask(0o022)
    try:
        drop(desk, "mostly.jsonl", lines(20, bad=1))  # trains; its bad line is quarantined
        drop(desk, "broken.jsonl", "not json\n")
        desk.take_inbox()
    finally:
        os.umask(old)
    quarantine = desk.home.quarantine / "mostly.jsonl.quarantine.jsonl"
    assert '"raw": "not json"' in quarantine.read_text()
    for path in (quarantine, desk.home.failed / "broken.jsonl.reason.txt"):
        assert path.stat().st_mode & 0o777 == 0o600, path
