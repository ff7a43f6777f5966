"""The quest desk: how quests enter the queue, and the quest requests that come over the bus.

Both the training thread (the inbox, between steps) and the control thread (``realm quest
add`` and friends) come here; one lock keeps their moves apart. Every change is published, so
the board in every TUI shows the queue as it is on disk.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from pathlib import Path

from realm.bus import Publisher
from realm.config import RealmConfig
from realm.files import atomic_write
from realm.home import Home
from realm.protocol import (
    Ack,
    ErrorReply,
    Notice,
    QuestAddRequest,
    QuestFinished,
    QuestInfo,
    QuestList,
    QuestListRequest,
    QuestMoveRequest,
    QuestQueued,
    QuestRemoveRequest,
    QuestResult,
    QuestRetryRequest,
    QueueChanged,
    Reply,
)
from trainer.data import QuestFormatError
from trainer.queue import MAX_NAME, QuestGone, QuestQueue, intake_name, renamed_because
from trainer.validate import Verdict, check_for_training, check_intake, write_quarantine

log = logging.getLogger("realm.trainer")

QUEST_REQUESTS = (QuestAddRequest, QuestListRequest, QuestRetryRequest, QuestRemoveRequest, QuestMoveRequest)
REMEMBERED_ADDS = 64  # request ids kept so a retried add (Lazy Pirate) is answered, not repeated


class QuestDesk:
    def __init__(self, config: RealmConfig, home: Home, queue: QuestQueue, publisher: Publisher) -> None:
        self.config = config
        self.home = home
        self.queue = queue
        self.publisher = publisher
        self._lock = threading.RLock()
        self._answered: collections.OrderedDict[str, Reply] = collections.OrderedDict()
        self._strays_noticed: set[str] = set()

    # ------------------------------------------------------------------ intake

    def take_inbox(self) -> None:
        """Admit every settled inbox file (QUICK validation), oldest first."""
        self._notice_strays()
        for path in self.queue.inbox_files():
            with self._lock:
                if path.exists():
                    self.admit(path, "normal")

    def _notice_strays(self) -> None:
        """Say once per entry that a folder, link or FIFO in the inbox is not taken as a quest."""
        for path in self.queue.inbox_strays():
            if path.name in self._strays_noticed:
                continue
            self._strays_noticed.add(path.name)
            text = f"inbox: {intake_name(path.name)} is not taken as a quest: it is {_kind(path)}; it stays where it is"
            log.warning(text)
            self.publisher.emit(Notice(level="warning", text=text))

    def admit(self, path: Path, priority: str) -> tuple[Path, Verdict | None, str]:
        """An inbox file -> queued (accepted) or failed (refused, with its reason).

        Returns (where it went, the verdict or None, the refusal reason or "").
        """
        with self._lock:
            path = self._take_name(path)
            name = path.name
            try:
                verdict = check_intake(path, self.config.quests)
            except QuestFormatError as exc:
                return self._refuse(path, str(exc)), None, str(exc)
            quarantine = write_quarantine(self.home.quarantine, name, verdict)
            if not verdict.accepted:
                reason = f"{path.name}: {verdict.refused}" + _see(quarantine, self.home)
                return self._refuse(path, reason), verdict, reason
            queued = self.queue.admit(path, priority)
            info = QuestInfo(
                name=queued.name,
                examples=len(verdict.examples),
                priority=priority,
                source="inbox",
                format=verdict.quest.format,
                quarantined=len(verdict.rejections),
            )
            self.publisher.emit(QuestQueued(quest=info))
            if verdict.rejections:
                text = f"quest {queued.name}: {len(verdict.rejections)} bad line(s) quarantined" + _see(quarantine, self.home)
                self.publisher.emit(Notice(level="warning", text=text))
            return queued, verdict, ""

    def _take_name(self, path: Path) -> Path:
        """Rename the inbox file to its quest name first, so every message uses that name; a
        name changed for more than uniqueness keeps its original in the lineage."""
        original = path.name
        name = self.queue.unique_name(original)
        while name != path.name:
            path = self.queue.rename_in_inbox(path, name)
            name = self.queue.unique_name(path.name)
        why = renamed_because(original)
        if why:
            meta = self.queue.keep_original(name, original).relative_to(self.home.root)
            text = f"inbox: a quest file was renamed {name} because {why}; its old name is in {meta}"
            log.warning(text)
            self.publisher.emit(Notice(level="warning", text=text))
        return path

    def _refuse(self, path: Path, reason: str) -> Path:
        failed = self.queue.reject(path, reason)
        log.warning("quest %s refused: %s", failed.name, reason)
        result = QuestResult(name=failed.name, outcome="failed", reason=reason, time=time.time())
        self.publisher.emit(QuestFinished(result=result))
        return failed

    # ------------------------------------------------------------------ before a battle

    def prepare(self, active: Path, tokenizer) -> list:
        """The active quest's examples after every validation layer; the rejected lines go to
        the quarantine. Raises ``QuestFormatError`` when the quest fails whole."""
        verdict = check_for_training(active, self.config.quests, tokenizer, self.config.train.max_length)
        quarantine = write_quarantine(self.home.quarantine, active.name, verdict)
        if not verdict.accepted:
            raise QuestFormatError(active, None, verdict.refused + _see(quarantine, self.home))
        notes = []
        if verdict.rejections:
            notes.append(f"{len(verdict.rejections)} line(s) quarantined")
        if verdict.truncated:
            notes.append(f"{len(verdict.truncated)} example(s) truncated to train.max_length")
        if notes:
            text = f"quest {active.name}: " + ", ".join(notes) + _see(quarantine, self.home)
            self.publisher.emit(Notice(level="warning", text=text))
        return verdict.examples

    # ------------------------------------------------------------------ requests

    def handle(self, request) -> Reply:
        problem = _bad_name(request.name) if hasattr(request, "name") else ""
        if problem:  # before any use: a name from the bus never reaches a path unchecked
            return ErrorReply(message=f"quest name {request.name!r}: {problem}")
        try:
            if isinstance(request, QuestAddRequest):
                return self._add(request)
            if isinstance(request, QuestListRequest):
                return QuestList(quests=tuple(self.queue.listing()))
            if isinstance(request, QuestRetryRequest):
                return self._retry(request)
            if isinstance(request, QuestRemoveRequest):
                return self._remove(request)
            if isinstance(request, QuestMoveRequest):
                return self._move(request)
        except QuestGone as exc:
            return ErrorReply(message=str(exc))
        raise ValueError(f"not a quest request: {type(request).__name__}")

    def _add(self, request: QuestAddRequest) -> Reply:
        with self._lock:
            if request.request_id and request.request_id in self._answered:
                return self._answered[request.request_id]
            reply = self._add_once(request)
            if request.request_id:
                self._answered[request.request_id] = reply
                while len(self._answered) > REMEMBERED_ADDS:
                    self._answered.popitem(last=False)
            return reply

    def _add_once(self, request: QuestAddRequest) -> Reply:
        path = self._write_inbox(self.queue.unique_name(request.name), request.content)
        where, verdict, refused = self.admit(path, request.priority)
        if refused:
            return ErrorReply(message=f"refused; moved to quests/failed/{where.name}: {refused}")
        return Ack(message=f"queued {where.name} ({request.priority}): {verdict.summary()}")

    def _write_inbox(self, name: str, content: bytes) -> Path:
        return atomic_write(self.home.inbox / name, content, private=True)

    def _retry(self, request: QuestRetryRequest) -> Reply:
        with self._lock:
            queued = self.queue.retry(request.name, request.priority)
        info = QuestInfo(name=queued.name, priority=request.priority, source=_source(queued.name))
        self.publisher.emit(QuestQueued(quest=info))
        self.publisher.emit(Notice(level="info", text=f"quest {queued.name} is back in the queue ({request.priority})"))
        return Ack(message=f"requeued {queued.name} ({request.priority})")

    def _remove(self, request: QuestRemoveRequest) -> Reply:
        with self._lock:
            removed = self.queue.remove(request.name)
            self._publish_queue()
        self.publisher.emit(Notice(level="info", text=f"quest {request.name} removed to quests/removed/"))
        return Ack(message=f"removed {request.name}: kept in {removed.relative_to(self.home.root)}")

    def _move(self, request: QuestMoveRequest) -> Reply:
        with self._lock:
            priority, place = self.queue.move(request.name, request.priority, request.position)
            self._publish_queue()
        return Ack(message=f"{request.name} is now {place + 1}. in the {priority} queue")

    def _publish_queue(self) -> None:
        """The board's queue, in the order on disk, keeping what it knew of each quest."""
        known = {quest.name: quest for quest in self.publisher.state.board.queued}
        queued = []
        for priority, path in self.queue.queued():
            quest = known.get(path.name) or QuestInfo(name=path.name, source=_source(path.name))
            queued.append(QuestInfo(**{**_fields(quest), "priority": priority}))
        self.publisher.emit(QueueChanged(queued=tuple(queued)))


def _fields(quest: QuestInfo) -> dict:
    return {field: getattr(quest, field) for field in quest.__struct_fields__}


def _source(name: str) -> str:
    return "idle" if name.startswith("idle-") else "inbox"


def _see(quarantine: Path | None, home: Home) -> str:
    return f" (see {quarantine.relative_to(home.root)})" if quarantine else ""


def _bad_name(name: str) -> str:
    """Why a quest name from a request cannot be used ("" when it can). A name from a person
    is refused, so they choose another; an inbox file has nobody to ask and is renamed."""
    if not name or name != Path(name).name or name in (".", ".."):
        return "must be a plain file name, without folders"
    if name.startswith("."):
        return "must not start with a dot (hidden files are ignored)"
    if intake_name(name) != name:
        why = renamed_because(name).removeprefix("it ")
        return f"{why}; use a name of printable characters, at most {MAX_NAME} bytes"
    return ""


def _kind(path: Path) -> str:
    if path.is_symlink():
        return "a symbolic link (never followed: copy the file in instead)"
    if path.is_dir():
        return "a folder (quests are files directly in the inbox)"
    return "not a regular file"
