"""What the events drained on one repaint tick mean for the one-off effects: toasts, hits, speed.

The mirror keeps the envelopes it applied in ``recent``; the app drains them each tick into a
``TickNews`` and turns it into toasts (``toasts``) and screen effects. A level-up is not read
here: the reducer's ``level_up`` compares the state before and after the tick.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Literal

from realm.protocol import AchievementUnlocked, Envelope, MilestoneReached, QuestFinished, QuestResult, StepMetrics

QUEST_TOASTS_PER_TICK = 3  # a burst of finished quests gets a few toasts and a count

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
    finished: list[QuestResult] = field(default_factory=list)
    achievements: list[str] = field(default_factory=list)
    milestones: list[str] = field(default_factory=list)
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
        elif isinstance(event, QuestFinished):
            news.finished.append(event.result)
        elif isinstance(event, AchievementUnlocked):
            news.achievements.append(event.achievement.name)
        elif isinstance(event, MilestoneReached):
            news.milestones.append(event.milestone.text)
    return news


def toasts(news: TickNews) -> list[Toast]:
    """The achievements and milestones, then the finished quests (a few, and a count of the rest)."""
    said = [Toast(name, "★ Achievement unlocked") for name in news.achievements]
    said += [Toast(text, "⚑ Milestone") for text in news.milestones]
    results = news.finished
    for result in results[:QUEST_TOASTS_PER_TICK]:
        reason = f" ({result.reason})" if result.reason else ""
        severity: Severity = "warning" if result.outcome == "failed" else "information"
        title = (
            "Quest failed" if result.outcome == "failed" else "Quest complete" if result.outcome == "done" else "Quest"
        )
        said.append(Toast(f"{result.name}: {result.outcome}{reason}", title, severity))
    if len(results) > QUEST_TOASTS_PER_TICK:
        said.append(Toast(f"and {len(results) - QUEST_TOASTS_PER_TICK} more quests finished", "Quest"))
    return said
