"""What the events drained on one repaint tick mean for the one-off effects: toasts, hits, speed.

The mirror keeps the envelopes it applied in ``recent``; the app drains them each tick into a
``TickNews``. The events ``policy`` marks for a toast (what a player acts on or celebrates) go
to the ``ToastGate``, which says them together ("3 quests won") and at most once every
``TOAST_EVERY_S`` of the app's clock, however many arrive. A level-up is not read here: the
reducer's ``level_up`` compares the state before and after the tick, and the app tells the gate.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Literal

from realm.game.narration import counted, policy, quest_title
from realm.protocol import (
    AchievementUnlocked,
    ChampionChanged,
    Envelope,
    Event,
    MilestoneReached,
    Notice,
    OracleLoadFailed,
    QuestFinished,
    SkillLevelUp,
    SkillsState,
    StepMetrics,
)

TOAST_EVERY_S = 10.0
TOAST_PART = 32  # characters of one quest title in a toast

Severity = Literal["information", "warning", "error"]


@dataclass(frozen=True)
class Toast:
    text: str
    title: str
    severity: Severity = "information"


@dataclass
class TickNews:
    steps: list[tuple[float, int]] = field(default_factory=list)  # (envelope time, step)
    losses: list[float] = field(default_factory=list)
    toastworthy: list[Event] = field(default_factory=list)  # as ``policy`` says, oldest first
    last_time: float | None = None  # the newest envelope's time


def drain(recent: collections.deque[Envelope]) -> TickNews:
    """Empty ``recent`` into the news of this tick."""
    news = TickNews()
    while recent:
        envelope = recent.popleft()
        event = envelope.event
        news.last_time = envelope.time
        if isinstance(event, StepMetrics):
            news.steps.append((envelope.time, event.step))
            news.losses.append(event.loss)
        elif policy(event).toast:
            news.toastworthy.append(event)
    return news


@dataclass
class _Pending:
    won: list[str] = field(default_factory=list)  # quest titles
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    achievements: list[str] = field(default_factory=list)
    milestones: list[str] = field(default_factory=list)
    skill_levels: list[str] = field(default_factory=list)
    champion: int | None = None
    level: int | None = None
    errors: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (
            self.won
            or self.failed
            or self.skipped
            or self.achievements
            or self.milestones
            or self.skill_levels
            or self.errors
        ) and (self.champion is None and self.level is None)


class ToastGate:
    """Toast-worthy news, held and said together: one toast per ``every_s`` at most."""

    def __init__(self, every_s: float = TOAST_EVERY_S) -> None:
        self.every_s = every_s
        self._pending = _Pending()
        self._last_shown: float | None = None

    def add(self, event: Event, skills: SkillsState | None = None) -> None:
        p = self._pending
        if isinstance(event, QuestFinished):
            title = quest_title(event.result, skills)
            {"done": p.won, "failed": p.failed, "skipped": p.skipped}[event.result.outcome].append(title)
        elif isinstance(event, AchievementUnlocked):
            p.achievements.append(event.achievement.name)
        elif isinstance(event, MilestoneReached):
            p.milestones.append(event.milestone.text)
        elif isinstance(event, SkillLevelUp):
            p.skill_levels.append(f"{event.skill.upper()} L{event.level}")
        elif isinstance(event, ChampionChanged) and event.step is not None:
            p.champion = event.step
        elif isinstance(event, Notice):
            p.errors.append(event.text)
        elif isinstance(event, OracleLoadFailed):
            p.errors.append(f"oracle could not load {event.ref}: {event.reason}")

    def add_level(self, level: int) -> None:
        self._pending.level = level

    def due(self, now: float) -> Toast | None:
        """The toast to show at ``now``, or None (nothing new, or one was shown too recently)."""
        if self._pending.empty():
            return None
        if self._last_shown is not None and now - self._last_shown < self.every_s:
            return None
        toast = _toast_of(self._pending)
        self._pending = _Pending()
        self._last_shown = now
        return toast


def _toast_of(p: _Pending) -> Toast:
    """What to act on first, a line each; then what to celebrate, on one line."""
    act = []
    if p.errors:
        act.append(f"{counted(len(p.errors), 'error')}: 0 shows Notices")  # the whole text is there
    if p.failed:
        act.append(_quests(p.failed, "failed") + " (4: why)")
    if p.level is not None:
        act.append(f"DIO reached level {p.level}!")
    cheer = []
    if p.won:
        cheer.append(_quests(p.won, "won"))
    if p.skipped:
        cheer.append(_quests(p.skipped, "skipped"))
    if p.skill_levels:
        cheer.append("Skill up: " + ", ".join(p.skill_levels))
    if p.champion is not None:
        cheer.append(f"New champion: checkpoint {p.champion:,}")
    if p.achievements:
        cheer.append("★ " + " · ".join(p.achievements))
    if p.milestones:
        cheer.append("⚑ " + " · ".join(p.milestones))
    severity: Severity = "error" if p.errors else "warning" if p.failed else "information"
    title = "Error" if p.errors else "Level up" if p.level is not None else "News"
    return Toast("\n".join([*act, *([" · ".join(cheer)] if cheer else [])]), title, severity)


def _quests(titles: list[str], outcome: str) -> str:
    """``Quest won: NAME`` for one, ``3 quests won`` for more."""
    return f"Quest {outcome}: {_cut(titles[0])}" if len(titles) == 1 else f"{len(titles)} quests {outcome}"


def _cut(text: str) -> str:
    """A toast is 4 rows of 40 columns at 80x24: each part is short, the whole name is elsewhere."""
    return text if len(text) <= TOAST_PART else text[: TOAST_PART - 1] + "…"
