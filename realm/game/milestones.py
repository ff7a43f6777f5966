"""Milestones: DIO's repeatable moments of progress, read from real events.

``reached(event, records)`` says which milestones an event makes, given the records so far
(personal bests, the quest streak and the longest, checkpoints saved, whether a champion was
ever crowned), and returns the records after it. It is pure; the trainer's chronicle owns the records (SQLite,
so they survive restarts), calls it for every event it emits, and announces each milestone
with a ``MilestoneReached`` event. The title ladder is keyed on how many milestones DIO reached.
"""

from __future__ import annotations

import msgspec
from msgspec.structs import replace

from realm.game.narration import counted
from realm.protocol import (
    ChampionChanged,
    CheckpointSaved,
    CheckpointScored,
    Event,
    QuestFinished,
    SkillEvaluated,
    SkillLevelUp,
    SkillUnlocked,
)

RECENT_MILESTONES = 20  # kept in the state for the Hero screen
SUITE_GAIN = 0.01  # a new lowest suite loss counts when it beats the record by this share
STREAKS = (3, 5)  # quests won in a row that make a milestone; then streak_rungs: 10, 25, 50, 100, 250, ...
CHECKPOINT_COUNTS = (1, 5, 10, 25, 50)  # checkpoints saved that make a milestone; then every 50

MEANINGS = (  # (kind, one line a player can read): README's Milestones section lists the same
    ("skill-level", "a skill rose a level: DIO passed its eval set at the old one"),
    ("skill-unlock", "a skill joined DIO's training: the skill before it in the mix reached skills.unlock_level"),
    ("best-suite-loss", f"the evaluation suite's loss fell to a new low (by {SUITE_GAIN:.0%} or more)"),
    ("best-accuracy", "a skill's eval accuracy at its level beat its best"),
    ("streak", "the longest run yet of quests won without a failure: 3, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, …"),
    ("checkpoints", "checkpoints saved to the vault: " + ", ".join(map(str, CHECKPOINT_COUNTS)) + ", then every 50"),
    ("first-champion", "the first checkpoint crowned champion on the evaluation suite"),
)


class Records(msgspec.Struct, frozen=True):
    """The bests and counts milestones are measured against."""

    best_suite_loss: float | None = None
    best_accuracy: dict[str, float] = {}  # "skill@level" -> best frozen-set accuracy
    streak: int = 0  # quests won in a row
    best_streak: int = 0  # the longest streak ever: a rung counts once, not again after each failure
    checkpoints: int = 0  # checkpoints saved ever
    champion: bool = False  # a champion was ever crowned


def _counts(n: int, ladder: tuple[int, ...]) -> bool:
    return n in ladder or (n > ladder[-1] and n % 50 == 0)


def is_streak_rung(streak: int) -> bool:
    """Whether ``streak`` quests won in a row make a milestone: 3, 5, then 1, 2.5 and 5 times each
    power of ten (10, 25, 50, 100, 250, ...). The game's idle quests end every few seconds, so
    the rungs come every few minutes at first and grow rarer, never drowning the other milestones."""
    if streak in STREAKS:
        return True
    power = 10
    while power <= streak:
        if streak in (power, power * 5 // 2, power * 5):
            return True
        power *= 10
    return False


def reached(event: Event, records: Records) -> tuple[list[tuple[str, str]], Records]:
    """The milestones (kind, text) ``event`` makes, and the records after it."""
    rule = _RULES.get(type(event))
    return rule(event, records) if rule else ([], records)


def _skill_level_up(ev: SkillLevelUp, records: Records):
    return [("skill-level", f"{ev.skill} reached level {ev.level}")], records


def _skill_unlocked(ev: SkillUnlocked, records: Records):
    return [("skill-unlock", f"{ev.skill} joined the training: {ev.after} reached level {ev.level}")], records


def _checkpoint_scored(ev: CheckpointScored, records: Records):
    loss, best = ev.suite.loss, records.best_suite_loss
    if loss is None:
        return [], records
    if best is None:  # the first score sets the mark to beat
        return [], replace(records, best_suite_loss=loss)
    if loss < best * (1 - SUITE_GAIN):
        return [("best-suite-loss", f"new lowest suite loss {loss:.3f} (was {best:.3f})")], replace(
            records, best_suite_loss=loss
        )
    return [], records


def _skill_evaluated(ev: SkillEvaluated, records: Records):
    key = f"{ev.skill}@{ev.level}"
    best = records.best_accuracy.get(key, 0.0)
    if ev.accuracy <= best:
        return [], records
    bests = {**records.best_accuracy, key: ev.accuracy}
    text = f"{ev.skill} L{ev.level}: best accuracy {ev.accuracy:.0%} (was {best:.0%})"
    return [("best-accuracy", text)], replace(records, best_accuracy=bests)


def _quest_finished(ev: QuestFinished, records: Records):
    outcome = ev.result.outcome
    if outcome == "failed":
        return [], replace(records, streak=0)
    if outcome != "done":
        return [], records
    streak = records.streak + 1
    longest = streak > records.best_streak
    made = [("streak", f"{streak} quests won in a row")] if longest and is_streak_rung(streak) else []
    return made, replace(records, streak=streak, best_streak=max(streak, records.best_streak))


def _checkpoint_saved(ev: CheckpointSaved, records: Records):
    saved = records.checkpoints + 1
    made = [("checkpoints", f"{counted(saved, 'checkpoint')} saved")] if _counts(saved, CHECKPOINT_COUNTS) else []
    return made, replace(records, checkpoints=saved)


def _champion_changed(ev: ChampionChanged, records: Records):
    if ev.step is None or records.champion:
        return [], records
    return [("first-champion", f"first champion crowned: step {ev.step:,}")], replace(records, champion=True)


_RULES = {
    SkillLevelUp: _skill_level_up,
    SkillUnlocked: _skill_unlocked,
    CheckpointScored: _checkpoint_scored,
    SkillEvaluated: _skill_evaluated,
    QuestFinished: _quest_finished,
    CheckpointSaved: _checkpoint_saved,
    ChampionChanged: _champion_changed,
}

LADDER = (  # (milestones reached, title, portrait tier), highest first
    (100, "Legend of the Realm", 3),
    (40, "Warlord of Weights", 3),
    (15, "Paladin of Perplexity", 2),
    (5, "Knight of the Loss", 1),
    (1, "Squire of Gradients", 0),
    (0, "Novice of Noise", 0),
)


def rank(milestones: int) -> tuple[str, int]:
    """(title, portrait tier) for ``milestones`` reached."""
    return next((name, tier) for first, name, tier in LADDER if milestones >= first)


def next_rank(milestones: int) -> tuple[int, str] | None:
    """(milestones needed, title) of the next rung, or None at the top."""
    above = [(first, name) for first, name, _ in LADDER if first > milestones]
    return above[-1] if above else None
