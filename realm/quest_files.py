"""A quest file on this machine, read into the request that sends it to the trainer (the trainer
may run on another host), after the cheap content checks: used by ``realm quest add`` and the TUI's add."""

from __future__ import annotations

import shlex
import uuid
from pathlib import Path

from realm.config import RealmConfig
from realm.errors import RealmError
from realm.files import FileTooBig, UnreadableFile, read_bytes
from realm.protocol import QuestAddRequest, encode
from realm.quests.check import QuestCheck, check_quest
from realm.quests.formats import QuestFormatError


class QuestFileError(RealmError):
    """A quest file that cannot be sent: the message says why, in one line."""


def quest_add_request(path: Path, priority: str, max_message_bytes: int, epochs: int = 0) -> QuestAddRequest:
    """Read a quest file into one QuestAddRequest, or raise QuestFileError saying why it cannot be sent."""
    try:
        content = read_bytes(path, max_bytes=max_message_bytes)
    except FileTooBig as exc:
        raise QuestFileError(_too_big(path, exc.size, max_message_bytes)) from None
    except UnreadableFile as exc:
        raise QuestFileError(str(exc)) from None
    request = QuestAddRequest(
        name=path.name, content=content, priority=priority, request_id=uuid.uuid4().hex, epochs=epochs
    )
    if len(encode(request)) > max_message_bytes:
        raise QuestFileError(_too_big(path, len(content), max_message_bytes))
    return request


def _too_big(path: Path, size: int, max_message_bytes: int) -> str:
    return (
        f"{path} is {size:,} bytes; one bus message carries at most {max_message_bytes:,} "
        "(bus.max_message_bytes): copy the file into the trainer's HOME/inbox/ instead"
    )


def epochs_count(text: str) -> int:
    """A quest's own number of passes, as ``realm quest add --epochs`` and the TUI's Add dialog take
    it: a whole number, at least 1; ValueError saying why not."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise ValueError(f"{value} is not at least 1")
    return value


def intake_check(path: Path, config: RealmConfig) -> QuestCheck | None:
    """The trainer's checks but the token length, before the file is sent: ``QuestFileError``
    naming the first bad line when the trainer would fail the file whole. None for a file that
    is no quest at all: the trainer refuses that itself and keeps it in quests/failed/."""
    try:
        check = check_quest(path, config, None)
    except QuestFormatError:
        return None
    if check.refused:
        failing = check.failing
        where = f"{path} line {failing[0].line}: {failing[0].reason}" if failing else f"{path}: {check.refused}"
        raise QuestFileError(
            f"not sent, {where} ({len(failing)} of {len(check.lines)} lines would be rejected, over "
            f"quests.max_bad_share {config.quests.max_bad_share:.0%}); see `{check_command(path)}`"
        )
    return check


def skipped_note(check: QuestCheck) -> str:
    """One line for a file sent with some bad lines: how many the trainer will skip, and the first."""
    first = check.failing[0]
    return (
        f"{len(check.failing)} of {len(check.lines)} lines will be skipped (first, line {first.line}: "
        f"{first.reason}); see `{check_command(check.path)}`"
    )


def check_command(path: Path) -> str:
    return f"realm quest check {shlex.quote(str(path))}"
