"""A quest file on this machine, read into the request that sends it to the trainer (the trainer
may run on another host): used by ``realm quest add`` and the TUI's add."""

from __future__ import annotations

import uuid
from pathlib import Path

from realm.errors import RealmError
from realm.protocol import QuestAddRequest, encode


class QuestFileError(RealmError):
    """A quest file that cannot be sent: the message says why, in one line."""


def quest_add_request(path: Path, priority: str, max_message_bytes: int, epochs: int = 0) -> QuestAddRequest:
    """Read a quest file into one QuestAddRequest, or raise QuestFileError saying why it cannot be sent."""
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise QuestFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise QuestFileError(f"{path}: is a folder, not a quest file") from None
    except OSError as exc:
        raise QuestFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    request = QuestAddRequest(
        name=path.name, content=content, priority=priority, request_id=uuid.uuid4().hex, epochs=epochs
    )
    if len(encode(request)) > max_message_bytes:
        raise QuestFileError(
            f"{path} is {len(content):,} bytes; one bus message carries at most {max_message_bytes:,} "
            "(bus.max_message_bytes): copy the file into the trainer's HOME/inbox/ instead"
        )
    return request
