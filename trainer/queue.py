"""The quest queue on disk: inbox -> queued/{high,normal,low} -> active -> done | failed.

Every move is one ``os.replace`` within the data root, so a quest is always in exactly one
folder; nothing is ever deleted. A failed quest gets a ``.reason.txt`` beside it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from realm.home import PRIORITIES, Home
from realm.protocol import QuestInfo

SETTLE_S = 1.0  # a file modified more recently than this may still be being copied in
REASON_SUFFIX = ".reason.txt"


class QuestQueue:
    def __init__(self, home: Home) -> None:
        self.home = home

    def inbox_files(self) -> list[Path]:
        """Inbox files old enough to be complete, oldest first."""
        now = time.time()
        files = [
            path
            for path in self.home.inbox.iterdir()
            if path.is_file() and not path.name.startswith(".") and now - path.stat().st_mtime >= SETTLE_S
        ]
        return sorted(files, key=lambda path: (path.stat().st_mtime_ns, path.name))

    def enqueue(self, path: Path, priority: str = "normal") -> Path:
        target = _free_name(self.home.queued(priority), path.name)
        os.replace(path, target)
        os.utime(target)  # FIFO within a priority follows the time of queueing
        return target

    def queued(self) -> list[tuple[str, Path]]:
        """(priority, path) in training order: high first, FIFO within a priority."""
        order = []
        for priority in PRIORITIES:
            folder = self.home.queued(priority)
            files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
            files.sort(key=lambda path: (path.stat().st_mtime_ns, path.name))
            order += [(priority, path) for path in files]
        return order

    def queued_infos(self) -> list[QuestInfo]:
        return [QuestInfo(name=path.name, priority=priority, source=_source(path)) for priority, path in self.queued()]

    def activate(self, path: Path) -> Path:
        target = _free_name(self.home.active, path.name)
        os.replace(path, target)
        return target

    def finish(self, active: Path, outcome: str, reason: str = "") -> Path:
        folder = self.home.done if outcome in ("done", "skipped") else self.home.failed
        target = _free_name(folder, active.name)
        os.replace(active, target)
        if reason:
            target.with_name(target.name + REASON_SUFFIX).write_text(reason + "\n", encoding="utf-8")
        return target

    def requeue_active(self, priority: str = "high") -> list[Path]:
        """Quests left active by a stop or a crash go back to the front of the queue."""
        return [self.enqueue(path, priority) for path in sorted(self.home.active.iterdir()) if path.is_file()]

    def completed_count(self) -> int:
        return sum(1 for path in self.home.done.iterdir() if path.is_file() and not path.name.endswith(REASON_SUFFIX))


def _source(path: Path) -> str:
    return "idle" if path.name.startswith(("idle-", "correction-")) else "inbox"


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/stem-2.ext`` etc. when that name is taken."""
    target = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 2
    while target.exists():
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target
