"""Narration: the one place an event becomes words, and the policy that says who hears them.

``narrate`` gives the log line an event makes, (level, text), or None for an event the log
leaves out (steps, validation losses, telemetry: too frequent, or shown elsewhere). The reducer
appends it to the state's log, which the TUI shows and the chronicle journals. It is pure: the
same event (and state before it) gives the same line.

``policy`` is the one table of who hears an event: its ``audience`` (the *story*, told by the
Chronicle and the Battle log, or *housekeeping*: the game's own file names, duplicates, retries,
shown in the Notices view) and whether it earns a ``toast`` (something a player acts on or
celebrates). The severity is narrate's level. ``quest_title`` names a quest for people.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from realm.protocol import (
    GAME_SOURCES,
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
    QuestInfo,
    QuestResult,
    QuestStarted,
    RealmState,
    SkillEvaluated,
    SkillLevelUp,
    SkillsLoaded,
    SkillsState,
    SkillUnlocked,
    SuiteScore,
    TrainerStarted,
)

Line = tuple[LogLevel, str]
Audience = Literal["story", "housekeeping"]


@dataclass(frozen=True)
class Policy:
    audience: Audience
    toast: bool = False  # the player acts on it or celebrates it


STORY = Policy("story")
STORY_TOAST = Policy("story", toast=True)
HOUSEKEEPING = Policy("housekeeping")
HOUSEKEEPING_TOAST = Policy("housekeeping", toast=True)


def policy(event: Event) -> Policy:
    """Who hears ``event``: the one table (events it does not list are housekeeping, no toast)."""
    rule = _POLICY.get(type(event), HOUSEKEEPING)
    return rule(event) if callable(rule) else rule


def _quest_finished_policy(ev: QuestFinished) -> Policy:
    """The player's own quests toast (won: celebrate; failed or skipped: look at why); the game's
    own idle and correction quests are part of the story, never a toast."""
    own = ev.result.source in GAME_SOURCES
    return STORY if own else STORY_TOAST


def _notice_policy(ev: Notice) -> Policy:
    """The game's own notes are housekeeping; an error is one a player must act on."""
    return HOUSEKEEPING_TOAST if ev.level == "error" else HOUSEKEEPING


_POLICY: dict[type, Policy | Callable[..., Policy]] = {
    TrainerStarted: STORY,
    BattleChanged: STORY,
    QuestStarted: STORY,
    QuestFinished: _quest_finished_policy,
    CheckpointScored: STORY,  # a record: the suite's loss and accuracy
    ChampionChanged: STORY_TOAST,
    SkillEvaluated: STORY,
    SkillLevelUp: STORY_TOAST,
    SkillUnlocked: STORY,  # its milestone is the toast
    AchievementUnlocked: STORY_TOAST,
    MilestoneReached: STORY_TOAST,
    GoldSpent: STORY,  # the player's own purchase
    ConfigChanged: STORY,  # the player's own change in the Armory
    CheckpointSaved: HOUSEKEEPING,  # a folder name
    CheckpointsPruned: HOUSEKEEPING,
    CheckpointDeleted: HOUSEKEEPING,
    Notice: _notice_policy,
    SkillsLoaded: HOUSEKEEPING,
    OracleStarted: HOUSEKEEPING,
    OracleLoading: HOUSEKEEPING,
    OracleLoaded: HOUSEKEEPING,
    OracleLoadFailed: HOUSEKEEPING_TOAST,
    OracleUnloaded: HOUSEKEEPING,
}


def narrate(event: Event, before: RealmState | None = None) -> Line | None:
    """The log line ``event`` makes, or None; ``before`` (the state the event arrives in) lets a
    quest's end say what DIO did in it."""
    if isinstance(event, (QuestStarted, QuestFinished)):
        return _QUEST_WORDS[type(event)](event, before or RealmState())
    words = _WORDS.get(type(event))
    return words(event) if words is not None else None


# --------------------------------------------------------------------------- quest titles

# the names the trainer gives the quests it makes (trainer/skill_quests.py, trainer/idle.py);
# a "-2" tail is the queue's, for a name already taken
_GAME_NAME = re.compile(r"^(?P<kind>idle|correction)-(?P<skill>[a-z][a-z0-9_]*)-L(?P<level>\d+)-\d+(-\d+)?\.jsonl$")
_ASKED_NAME = re.compile(r"^(?P<skill>[a-z][a-z0-9_]*)-L(?P<level>\d+)-(?P<count>\d+)x-\w+?(-\d+)?\.jsonl$")
_PLACEHOLDER_NAME = re.compile(r"^idle-\d+(-\d+)?\.jsonl$")


TITLE_WIDTH = 46  # a quest title's most characters: the Quest board's quest column at 80x24


def skill_quest_title(kind: str, parts: list[tuple[str, int, int, tuple[str, ...]]], wrong: int = 0) -> str:
    """The title the trainer gives a quest it draws from skills, from what is in it: ``parts`` are
    (skill short name, level, chats, what the level practises in words, longest first: the skill
    layer's ``describe_level``). The longest description that keeps the title within
    ``TITLE_WIDTH`` is used: ``BIN L4 · 5-bit add, sub, logic, conversions``, ``Correction · BIN
    L4 · 6 missed · 5-bit, 8 ops``, ``BIN L3 ×96 · SY L2 ×32`` (two skills: their shares)."""
    if kind == "correction":
        short, level, _, forms = parts[0]
        head = f"Correction · {short} L{level}" + (f" · {wrong} missed" if wrong else "")
        return _fitted([f"{head} · {form}" for form in forms], head)
    if len(parts) == 1:
        short, level, _, forms = parts[0]
        return _fitted([f"{short} L{level} · {form}" for form in forms], f"{short} L{level}")
    described = " · ".join(f"{short} L{level} {forms[-1]} ×{chats}" for short, level, chats, forms in parts)
    return _fitted([described], " · ".join(f"{short} L{level} ×{chats}" for short, level, chats, _ in parts))


def _fitted(candidates: list[str], fallback: str) -> str:
    return next((text for text in candidates if len(text) <= TITLE_WIDTH), fallback)


def quest_title(quest: QuestInfo | QuestResult, skills: SkillsState | None = None) -> str:
    """A quest's name for people: its lineage's title when the trainer gave one, else for the
    game's own quests one from the name's skill and level (``BIN L3 · Binary Alchemy drills``,
    ``Correction · SY L2``); the player's own by their file name. The file name stays in
    the quest's detail view."""
    if quest.title:
        return quest.title
    name = quest.name
    if quest.source == "inbox":
        return name
    if quest.source == "idle" and _PLACEHOLDER_NAME.match(name):
        return "Warm-up · adding small numbers"
    found = _GAME_NAME.match(name)
    if found:
        skill, level = found["skill"], int(found["level"])
        if found["kind"] == "correction":
            return f"Correction · {_short(skill, skills)} L{level}"
        return f"{_short(skill, skills)} L{level} · {_long(skill, skills)} drills"
    found = _ASKED_NAME.match(name)
    if found:
        chats = counted(int(found["count"]), "chat")
        return f"{_short(found['skill'], skills)} L{found['level']} · {chats} of {_long(found['skill'], skills)}"
    return name


def _skill_state(skill: str, skills: SkillsState | None):
    return next((s for s in skills.skills if s.id == skill), None) if skills is not None else None


def _short(skill: str, skills: SkillsState | None) -> str:
    known = _skill_state(skill, skills)
    return known.short_name if known is not None and known.short_name else skill.upper()


def _long(skill: str, skills: SkillsState | None) -> str:
    known = _skill_state(skill, skills)
    return known.name if known is not None and known.name else skill


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


def _rows(quest: QuestInfo) -> str:
    """``24 rows (4 held out)``: the quest's examples, and those kept for its own val loss."""
    return counted(quest.examples, "row") + (f" ({quest.held_out:,} held out)" if quest.held_out else "")


def _quest_started(ev: QuestStarted, before: RealmState) -> Line:
    rows = _rows(ev.quest) + ", " if ev.quest.examples else ""
    title = quest_title(ev.quest, before.skills)
    return _info(f"DIO enters battle: {title} — {rows}{counted(ev.total_steps, 'step')}")


def _quest_finished(ev: QuestFinished, before: RealmState) -> Line:
    result = ev.result
    title = quest_title(result, before.skills)
    if result.outcome == "done":
        return _info(_victory(title, _what_dio_did(result, before)))
    if result.outcome == "failed":
        return "warning", f"Defeat: {title}" + (f" ({result.reason})" if result.reason else "")
    return _info(f"Retreat: {title}" + (f" ({result.reason})" if result.reason else ""))


LOG_WIDTH = 69  # a log row's text at 80 columns: the Battle log's and the Chronicle's inside, less the clock
_SKILL_LEVEL = re.compile(r"^[A-Z][A-Z0-9_]* L\d+$")  # a game quest title's "BIN L4" part
# a mixed quest's part, "BIN L3 4-bit add, logic ×192": its skill and level, its words, its rows
_MIXED_PART = re.compile(r"^([A-Z][A-Z0-9_]* L\d+)(?: [^×].*?)?( ×[\d,]+)?$")


def _victory(title: str, facts: str) -> str:
    """``Victory: TITLE — FACTS``; while the line is longer than a log row, a game quest's title
    drops its words after the skill and level (``BIN L4 · 5-bit add, ...`` becomes ``BIN L4``; DIO's
    entering line said them), a mixed quest's parts theirs (``BIN L3 4-bit add ×192 · SY L2 4 words
    ×64`` becomes ``BIN L3 ×192 · SY L2 ×64``, then ``BIN L3 · SY L2``), so the quest's own numbers
    are not the part cut off."""
    parts = title.split(" · ")
    line = lambda: f"Victory: {' · '.join(parts)}{facts}"  # noqa: E731
    keep = next((i + 1 for i, part in enumerate(parts) if _SKILL_LEVEL.match(part)), len(parts))
    while len(parts) > keep and len(line()) > LOG_WIDTH:
        parts.pop()
    for shorter in (lambda m: m.group(1) + (m.group(2) or ""), lambda m: m.group(1)):  # then the rows too
        for i in reversed(range(len(parts))):
            if len(line()) <= LOG_WIDTH:
                return line()
            if mixed := _MIXED_PART.match(parts[i]):
                parts[i] = shorter(mixed)
    return line()


def _what_dio_did(result: QuestResult, before: RealmState) -> str:
    """`` — val 2.310→0.840, 224 rows, 14 steps``: the quest's held-out loss before its first step
    and at its last look, the rows DIO trained and its steps, as the trainer measured them (most
    telling first: a log row cuts a long line's end). Without the held-out loss (a quest too small
    to hold examples out): the quest's first and last training loss, when the state still holds
    every step of it; without rows trained, the quest's rows."""
    battle = before.battle
    quest = battle.quest if battle.quest is not None and battle.quest.name == result.name else None
    facts = []
    if result.val_loss_start is not None and result.val_loss_end is not None:
        facts.append(f"val {result.val_loss_start:.3f}→{result.val_loss_end:.3f}")
    if result.examples_trained:
        facts.append(counted(result.examples_trained, "row"))
    elif quest is not None and quest.examples:
        facts.append(_rows(quest))
    facts.append(counted(result.steps, "step"))
    if not facts[0].startswith("val ") and quest is not None and 0 < battle.quest_step <= len(battle.losses):
        points = battle.losses[-battle.quest_step :]
        facts.append(f"loss {points[0][1]:.3f}→{points[-1][1]:.3f}")
    return " — " + ", ".join(facts)


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


_QUEST_WORDS: dict[type, Callable[..., Line]] = {QuestStarted: _quest_started, QuestFinished: _quest_finished}

_WORDS: dict[type, Callable[..., Line | None]] = {
    TrainerStarted: lambda ev: _info(f"DIO awakens at step {ev.step} ({ev.trainer.model} on {ev.trainer.device})"),
    BattleChanged: lambda ev: _info(f"battle {ev.status}" + (f": {ev.reason}" if ev.reason else "")),
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
    SkillUnlocked: lambda ev: _info(f"skill {ev.skill} joins DIO's training: {ev.after} reached L{ev.level}"),
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
