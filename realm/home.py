"""The layout of the data root (``realm_home``) on the trainer's side."""

from __future__ import annotations

from pathlib import Path

PRIORITIES = ("high", "normal", "low")


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
        self.progress = self.quests / "progress"  # how far each unfinished quest got
        self.vault = root / "vault"
        self.checkpoints = self.vault / "checkpoints"
        self.db = self.vault / "realm.db"
        self.run = root / "run"
        self.logs = root / "logs"

    def queued(self, priority: str) -> Path:
        return self.quests / "queued" / priority

    def ensure(self) -> "Home":
        folders = [self.inbox, self.validation, self.active, self.done, self.failed, self.checkpoints, self.logs]
        folders += [self.skipped, self.removed, self.quarantine, self.progress]
        folders += [self.queued(priority) for priority in PRIORITIES]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True)
        self.run.chmod(0o700)
        return self
