"""Narration: the one place an event becomes words.

``narrate`` gives the log line an event makes, (level, text), or None for an event the log
leaves out (steps, validation losses, telemetry: too frequent, or shown elsewhere). The reducer
appends it to the state's log, which the TUI shows and the chronicle journals. It is pure: the
same event gives the same line.
"""

from __future__ import annotations

from collections.abc import Callable

from realm.protocol import (
    AchievementUnlocked,
    BattleChanged,
    ChampionChanged,
    CheckpointDeleted,
    CheckpointSaved,
    CheckpointScored,
    CheckpointsPruned,
    ConfigChanged,
    Event,
    GoldSpent,
    LogLevel,
    MilestoneReached,
    Notice,
    OracleLoaded,
    OracleLoadFailed,
    OracleLoading,
    OracleStarted,
    OracleUnloaded,
    QuestFinished,
    QuestStarted,
    SkillEvaluated,
    SkillLevelUp,
    SkillsLoaded,
    SuiteScore,
    TrainerStarted,
)

Line = tuple[LogLevel, str]


def narrate(event: Event) -> Line | None:
    """The log line ``event`` makes, or None."""
    words = _WORDS.get(type(event))
    return words(event) if words is not None else None


def counted(n: int, noun: str) -> str:
    """``1 step``, ``2 steps``: a count with its noun in the right number."""
    return f"{n:,} {noun}{'' if abs(n) == 1 else 's'}"


def level_up_text(level: int, step: int) -> str:
    """A level DIO reached (the reducer's ``level_up`` finds it)."""
    return f"DIO reached level {level} at step {step:,}"


def suite_line(suite: SuiteScore) -> str:
    """A suite score in words: ``suite loss 1.234 · acc 40%``."""
    parts = []
    if suite.loss is not None:
        parts.append(f"suite loss {suite.loss:.3f}")
    if suite.accuracy is not None:
        parts.append(f"acc {suite.accuracy:.0%}")
    return " · ".join(parts or ["an empty suite"])


def _info(text: str) -> Line:
    return "info", text


def _quest_finished(ev: QuestFinished) -> Line:
    result = ev.result
    text = f"quest {result.name}: {result.outcome}" + (f" ({result.reason})" if result.reason else "")
    return ("warning" if result.outcome == "failed" else "info"), text


def _champion_changed(ev: ChampionChanged) -> Line:
    if ev.step is None:
        return _info("vault: no champion (no checkpoint is scored on the current suite)")
    return _info(f"vault: the champion is now checkpoint {ev.step:,} (score {ev.score:.3f})")


def _skill_evaluated(ev: SkillEvaluated) -> Line:
    probe = "" if ev.probe is None else f", probe {ev.probe:.0%}"
    text = f"skill {ev.skill} L{ev.level}: eval {ev.accuracy:.0%}{probe} at step {ev.step}"
    if ev.oracle:
        text += f" (answers from oracle {ev.oracle})"
    return _info(text)


def _config_changed(ev: ConfigChanged) -> Line | None:
    if not ev.changed:
        return None
    values = {f.key: f.value for f in ev.config}
    return _info("armory: " + ", ".join(f"{key} = {values.get(key, '?')}" for key in ev.changed))


_WORDS: dict[type, Callable[..., Line | None]] = {
    TrainerStarted: lambda ev: _info(f"DIO awakens at step {ev.step} ({ev.trainer.model} on {ev.trainer.device})"),
    BattleChanged: lambda ev: _info(f"battle {ev.status}" + (f": {ev.reason}" if ev.reason else "")),
    QuestStarted: lambda ev: _info(f"DIO enters battle: {ev.quest.name} ({counted(ev.total_steps, 'step')})"),
    QuestFinished: _quest_finished,
    CheckpointSaved: lambda ev: _info(f"vault: saved {ev.checkpoint.name}"),
    CheckpointScored: lambda ev: _info(f"vault: checkpoint {ev.step:,} scored: " + suite_line(ev.suite)),
    ChampionChanged: _champion_changed,
    CheckpointsPruned: lambda ev: _info(
        f"vault: removed {len(set(ev.steps))} checkpoint(s) ({ev.reason}): steps {', '.join(map(str, ev.steps))}"
    ),
    CheckpointDeleted: lambda ev: _info(f"vault: deleted {ev.name}"),
    Notice: lambda ev: (ev.level, ev.text),
    SkillsLoaded: lambda ev: _info(
        "skills: " + (", ".join(f"{s.short_name or s.id} L{s.level}" for s in ev.skills.skills) or "none")
    ),
    SkillEvaluated: _skill_evaluated,
    SkillLevelUp: lambda ev: _info(f"skill {ev.skill} rises to L{ev.level}" + (f" ({ev.reason})" if ev.reason else "")),
    OracleStarted: lambda ev: _info(f"oracle {ev.info.node} awakens on {ev.info.device}"),
    OracleLoading: lambda ev: _info(f"oracle: loading {ev.ref}"),
    OracleLoaded: lambda ev: _info(
        f"oracle: serving {ev.serving.name} ({ev.serving.source}, {ev.serving.load_seconds:.2f}s)"
    ),
    OracleLoadFailed: lambda ev: ("warning", f"oracle: could not load {ev.ref}: {ev.reason}"),
    OracleUnloaded: lambda ev: _info("oracle: unloaded"),
    AchievementUnlocked: lambda ev: _info(f"achievement unlocked: {ev.achievement.name}"),
    ConfigChanged: _config_changed,
    MilestoneReached: lambda ev: _info(f"milestone: {ev.milestone.text}"),
    GoldSpent: lambda ev: _info(f"shop: {ev.price:,} gold for {ev.detail or ev.item}"),
}
