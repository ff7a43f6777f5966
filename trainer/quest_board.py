"""The quest board: a quest's life from the inbox to done, skipped or failed, and the quest
requests that come over the bus.

Every quest is admitted, started, finished, skipped or failed here, and only here are
``QuestQueued``, ``QueueChanged``, ``QuestStarted`` and ``QuestFinished`` published, so the board
in every TUI shows the queue as it is on disk. Both the training thread (the inbox between
steps, the battles) and the control thread (``realm quest add`` and friends) come here; one lock
keeps their moves apart. A quest's source is read from its lineage record (``trainer.lineage``).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

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
    QuestStarted,
    QueueChanged,
    Reply,
)
from realm.quests.formats import QuestFormatError
from realm.quests.validate import Verdict, check_for_training, check_intake, write_quarantine
from trainer import lineage
from trainer.queue import MAX_NAME, QuestGone, QuestQueue, intake_name, renamed_because

log = logging.getLogger("realm.trainer")

REMEMBERED_ADDS = 64  # request ids kept so a retried add (Lazy Pirate) is answered, not repeated


class QuestBoard:
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
                    path = self.queue.bring_up(path)  # a subfolder's file: flattened into the inbox
                    if path is not None:
                        self.admit(path, "normal")

    def _notice_strays(self) -> None:
        """Say once per entry that a folder, link or FIFO in the inbox is not taken as a quest."""
        for path in self.queue.inbox_strays():
            where = str(path.relative_to(self.home.inbox))
            if where in self._strays_noticed:
                continue
            self._strays_noticed.add(where)
            text = f"inbox: {intake_name(where)} is not taken as a quest: it is {_kind(path)}; it stays where it is"
            log.warning(text)
            self.publisher.emit(Notice(level="warning", text=text))

    def admit(self, path: Path, priority: str) -> tuple[Path, Verdict | None, str]:
        """An inbox file -> queued (accepted) or failed (refused, with its reason): named, checked
        (layer 1 and QUICK), then moved.

        Returns (where it went, the verdict or None, the refusal reason or "").
        """
        with self._lock:
            path = self._take_name(path)
            try:
                verdict = check_intake(path, self.config.quests)
            except QuestFormatError as exc:
                return self._refuse(path, str(exc)), None, str(exc)
            except Exception as exc:  # one file must not stop the trainer, nor stop it again at each start
                reason = _unchecked(path, exc)
                return self._refuse(path, reason), None, reason
            quarantine = write_quarantine(self.home.quarantine, path.name, verdict)
            if not verdict.accepted:
                reason = f"{path.name}: {verdict.refused}" + _see(quarantine, self.home)
                return self._refuse(path, reason), verdict, reason
            queued = self.queue.admit(path, priority)
            info = QuestInfo(
                name=queued.name,
                examples=len(verdict.examples),
                priority=priority,
                source=lineage.source(self.home, queued.name),
                title=lineage.title(self.home, queued.name),
                format=verdict.quest.format,
                quarantined=len(verdict.rejections),
            )
            self.publisher.emit(QuestQueued(quest=info))
            if verdict.rejections:
                text = f"quest {queued.name}: {len(verdict.rejections)} bad line(s) quarantined" + _see(
                    quarantine, self.home
                )
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
        self._finished(failed.name, "failed", reason=reason)
        return failed

    def announce_queue(self) -> None:
        """Every queued quest, as a trainer that starts finds them."""
        for priority, path in self.queue.queued():
            info = QuestInfo(
                name=path.name,
                priority=priority,
                source=lineage.source(self.home, path.name),
                title=lineage.title(self.home, path.name),
            )
            self.publisher.emit(QuestQueued(quest=info))

    # ------------------------------------------------------------------ a battle's life

    def take(self, path: Path, tokenizer) -> tuple[Path, list] | None:
        """Make the queued quest ``path`` the active one and check it at every depth: (its
        path in active/, its examples), or None when it failed whole. ``QuestGone`` when a
        request moved it first."""
        active = self.queue.activate(path)
        try:
            return active, self._prepare(active, tokenizer)
        except QuestFormatError as exc:
            self.fail(active, str(exc))
        except Exception as exc:  # an active quest that stops the trainer stops it at each start too
            self.fail(active, _unchecked(active, exc))
        return None

    def start(
        self, active: Path, priority: str, examples: int, held_out: int, total_steps: int, split: str, epochs: int = 1
    ) -> QuestInfo:
        """The battle begins: ``split`` says how its examples were divided (said for the quests a
        person brought, not for the game's own)."""
        quest = QuestInfo(
            name=active.name,
            examples=examples,
            priority=priority,
            held_out=held_out,
            source=lineage.source(self.home, active.name),
            epochs=epochs,
            title=lineage.title(self.home, active.name),
        )
        if quest.source not in lineage.OWN_SOURCES:
            self.publisher.emit(Notice(level="info", text=f"quest {active.name}: {split}"))
        self.publisher.emit(QuestStarted(quest=quest, total_steps=total_steps))
        return quest

    def finish(
        self, active: Path, steps: int, trained: int = 0, val: tuple[float | None, float | None] = (None, None)
    ) -> None:
        """The quest is won: ``trained`` rows in ``steps`` steps, its held-out loss ``val`` (before, after)."""
        self.queue.finish(active, "done")
        self._finished(active.name, "done", steps=steps, trained=trained, val=val)

    def skip(self, active: Path, done_steps: int, total: int) -> None:
        reason = f"skipped by request after {done_steps} of {total} steps"
        self.queue.finish(active, "skipped", reason)
        log.info("quest %s %s", active.name, reason)
        self._finished(active.name, "skipped", steps=done_steps, reason=reason)

    def fail(self, active: Path, reason: str) -> None:
        self.queue.finish(active, "failed", reason)
        log.warning("quest %s failed: %s", active.name, reason)
        self._finished(active.name, "failed", reason=reason)

    def _finished(
        self,
        name: str,
        outcome: str,
        steps: int = 0,
        reason: str = "",
        trained: int = 0,
        val: tuple[float | None, float | None] = (None, None),
    ) -> None:
        result = QuestResult(
            name=name,
            outcome=outcome,
            steps=steps,
            reason=reason,
            time=time.time(),
            source=lineage.source(self.home, name),
            title=lineage.title(self.home, name),
            examples_trained=trained,
            val_loss_start=val[0],
            val_loss_end=val[1],
        )
        self.publisher.emit(QuestFinished(result=result))

    def _prepare(self, active: Path, tokenizer) -> list:
        """The active quest's examples after every validation layer; the rejected lines go to
        the quarantine. Raises ``QuestFormatError`` when the quest fails whole."""
        rules = self.config.quests
        if lineage.source(self.home, active.name) in lineage.SKILL_SOURCES:
            # a skill's answer may be a word of its prompt by design (BIN's min and max answer an
            # operand), and its grader checked each one: the leakage rule is for data people bring
            rules = msgspec.structs.replace(rules, answer_leak=False)
        verdict = check_for_training(active, rules, tokenizer, self.config.train.max_length)
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

    def handlers(self) -> dict[type, Callable]:
        """Request type -> handler, for the daemon's dispatch table."""
        return {
            QuestAddRequest: self.add,
            QuestListRequest: lambda request: QuestList(quests=tuple(self.queue.listing())),
            QuestRetryRequest: _named(self._retry),
            QuestRemoveRequest: _named(self._remove),
            QuestMoveRequest: _named(self._move),
        }

    def add(self, request: QuestAddRequest, meta: dict | None = None) -> Reply:
        """Write the request's content into the inbox and admit it at once. ``meta``: the
        lineage record of a quest the trainer drew for the request, written under the name the
        quest gets. A retried request (same ``request_id``) gets the first answer again."""
        problem = _bad_name(request.name)
        if problem:  # before any use: a name from the bus never reaches a path unchecked
            return ErrorReply(message=f"quest name {request.name!r}: {problem}")
        with self._lock:
            if request.request_id and request.request_id in self._answered:
                return self._answered[request.request_id]
            reply = self._add_once(request, meta)
            if request.request_id:
                self._answered[request.request_id] = reply
                while len(self._answered) > REMEMBERED_ADDS:
                    self._answered.popitem(last=False)
            return reply

    def _add_once(self, request: QuestAddRequest, meta: dict | None) -> Reply:
        if request.epochs < 0:
            return ErrorReply(message=f"epochs: {request.epochs} is not a number of passes; give 1 or more")
        name = self.queue.unique_name(request.name)
        if request.epochs:
            meta = {**(meta or {"source": "inbox"}), "epochs": request.epochs}
        if meta is not None:
            lineage.record(self.home, name, meta)
        path = atomic_write(self.home.inbox / name, request.content, private=True)
        where, verdict, refused = self.admit(path, request.priority)
        if refused:
            return ErrorReply(message=f"refused; moved to quests/failed/{where.name}: {refused}")
        epochs = quest_epochs(self.home, where.name, self.config)
        passes = f", {epochs} epochs" if epochs > 1 else ""
        return Ack(message=f"queued {where.name} ({request.priority}{passes}): {verdict.summary()}")

    def _retry(self, request: QuestRetryRequest) -> Reply:
        with self._lock:
            queued = self.queue.retry(request.name, request.priority)
        info = QuestInfo(
            name=queued.name,
            priority=request.priority,
            source=lineage.source(self.home, queued.name),
            title=lineage.title(self.home, queued.name),
        )
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
            quest = known.get(path.name) or QuestInfo(
                name=path.name, source=lineage.source(self.home, path.name), title=lineage.title(self.home, path.name)
            )
            queued.append(QuestInfo(**{**_fields(quest), "priority": priority}))
        self.publisher.emit(QueueChanged(queued=tuple(queued)))


def quest_epochs(home: Home, name: str, config: RealmConfig) -> int:
    """Passes over quest ``name``'s lines: its own (``realm quest add --epochs``), else ``quests.epochs``."""
    epochs = lineage.read(home, name).get("epochs")
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 1 else config.quests.epochs


def _fields(quest: QuestInfo) -> dict:
    return {field: getattr(quest, field) for field in quest.__struct_fields__}


def _named(handler: Callable[..., Reply]) -> Callable[..., Reply]:
    """``handler`` for a request naming a quest: the name is checked before any use (a name
    from the bus never reaches a path unchecked), and a quest gone meanwhile is an error reply."""

    def handle(request) -> Reply:
        problem = _bad_name(request.name)
        if problem:
            return ErrorReply(message=f"quest name {request.name!r}: {problem}")
        try:
            return handler(request)
        except QuestGone as exc:
            return ErrorReply(message=str(exc))

    return handle


def _unchecked(path: Path, exc: Exception) -> str:
    """A check that failed in a way no rule foresaw: the file fails, the trainer goes on."""
    log.exception("checking quest %s failed", path.name)
    return f"{path.name}: could not be checked ({type(exc).__name__}: {exc}); a bug in realm: please report it"


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
    return "not a regular file"
