"""The trainer's chronicle: an append-only journal of notable events, achievements,
milestones (and the records they are measured against) and the shop's purchases.

All live in ``vault/realm.db`` (SQLite, WAL), in their own tables. ``JournaledPublisher``
is the trainer's ``Publisher`` with the chronicle watching every event it emits: notable
ones (levels, quests, checkpoints, pauses, achievements, config changes, warnings; not
every step) become journal rows, and after each event the achievement rules not yet earned
are checked, and a newly earned one is recorded once and announced as an event; the
milestones an event makes (``realm.game.milestones``) are recorded and announced the same way.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import msgspec

from realm.bus import Publisher
from realm.game.achievements import BY_ID, newly_earned
from realm.game.milestones import RECENT_MILESTONES, Records, reached
from realm.game.narration import level_up_text, narrate
from realm.protocol import (
    Achievement,
    AchievementUnlocked,
    BattleChanged,
    CheckpointSaved,
    ConfigChanged,
    Envelope,
    Event,
    GoldSpent,
    Journal,
    JournalEntry,
    JournalRequest,
    Milestone,
    MilestoneReached,
    Notice,
    QuestFinished,
    QuestStarted,
    RealmState,
    TrainerStarted,
)
from realm.state import level_up

MAX_JOURNAL_REPLY = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    run   TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    time  REAL NOT NULL,
    kind  TEXT NOT NULL,
    step  INTEGER NOT NULL,
    text  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_run_seq ON journal (run, seq);
CREATE TABLE IF NOT EXISTS achievements (
    id    TEXT PRIMARY KEY,
    name  TEXT NOT NULL,
    time  REAL NOT NULL,
    step  INTEGER NOT NULL,
    run   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS milestones (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    run   TEXT NOT NULL,
    time  REAL NOT NULL,
    step  INTEGER NOT NULL,
    kind  TEXT NOT NULL,
    text  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS purchases (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    run    TEXT NOT NULL,
    time   REAL NOT NULL,
    item   TEXT NOT NULL,
    price  INTEGER NOT NULL,
    detail TEXT NOT NULL
);
"""

_KINDS = {
    TrainerStarted: "trainer",
    QuestStarted: "quest",
    CheckpointSaved: "checkpoint",
    AchievementUnlocked: "achievement",
    MilestoneReached: "milestone",
    GoldSpent: "shop",
}


class Chronicle:
    """Journal and achievements in SQLite; safe to call from the trainer's threads."""

    MAX_PENDING = 10_000

    def __init__(self, path: Path, steps_per_level: int = 1000, on_error=lambda exc: None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.steps_per_level = steps_per_level
        self.on_error = on_error
        self.lost = 0
        self._pending: list[tuple[str, tuple]] = []  # writes a full disk refused, retried in order
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._earned = {row[0] for row in self._db.execute("SELECT id FROM achievements")}
        row = self._db.execute("SELECT value FROM records WHERE key = 'milestones'").fetchone()
        self._records = msgspec.json.decode(row[0], type=Records) if row else Records()

    def close(self) -> None:
        with self._lock:
            self._flush_locked()
            self._db.close()

    def flush(self) -> bool:
        """Retry the writes that failed; True once none waits."""
        with self._lock:
            return self._flush_locked()

    def _write(self, sql: str, params: tuple) -> None:
        """Queue one write and try every queued one: a failed write (a full disk) never raises;
        it waits in memory (the oldest dropped past ``MAX_PENDING``) and ``on_error`` hears why."""
        self._pending.append((sql, params))
        if len(self._pending) > self.MAX_PENDING:
            del self._pending[0]
            self.lost += 1
        self._flush_locked()

    def _flush_locked(self) -> bool:
        while self._pending:
            try:
                self._db.execute(*self._pending[0])
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.rollback()
                self.on_error(exc)
                return False
            del self._pending[0]
        return True

    # ------------------------------------------------------------------ journal

    @staticmethod
    def entry_for(event: Event, before: RealmState | None = None) -> tuple[str, str] | None:
        """(kind, text) when the event is worth keeping, else None; the text is the log's
        (``before``: the state the event arrived in)."""
        line = narrate(event, before)
        if line is None:
            return None
        if isinstance(event, BattleChanged):
            kind = "battle" if event.status in ("paused", "stopped") else None
        elif isinstance(event, ConfigChanged):
            kind = "config"
        elif isinstance(event, QuestFinished):
            kind = f"quest_{event.result.outcome}"
        elif isinstance(event, Notice):
            kind = "notice" if event.level != "info" else None
        else:
            kind = _KINDS.get(type(event))
        return (kind, line[1]) if kind is not None else None

    def record(
        self, envelope: Envelope, step: int, reached: int | None = None, before: RealmState | None = None
    ) -> None:
        """Journal ``envelope``'s event if it is worth keeping, and a level DIO ``reached`` by it."""
        if reached is not None:
            entry = ("level", level_up_text(reached, step))
        else:
            entry = self.entry_for(envelope.event, before)
        if entry is None:
            return
        kind, text = entry
        with self._lock:
            self._write(
                "INSERT INTO journal (run, seq, time, kind, step, text) VALUES (?, ?, ?, ?, ?, ?)",
                (envelope.run, envelope.seq, envelope.time, kind, step, text),
            )

    def journal(self, request: JournalRequest) -> Journal:
        limit = max(1, min(request.limit, MAX_JOURNAL_REPLY))
        with self._lock:
            rows = self._db.execute(
                "SELECT id, run, seq, time, kind, text, step FROM journal"
                " WHERE (run = ? AND seq > ?) OR (run != ? AND time > ?)"
                " ORDER BY id DESC LIMIT ?",
                (request.run, request.since_seq, request.run, request.since_time, limit + 1),
            ).fetchall()
        entries = tuple(JournalEntry(*row) for row in reversed(rows[:limit]))
        return Journal(entries=entries, more=len(rows) > limit)

    # ------------------------------------------------------------------ achievements

    def earned(self) -> tuple[Achievement, ...]:
        with self._lock:
            rows = self._db.execute("SELECT id, name, time, step FROM achievements ORDER BY time, id").fetchall()
        return tuple(Achievement(*row) for row in rows)

    def unlock_new(self, state, run: str, now: float) -> list[Achievement]:
        """Record the rules newly true in ``state``; return them (each is earned once, ever)."""
        with self._lock:
            fresh = newly_earned(state, self._earned)
            unlocked = []
            for rule in fresh:
                achievement = Achievement(id=rule.id, name=rule.name, time=now, step=state.hero.steps)
                self._write(
                    "INSERT OR IGNORE INTO achievements (id, name, time, step, run) VALUES (?, ?, ?, ?, ?)",
                    (rule.id, rule.name, now, state.hero.steps, run),
                )
                self._earned.add(rule.id)
                unlocked.append(achievement)
        return unlocked

    # ------------------------------------------------------------------ milestones

    def reach_milestones(self, event: Event, step: int, run: str, now: float) -> list[Milestone]:
        """The milestones ``event`` makes against the records, recorded with the records after it."""
        with self._lock:
            made, records = reached(event, self._records)
            if records != self._records:  # a skill level-up is a milestone that moves no record
                self._records = records
                self._write(
                    "INSERT OR REPLACE INTO records (key, value) VALUES ('milestones', ?)",
                    (msgspec.json.encode(records).decode(),),
                )
            milestones = [Milestone(kind=kind, text=text, time=now, step=step) for kind, text in made]
            for m in milestones:
                self._write(
                    "INSERT INTO milestones (run, time, step, kind, text) VALUES (?, ?, ?, ?, ?)",
                    (run, m.time, m.step, m.kind, m.text),
                )
        return milestones

    def milestones(self) -> tuple[int, tuple[Milestone, ...]]:
        """(how many were reached ever, the most recent ones oldest first)."""
        with self._lock:
            count = self._db.execute("SELECT COUNT(*) FROM milestones").fetchone()[0]
            rows = self._db.execute(
                "SELECT kind, text, time, step FROM milestones ORDER BY id DESC LIMIT ?", (RECENT_MILESTONES,)
            ).fetchall()
        return count, tuple(Milestone(*row) for row in reversed(rows))

    # ------------------------------------------------------------------ purchases

    def gold_spent(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COALESCE(SUM(price), 0) FROM purchases").fetchone()[0]

    def record_purchase(self, run: str, now: float, item: str, price: int, detail: str) -> None:
        """Record a purchase; raises ``sqlite3.Error`` when it cannot be written (nothing is sold then)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO purchases (run, time, item, price, detail) VALUES (?, ?, ?, ?, ?)",
                (run, now, item, price, detail),
            )


class JournaledPublisher(Publisher):
    """A ``Publisher`` whose every event is shown to a ``Chronicle`` after it is published."""

    def __init__(self, *args, chronicle: Chronicle, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.chronicle = chronicle
        self._journaled: RealmState = self.state  # the state as of the last event journaled

    def emit(self, event: Event) -> Envelope:
        envelope = super().emit(event)
        state = self.state
        before, self._journaled = self._journaled, state
        self.chronicle.record(envelope, state.hero.steps, level_up(before, state), before)
        for milestone in self.chronicle.reach_milestones(event, state.hero.steps, self.run, envelope.time):
            self.emit(MilestoneReached(milestone=milestone))
        if not isinstance(event, AchievementUnlocked):
            for achievement in self.chronicle.unlock_new(state, self.run, envelope.time):
                self.emit(AchievementUnlocked(achievement=achievement))
        return envelope


__all__ = ["Chronicle", "JournaledPublisher", "BY_ID"]
