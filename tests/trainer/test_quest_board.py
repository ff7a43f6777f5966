"""The quest board on real files with a real publisher: what the inbox holds and how it is taken in."""

from __future__ import annotations

import json
import os
import random
import time

import pytest

from realm.bus import Publisher
from realm.config import RealmConfig
from realm.home import Home
from realm.model.loading import load_tokenizer
from realm.protocol import QuestAddRequest, QuestMoveRequest, QuestRetryRequest
from realm.skills import curriculum
from realm.skills.registry import get_skill
from realm.state import every_line
from trainer import lineage
from trainer.quest_board import QuestBoard
from trainer.queue import MAX_NAME, QuestQueue


@pytest.fixture
def board(tmp_path):
    home = Home(tmp_path / "home").ensure()
    publisher = Publisher("tcp://127.0.0.1:*", "run-board")
    yield QuestBoard(RealmConfig(), home, QuestQueue(home), publisher)
    publisher.close()


def drop(board: QuestBoard, name: str, content: str) -> None:
    path = board.home.inbox / name
    path.write_text(content, encoding="utf-8")
    stamp = time.time() - 10  # settled
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def notices(board: QuestBoard) -> list[str]:
    return [line.text for line in every_line(board.publisher.state) if line.text.startswith("inbox:")]


def lines(n: int, bad: int = 0) -> str:
    return "".join(json.dumps({"text": f"story {i}"}) + "\n" for i in range(n)) + "not json\n" * bad


def test_long_and_control_character_names_are_renamed_at_intake_with_the_original_in_the_lineage(board):
    long = "q" * 240 + ".jsonl"
    drop(board, long, "not a quest\n")  # refused: its reason file is named after it
    drop(board, "two\nlines.jsonl", lines(3))
    drop(board, "red\x1b[31m.jsonl", lines(3))
    board.take_inbox()

    [failed] = [p for p in board.home.failed.iterdir() if not p.name.endswith(".reason.txt")]
    assert len(failed.name.encode()) <= MAX_NAME and failed.name.endswith(".jsonl")
    assert "not valid JSON" in failed.with_name(failed.name + ".reason.txt").read_text()
    queued = sorted(p.name for p in board.home.queued("normal").iterdir())
    assert queued == ["red_[31m.jsonl", "two_lines.jsonl"]
    originals = {
        name: json.loads((board.home.lineage / f"{name}.meta.json").read_text())["original_name"]
        for name in [failed.name, *queued]
    }
    assert originals == {
        failed.name: long,
        "red_[31m.jsonl": "red\x1b[31m.jsonl",
        "two_lines.jsonl": "two\nlines.jsonl",
    }
    assert len(notices(board)) == 3
    assert any(f"renamed {failed.name} because it is longer than {MAX_NAME} bytes" in text for text in notices(board))
    assert all(entry.name.isprintable() for entry in board.queue.listing())


def test_links_and_fifos_in_the_inbox_stay_there_with_one_notice_each(board, tmp_path):
    secret = tmp_path / "secret.jsonl"  # outside HOME, readable by its owner only
    secret.write_text(lines(20, bad=1))
    secret.chmod(0o600)
    os.utime(secret, (time.time() - 10, time.time() - 10))  # as settled as any inbox file
    inbox = board.home.inbox
    (inbox / "link.jsonl").symlink_to(secret)
    (inbox / "dangling.jsonl").symlink_to(tmp_path / "gone")
    (inbox / "folder").mkdir()
    os.mkfifo(inbox / "pipe")
    for _ in range(3):
        board.take_inbox()

    assert sorted(p.name for p in inbox.iterdir()) == ["dangling.jsonl", "folder", "link.jsonl", "pipe"]
    assert board.queue.listing() == [] and list(board.home.quarantine.iterdir()) == []
    link = "a symbolic link (never followed: copy the file in instead)"
    assert notices(board) == [
        f"inbox: dangling.jsonl is not taken as a quest: it is {link}; it stays where it is",
        f"inbox: link.jsonl is not taken as a quest: it is {link}; it stays where it is",
        "inbox: pipe is not taken as a quest: it is not a regular file; it stays where it is",
    ]


def test_quarantined_lines_and_reasons_are_private_files(board):
    old = os.umask(0o022)
    try:
        drop(board, "mostly.jsonl", lines(20, bad=1))  # trains; its bad line is quarantined
        drop(board, "broken.jsonl", "not json\n")
        board.take_inbox()
    finally:
        os.umask(old)
    quarantine = board.home.quarantine / "mostly.jsonl.quarantine.jsonl"
    assert '"raw": "not json"' in quarantine.read_text()
    for path in (quarantine, board.home.failed / "broken.jsonl.reason.txt"):
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_a_quest_keeps_the_source_its_writer_recorded_wherever_it_is_shown(board):
    correction = "correction-bin-L1-00000007.jsonl"
    lineage.write_quest(
        board.home, board.home.failed, correction, lines(3), {"kind": "correction", "source": "correction"}
    )
    reply = board.handlers()[QuestRetryRequest](QuestRetryRequest(name=correction, priority="high"))
    assert reply.message == f"requeued {correction} (high)"
    drop(board, "idle-mine.jsonl", lines(3))  # a name says nothing: it came in through the inbox
    board.take_inbox()
    asked = QuestAddRequest(name="bin-L1-3x-s.jsonl", content=lines(3).encode(), priority="low")
    assert board.add(asked, {"kind": "asked", "source": "generated"}).message.startswith("queued bin-L1-3x-s.jsonl")
    sources = {quest.name: quest.source for quest in board.publisher.state.board.queued}
    assert sources == {correction: "correction", "idle-mine.jsonl": "inbox", "bin-L1-3x-s.jsonl": "generated"}

    board.handlers()[QuestMoveRequest](QuestMoveRequest(name="bin-L1-3x-s.jsonl", priority="high"))
    assert {quest.name: quest.source for quest in board.publisher.state.board.queued} == sources
    board.fail(board.queue.activate(board.home.queued("high") / correction), "a reason")
    [result] = board.publisher.state.board.recent
    assert (result.name, result.outcome, result.source) == (correction, "failed", "correction")


def test_inbox_subfolders_are_flattened_into_names_and_links_out_and_hidden_folders_are_not_followed(board, tmp_path):
    inbox = board.home.inbox
    outside = tmp_path / "outside"  # a folder beyond HOME with a quest in it
    outside.mkdir()
    (outside / "secret.jsonl").write_text(lines(20))
    for where in ("sub/dir/file.jsonl", "top.jsonl", ".hidden/skip.jsonl", "sub/.cache.jsonl"):
        (inbox / where).parent.mkdir(parents=True, exist_ok=True)
        drop(board, where, lines(20))
    (inbox / "sub" / "escape").symlink_to(outside, target_is_directory=True)
    (inbox / "sub" / "dir" / "link.jsonl").symlink_to(outside / "secret.jsonl")
    drop(board, "sub-dir-file.jsonl", lines(20))  # the flat name is taken: the nested file gets another
    for _ in range(2):
        board.take_inbox()

    queued = sorted(entry.name for entry in board.queue.listing())
    assert queued == ["sub-dir-file-2.jsonl", "sub-dir-file.jsonl", "top.jsonl"]
    assert (outside / "secret.jsonl").exists() and (inbox / ".hidden" / "skip.jsonl").exists()
    assert (inbox / "sub" / ".cache.jsonl").exists()
    link = "a symbolic link (never followed: copy the file in instead)"
    assert notices(board) == [
        f"inbox: sub/dir/link.jsonl is not taken as a quest: it is {link}; it stays where it is",
        f"inbox: sub/escape is not taken as a quest: it is {link}; it stays where it is",
    ]


def test_a_subfolder_the_trainer_emptied_is_removed_and_one_still_holding_anything_stays(board):
    inbox = board.home.inbox
    for where in ("done/deep/a.jsonl", "done/b.jsonl", "busy/c.jsonl", "hidden/d.jsonl"):
        (inbox / where).parent.mkdir(parents=True, exist_ok=True)
        drop(board, where, lines(20))
    (inbox / "busy" / "copying.jsonl").write_text(lines(5))  # being written: not settled, not taken
    (inbox / "hidden" / ".DS_Store").write_bytes(b"\0")
    (inbox / "empty").mkdir()  # never held a quest: not the trainer's to remove
    board.take_inbox()

    queued = sorted(entry.name for entry in board.queue.listing())
    assert queued == ["busy-c.jsonl", "done-b.jsonl", "done-deep-a.jsonl", "hidden-d.jsonl"]
    assert sorted(p.name for p in inbox.iterdir()) == ["busy", "empty", "hidden"]  # done/deep and done: gone
    assert [p.name for p in (inbox / "busy").iterdir()] == ["copying.jsonl"]


def test_the_inbox_itself_stays_when_its_last_subfolder_goes(board):
    (board.home.inbox / "only").mkdir()
    drop(board, "only/one.jsonl", lines(20))
    board.take_inbox()
    assert [entry.name for entry in board.queue.listing()] == ["only-one.jsonl"]
    assert board.home.inbox.is_dir() and not any(board.home.inbox.iterdir())


def test_a_skill_quest_may_answer_with_a_word_of_its_prompt_but_a_file_people_bring_may_not(board):
    """BIN L7's min and max answered in one shot (the brief tier) are one of their operands, 8
    symbols long: the leakage rule flagged 14 % of an idle quest and every L7 idle quest failed
    whole. A skill's answers passed its grader."""
    skill = get_skill("bin")
    params = {**curriculum.training_params(skill, 7), "ops": ["min", "max"], "tiers": ["brief"]}
    rng = random.Random(7)
    samples = [skill.family.generate(params, rng) for _ in range(40)]
    text = "".join(json.dumps({"messages": curriculum.chat(skill, s, s.answer)}) + "\n" for s in samples)
    tokenizer = load_tokenizer(RealmConfig().model.name)

    idle = lineage.write_quest(board.home, board.home.queued("low"), "idle-bin-L7-1.jsonl", text, {"source": "idle"})
    taken = board.take(idle, tokenizer)
    assert taken is not None and len(taken[1]) == len(samples)

    brought = board.home.queued("low") / "mine.jsonl"
    brought.write_text(text, encoding="utf-8")
    assert board.take(brought, tokenizer) is None
    [result] = [r for r in board.publisher.state.board.recent if r.name == "mine.jsonl"]
    assert result.outcome == "failed" and "answer leakage" in result.reason
