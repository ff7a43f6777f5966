"""The layout of the data root (``realm_home``) on the trainer's side."""

from __future__ import annotations

import os
from pathlib import Path

PRIORITIES = ("high", "normal", "low")


class Home:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.inbox = root / "inbox"
        self.quests = root / "quests"
        self.active = self.quests / "active"
        self.done = self.quests / "done"
        self.failed = self.quests / "failed"
        self.skipped = self.quests / "skipped"  # quests ended by `realm skip`
        self.removed = self.quests / "removed"  # quests taken off the queue by `realm quest remove`
        self.quarantine = self.quests / "quarantine"  # the rejected lines of each quest, with reasons
        self.progress = self.quests / "progress"  # how far each unfinished quest got
        self.lineage = self.quests / "lineage"  # NAME.meta.json: where each quest came from
        self.vault = root / "vault"
        self.checkpoints = self.vault / "checkpoints"
        self.db = self.vault / "realm.db"
        self.run = root / "run"
        self.logs = root / "logs"

    def queued(self, priority: str) -> Path:
        return self.quests / "queued" / priority

    def ensure(self) -> "Home":
        folders = [self.inbox, self.active, self.done, self.failed, self.checkpoints, self.logs]
        folders += [self.skipped, self.removed, self.quarantine, self.progress, self.lineage]
        folders += [self.queued(priority) for priority in PRIORITIES]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True)
        self.run.chmod(0o700)
        return self


def write_private(path: Path, data: str | bytes) -> Path:
    """Write ``path`` atomically, readable by this user only (0600), like the keys.

    Quest data and the lines rejected from it may be anyone's secrets: they never become
    readable by others because the umask says so.
    """
    tmp = path.with_name(f".{path.name}.tmp")  # hidden: the inbox and the folders skip it
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o600)  # a tmp left by an earlier crash kept its old mode
    os.replace(tmp, path)
    return path
