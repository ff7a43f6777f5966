"""The layout of the data root (``realm_home``) on the trainer's side."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from realm.errors import RealmError

PRIORITIES = ("high", "normal", "low")


class HomeBusy(RealmError):
    """Another process of the same kind already runs on this data root."""


class Home:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.inbox = root / "inbox"
        self.validation = root / "validation"  # the user's own evaluation files (trainer/suite.py)
        self.quests = root / "quests"
        self.active = self.quests / "active"
        self.done = self.quests / "done"
        self.failed = self.quests / "failed"
        self.skipped = self.quests / "skipped"  # quests ended by `realm skip`
        self.removed = self.quests / "removed"  # quests taken off the queue by `realm quest remove`
        self.quarantine = self.quests / "quarantine"  # the rejected lines of each quest, with reasons
        self.lineage = self.quests / "lineage"  # NAME.meta.json: where each quest came from
        self.vault = root / "vault"
        self.checkpoints = self.vault / "checkpoints"
        self.db = self.vault / "realm.db"
        self.run = root / "run"  # ipc sockets and locks, private to this user (0700)
        self.trainer_lock = self.run / "trainer.lock"  # one trainer per data root
        self.oracle_lock = self.run / "oracle.lock"  # one local oracle per data root
        self.logs = root / "logs"

    def queued(self, priority: str) -> Path:
        return self.quests / "queued" / priority

    def ensure(self) -> "Home":
        folders = [self.inbox, self.validation, self.active, self.done, self.failed, self.checkpoints, self.logs]
        folders += [self.skipped, self.removed, self.quarantine, self.lineage]
        folders += [self.queued(priority) for priority in PRIORITIES]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True)
        self.run.chmod(0o700)
        return self


def hold_lock(path: Path, what: str, busy: type[HomeBusy] = HomeBusy) -> IO[str]:
    """Take the lock file ``path`` for this process, with its pid written in it, until the
    returned file is closed or the process ends; raise ``busy`` naming the pid that holds it.

    One ``what`` per data root: a second one would take over the first one's ipc sockets.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise busy(f"another {what} (pid {holder}) already runs on {path.parent.parent}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def lock_holder(path: Path) -> str:
    """The pid in lock file ``path`` while a process holds it; "" when nobody does."""
    try:
        handle = open(path)
    except FileNotFoundError:
        return ""
    with handle:  # closing it lets go of the shared lock taken to look
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "unknown"
        return ""
