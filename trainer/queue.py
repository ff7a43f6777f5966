"""The quest queue on disk: inbox -> queued/{high,normal,low} -> active -> done | skipped | failed.

Every move is one ``os.replace`` within the data root, so a quest is always in exactly one
folder; nothing is ever deleted (a removed quest goes to ``removed/``). A failed or skipped
quest gets a ``.reason.txt`` beside it. Within a priority the order is FIFO by the time of
queueing (the file's mtime), which is also how a reorder is written down.

A quest's name is unique across all these folders from the moment it is admitted, so one
name means one quest in every request, in the quarantine, in its lineage and in the position
a checkpoint keeps of it.

The training thread and the control thread both move quests; multi-step changes hold a lock,
and a quest picked for training that a request moved meanwhile raises ``QuestGone``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
import unicodedata
from pathlib import Path

from realm.files import atomic_write
from realm.home import PRIORITIES, Home
from realm.protocol import QuestEntry
from trainer import lineage

SETTLE_S = 1.0  # a file modified more recently than this may still be being copied in
REASON_SUFFIX = ".reason.txt"
MAX_NAME = 200  # bytes: leaves room under the usual 255-byte limit for every name derived from it
# (".NAME.quarantine.jsonl.tmp", "NAME.reason.txt", ".NAME.meta.json.tmp", "NAME-12.ext")
HASH_CHARS = 10  # the hash that keeps a shortened name distinct and the same on every try


class QuestGone(LookupError):
    """The quest is no longer where it was (a request moved or removed it)."""


class QuestQueue:
    def __init__(self, home: Home) -> None:
        self.home = home
        self.lock = threading.RLock()

    # ------------------------------------------------------------------ intake

    def inbox_files(self) -> list[Path]:
        """Inbox files old enough to be complete, oldest first, in subfolders too.

        Only regular files are quests. A symbolic link is not followed (it could lead anywhere
        the trainer can read, outside HOME): ``inbox_strays`` names it, with FIFOs and the like.
        Hidden files and folders (``.name``) are not looked at.
        """
        now = time.time()
        files = []
        for path in self._inbox_entries():
            try:
                info = path.lstat()
            except FileNotFoundError:  # taken by the other thread meanwhile
                continue
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime >= SETTLE_S:
                files.append(path)
        return sorted(files, key=_age_key)

    def inbox_strays(self) -> list[Path]:
        """What the inbox holds that is not a quest file: links (to files or folders), FIFOs and the like."""
        strays = []
        for path in self._inbox_entries():
            try:
                regular = stat.S_ISREG(path.lstat().st_mode)
            except FileNotFoundError:
                continue
            if not regular:
                strays.append(path)
        return sorted(strays)

    def _inbox_entries(self) -> list[Path]:
        """Every entry of the inbox and its real (not linked, not hidden) subfolders, but those folders."""
        entries = []
        for folder, dirs, names in os.walk(self.home.inbox, followlinks=False):
            links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in links)
            entries += [Path(folder, name) for name in [*names, *links] if not name.startswith(".")]
        return entries

    def flat_name(self, path: Path) -> str:
        """An inbox file's quest name: its path under the inbox, folders joined by ``-``
        (``inbox/sub/dir/file.jsonl`` is ``sub-dir-file.jsonl``)."""
        return "-".join(path.relative_to(self.home.inbox).parts)

    def bring_up(self, path: Path) -> Path | None:
        """Move an inbox subfolder's file to the inbox itself, under its flat name, and remove the
        folders that left empty; None when the file is no longer inside the inbox (a folder on its
        way was swapped for a link)."""
        if path.parent == self.home.inbox:
            return path
        if not path.parent.resolve().is_relative_to(self.home.inbox.resolve()):
            return None
        flat = self.rename_in_inbox(path, self.flat_name(path))
        self._remove_emptied(path.parent)
        return flat

    def _remove_emptied(self, folder: Path) -> None:
        """``folder``, then each one above it below the inbox, while empty. ``rmdir`` refuses a folder
        that holds anything, so one with a file still being copied in (or a hidden one) stays."""
        while folder != self.home.inbox and folder.is_relative_to(self.home.inbox):
            try:
                folder.rmdir()
            except OSError:  # not empty, or taken away meanwhile
                return
            folder = folder.parent

    def admit(self, path: Path, priority: str = "normal") -> Path:
        """Inbox -> queued, under a name no other quest has."""
        with self.lock:
            target = self.home.queued(priority) / self.unique_name(path.name)
            os.replace(path, target)
            os.utime(target)  # FIFO within a priority follows the time of queueing
            return target

    def reject(self, path: Path, reason: str) -> Path:
        """Inbox -> failed, with the reason beside it."""
        with self.lock:
            target = self.home.failed / self.unique_name(path.name)
            os.replace(path, target)
            _write_reason(target, reason)
            return target

    def rename_in_inbox(self, path: Path, name: str) -> Path:
        with self.lock:
            target = _free_name(self.home.inbox, name)
            os.replace(path, target)
            return target

    def unique_name(self, name: str) -> str:
        """``intake_name(name)``, or ``stem-2.ext`` etc. when any quest folder already holds that name."""
        name = intake_name(name)
        stem, suffix = Path(name).stem, Path(name).suffix
        candidate, n = name, 2
        while self._taken(candidate):
            candidate = f"{stem}-{n}{suffix}"
            n += 1
        return candidate

    def _taken(self, name: str) -> bool:
        return any((folder / name).exists() for folder in self._quest_folders())

    def _quest_folders(self) -> list[Path]:
        home = self.home
        return [*(home.queued(p) for p in PRIORITIES), home.active, home.done, home.skipped, home.failed, home.removed]

    # ------------------------------------------------------------------ the queue

    def enqueue(self, path: Path, priority: str = "normal") -> Path:
        with self.lock:
            target = _free_name(self.home.queued(priority), path.name)
            os.replace(path, target)
            os.utime(target)  # FIFO within a priority follows the time of queueing
            return target

    def queued(self) -> list[tuple[str, Path]]:
        """(priority, path) in training order: high first, FIFO within a priority."""
        order = []
        for priority in PRIORITIES:
            order += [(priority, path) for path in self._queued_in(priority)]
        return order

    def _queued_in(self, priority: str) -> list[Path]:
        folder = self.home.queued(priority)
        return sorted(_quest_files(folder), key=_age_key)

    def find_queued(self, name: str) -> tuple[str, Path] | None:
        return next(((p, path) for p, path in self.queued() if path.name == name), None)

    def remove(self, name: str) -> Path:
        """A queued quest -> removed/ (never deleted)."""
        with self.lock:
            found = self.find_queued(name)
            if found is None:
                raise QuestGone(self._not_queued(name))
            target = _free_name(self.home.removed, name)
            os.replace(found[1], target)
            return target

    def move(self, name: str, priority: str | None = None, position: int | None = None) -> tuple[str, int]:
        """Reprioritise and/or reorder a queued quest; returns its (priority, position)."""
        with self.lock:
            found = self.find_queued(name)
            if found is None:
                raise QuestGone(self._not_queued(name))
            current, path = found
            priority = priority or current
            others = [p for p in self._queued_in(priority) if p != path]
            if priority != current:
                target = self.home.queued(priority) / name
                os.replace(path, target)
                path = target
            place = len(others) if position is None else max(0, min(position, len(others)))
            _retime([*others[:place], path, *others[place:]])
            return priority, place

    def retry(self, name: str, priority: str = "normal") -> Path:
        """A failed or skipped quest -> the back of the queue at ``priority``."""
        with self.lock:
            for folder in (self.home.failed, self.home.skipped):
                path = folder / name
                if path.is_file():
                    target = self.home.queued(priority) / name
                    os.replace(path, target)
                    os.utime(target)
                    return target
            raise QuestGone(f"no failed or skipped quest named {name!r}; `realm quest list` shows them")

    def _not_queued(self, name: str) -> str:
        if (self.home.active / name).exists():
            return f"quest {name!r} is being trained; `realm skip` ends it"
        return f"no queued quest named {name!r}; `realm quest list` shows the queue"

    # ------------------------------------------------------------------ a battle's life

    def activate(self, path: Path) -> Path:
        with self.lock:
            target = _free_name(self.home.active, path.name)
            try:
                os.replace(path, target)
            except FileNotFoundError:
                raise QuestGone(f"quest {path.name} left {path.parent.name}/ before it could start") from None
            return target

    def finish(self, active: Path, outcome: str, reason: str = "") -> Path:
        folder = {"done": self.home.done, "skipped": self.home.skipped}.get(outcome, self.home.failed)
        with self.lock:
            target = _free_name(folder, active.name)
            os.replace(active, target)
            if reason:
                _write_reason(target, reason)
            return target

    def requeue_active(self, priority: str = "high") -> list[Path]:
        """Quests left active by a stop or a crash go back to the front of the queue."""
        return [self.enqueue(path, priority) for path in sorted(self.home.active.iterdir()) if path.is_file()]

    def completed_count(self) -> int:
        return sum(1 for _ in _quest_files(self.home.done))

    # ------------------------------------------------------------------ lineage

    def keep_original(self, name: str, original: str) -> Path:
        """Record in the lineage the inbox name that quest ``name`` was renamed from."""
        readable = os.fsencode(original).decode("utf-8", errors="backslashreplace")
        meta = {
            "source": "inbox",
            **lineage.read(self.home, name),
            "original_name": readable,
            "renamed_because": renamed_because(original),
        }
        return lineage.record(self.home, name, meta)

    # ------------------------------------------------------------------ the listing

    def listing(self) -> list[QuestEntry]:
        """Every quest on disk: queued in training order, then active, done, skipped, failed, removed.
        Read under the lock the moves hold: a quest moved between two folders' reads is listed once."""
        with self.lock:
            entries = [
                _entry(self.home, path, "queued", priority=priority, position=index)
                for index, (priority, path) in enumerate(self.queued())
            ]
            for state, folder in (
                ("active", self.home.active),
                ("done", self.home.done),
                ("skipped", self.home.skipped),
                ("failed", self.home.failed),
                ("removed", self.home.removed),
            ):
                entries += [_entry(self.home, path, state) for path in sorted(_quest_files(folder), key=_age_key)]
        return entries


def _entry(home: Home, path: Path, state: str, priority: str | None = None, position: int = 0) -> QuestEntry:
    try:
        stat = path.stat()
    except FileNotFoundError:
        size, mtime = 0, 0.0
    else:
        size, mtime = stat.st_size, stat.st_mtime
    reason_file = path.with_name(path.name + REASON_SUFFIX)
    reason = ""
    if state in ("failed", "skipped") and _present(reason_file):
        reason = reason_file.read_text(encoding="utf-8", errors="replace").strip()
    quarantine = home.quarantine / f"{path.name}.quarantine.jsonl"  # see realm.quests.validate
    return QuestEntry(
        name=path.name,
        state=state,
        priority=priority,
        position=position,
        bytes=size,
        time=mtime,
        reason=reason,
        quarantine=str(quarantine.relative_to(home.root)) if _present(quarantine) else "",
    )


def _present(path: Path) -> bool:
    """``path.exists()``, where a name too long for the filesystem (a quest admitted before
    names had a limit) is simply not there instead of failing the whole listing."""
    try:
        return path.exists()
    except OSError:
        return False


def intake_name(name: str) -> str:
    """The name a quest gets in the queue: valid UTF-8, printable, at most ``MAX_NAME`` bytes.

    Names travel on the bus (text only), head a line of ``realm quest list`` and of the
    journal, and have other names derived from them; the original stays in the lineage.
    """
    clean = _printable(_utf8_name(name))
    if len(clean.encode("utf-8")) <= MAX_NAME:
        return clean
    return _shortened(clean, hashlib.sha256(os.fsencode(name)).hexdigest()[:HASH_CHARS])


def renamed_because(name: str) -> str:
    """Why ``intake_name`` changes ``name`` ("" when it does not)."""
    reasons = []
    if _utf8_name(name) != name:
        reasons.append("it is not valid UTF-8")
    if _printable(name) != name:
        reasons.append("it holds control characters")
    if len(os.fsencode(name)) > MAX_NAME:
        reasons.append(f"it is longer than {MAX_NAME} bytes")
    return " and ".join(reasons)


def _printable(name: str) -> str:
    """``name`` with ``_`` for each control character and line or paragraph separator."""
    return "".join("_" if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in name)


def _shortened(name: str, digest: str) -> str:
    """``name`` cut to ``MAX_NAME`` bytes with ``-DIGEST`` before its extension."""
    stem, suffix = Path(name).stem, Path(name).suffix
    if len(suffix.encode("utf-8")) > 16:  # not an extension, just a dot in a long name
        stem, suffix = name, ""
    room = MAX_NAME - len(f"-{digest}{suffix}".encode("utf-8"))
    head = stem.encode("utf-8")[:room].decode("utf-8", errors="ignore")  # never half a character
    return f"{head}-{digest}{suffix}"


def _utf8_name(name: str) -> str:
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:  # os.listdir's surrogate escapes for undecodable bytes
        return os.fsencode(name).decode("utf-8", errors="replace").replace("\ufffd", "_")


def _quest_files(folder: Path) -> list[Path]:
    return [
        path
        for path in folder.iterdir()
        if path.is_file() and not path.name.startswith(".") and not path.name.endswith(REASON_SUFFIX)
    ]


def _age_key(path: Path) -> tuple[int, str]:
    try:
        return path.stat().st_mtime_ns, path.name
    except FileNotFoundError:
        return 0, path.name


def _retime(paths: list[Path]) -> None:
    """Give ``paths`` increasing mtimes in this order, so FIFO order reads them back so."""
    if not paths:
        return
    base = min(_age_key(path)[0] for path in paths)
    for index, path in enumerate(paths):
        stamp = base + index * 1000  # 1 µs apart: distinct on every filesystem that keeps ns
        os.utime(path, ns=(stamp, stamp))


def _write_reason(target: Path, reason: str) -> None:
    atomic_write(target.with_name(target.name + REASON_SUFFIX), reason + "\n", private=True)


def _free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/stem-2.ext`` etc. when that name is taken."""
    target = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 2
    while target.exists():
        target = folder / f"{stem}-{n}{suffix}"
        n += 1
    return target
