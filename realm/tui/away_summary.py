"""'While you were away': the app's memory of what it last saw, and a summary of the journal.

The app keeps one ``Mark`` per trainer endpoint (run id, bus sequence, time, step) in a small
JSON file under the user's state folder. On reconnect it asks the trainer's journal for what
happened since that mark, and ``summarise`` turns the entries into what the modal says.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from realm.game.narration import counted
from realm.protocol import Journal

SEEN_FILE = "seen.json"
SHOWN_LINES = 12
SEEN_SAVE_S = 2.0  # how often the "last seen" mark is written while events flow


@dataclass(frozen=True)
class Mark:
    run: str
    seq: int
    time: float
    step: int = 0


class SeenStore:
    """``{endpoint: Mark}`` in ``{folder}/seen.json``, written atomically; a bad file is ignored."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / SEEN_FILE

    def _load(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, endpoint: str) -> Mark | None:
        raw = self._load().get(endpoint)
        try:
            return Mark(run=str(raw["run"]), seq=int(raw["seq"]), time=float(raw["time"]), step=int(raw.get("step", 0)))
        except (TypeError, KeyError, ValueError):
            return None

    def put(self, endpoint: str, mark: Mark) -> None:
        data = self._load()
        data[endpoint] = asdict(mark)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # remembering is a nicety: a read-only home must not break the game


class SeenMarks:
    """The app's mark for one trainer endpoint: read on a fresh snapshot, written at most every
    ``SEEN_SAVE_S`` while events flow (at once when forced: a snapshot, the app closing)."""

    def __init__(self, folder: Path, endpoint: str) -> None:
        self.store, self.endpoint = SeenStore(folder), endpoint
        self._saved_at, self._seq = 0.0, -1

    def previous(self) -> Mark | None:
        return self.store.get(self.endpoint)

    def remember(self, mark: Mark, force: bool = False) -> None:
        now = time.monotonic()
        if not force and (mark.seq == self._seq or now - self._saved_at < SEEN_SAVE_S):
            return
        self._saved_at, self._seq = now, mark.seq
        self.store.put(self.endpoint, mark)


@dataclass(frozen=True)
class AwaySummary:
    since: float
    steps: int  # steps trained since the mark (may be negative after a restore from an older checkpoint)
    levels: tuple[str, ...]
    quests_done: int
    quests_failed: tuple[str, ...]
    checkpoints: int
    achievements: tuple[str, ...]
    restarts: int
    lines: tuple[str, ...]  # the newest journal lines
    more: bool

    def headline(self) -> str:
        parts = [f"DIO trained {counted(self.steps, 'step')}"]
        if self.levels:
            parts.append(f"gained {counted(len(self.levels), 'level')}")
        if self.quests_done:
            parts.append(f"won {counted(self.quests_done, 'quest')}")
        if self.quests_failed:
            parts.append(f"lost {len(self.quests_failed)}")
        if self.checkpoints:
            parts.append(f"saved {counted(self.checkpoints, 'checkpoint')}")
        if self.achievements:
            parts.append(f"earned {counted(len(self.achievements), 'achievement')}")
        return ", ".join(parts) + "."


def summarise(journal: Journal, mark: Mark, step_now: int) -> AwaySummary:
    entries = journal.entries
    return AwaySummary(
        since=mark.time,
        steps=step_now - mark.step,
        levels=tuple(e.text for e in entries if e.kind == "level"),
        quests_done=sum(1 for e in entries if e.kind == "quest_done"),
        quests_failed=tuple(e.text for e in entries if e.kind == "quest_failed"),
        checkpoints=sum(1 for e in entries if e.kind == "checkpoint"),
        achievements=tuple(_achievement_name(e.text) for e in entries if e.kind == "achievement"),
        restarts=sum(1 for e in entries if e.kind == "trainer"),
        lines=tuple(e.text for e in entries[-SHOWN_LINES:]),
        more=journal.more or len(entries) > SHOWN_LINES,
    )


def _achievement_name(text: str) -> str:
    """The name in an achievement's journal line (older journals say "★ Achievement: NAME")."""
    return text.removeprefix("achievement unlocked: ").removeprefix("★ Achievement: ")
