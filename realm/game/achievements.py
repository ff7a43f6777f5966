"""Achievements: real milestones of DIO's training, as pure rules over the realm's state.

A rule is a predicate on ``RealmState``. The trainer checks the rules it has not yet
recorded after each event, records a newly true one in SQLite (so it is earned once, ever),
and announces it with an ``AchievementUnlocked`` event. Nothing here reads a clock or a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from realm.game.hero import hero_level
from realm.protocol import RealmState

Rule = Callable[[RealmState], bool]


@dataclass(frozen=True)
class AchievementRule:
    id: str
    name: str
    description: str
    rule: Rule


def _done(state: RealmState) -> list:
    return [r for r in state.board.recent if r.outcome == "done"]


def _lowest_suite_loss(state: RealmState) -> float | None:
    losses = [c.suite.loss for c in state.vault.checkpoints if c.suite is not None and c.suite.loss is not None]
    if state.hero.suite is not None and state.hero.suite.loss is not None:
        losses.append(state.hero.suite.loss)
    return min(losses, default=None)


def _armory_used(state: RealmState) -> bool:
    return any(line.text.startswith("armory: ") for line in state.log)


RULES: tuple[AchievementRule, ...] = (
    AchievementRule("first-blood", "First Blood", "DIO trained his first optimizer step", lambda s: s.hero.steps >= 1),
    AchievementRule("centurion", "Centurion", "100 optimizer steps", lambda s: s.hero.steps >= 100),
    AchievementRule("thousand-cuts", "A Thousand Cuts", "1,000 optimizer steps", lambda s: s.hero.steps >= 1_000),
    AchievementRule("ten-thousand", "Ten Thousand Strikes", "10,000 optimizer steps", lambda s: s.hero.steps >= 10_000),
    AchievementRule("level-5", "Knighted", "reach level 5", lambda s: hero_level(s) >= 5),
    AchievementRule("level-10", "Paladin", "reach level 10", lambda s: hero_level(s) >= 10),
    AchievementRule("first-quest", "Quest Giver's Friend", "complete a quest", lambda s: s.hero.quests_completed >= 1),
    AchievementRule("ten-quests", "Seasoned Adventurer", "complete 10 quests", lambda s: s.hero.quests_completed >= 10),
    AchievementRule("first-save", "Into the Vault", "save a checkpoint", lambda s: len(s.vault.checkpoints) >= 1),
    AchievementRule("hoarder", "Hoarder", "10 checkpoints in the vault", lambda s: len(s.vault.checkpoints) >= 10),
    AchievementRule(
        "under-one",
        "Sharpened Blade",
        "smoothed train loss below 1.0",
        lambda s: s.hero.loss_ema is not None and s.hero.loss_ema < 1.0,
    ),
    AchievementRule(
        "under-tenth",
        "Razor's Edge",
        "smoothed train loss below 0.1",
        lambda s: s.hero.loss_ema is not None and s.hero.loss_ema < 0.1,
    ),
    AchievementRule(
        "shield-up", "Shield Up", "a checkpoint scored on the evaluation suite", lambda s: s.hero.suite is not None
    ),
    AchievementRule(
        "iron-guard",
        "Iron Guard",
        "evaluation suite loss below 1.0",
        lambda s: (v := _lowest_suite_loss(s)) is not None and v < 1.0,
    ),
    AchievementRule(
        "scarred",
        "Scarred but Standing",
        "a quest failed and DIO kept going",
        lambda s: any(r.outcome == "failed" for r in s.board.recent) and s.battle.status != "stopped",
    ),
    AchievementRule(
        "long-march",
        "The Long March",
        "finish a quest of 500 or more steps",
        lambda s: any(r.steps >= 500 for r in _done(s)),
    ),
    AchievementRule("breather", "A Breather", "pause the battle", lambda s: s.battle.status == "paused"),
    AchievementRule("tinkerer", "Tinkerer", "change the running config from the Armory", _armory_used),
)

BY_ID = {a.id: a for a in RULES}


def newly_earned(state: RealmState, earned: set[str] | frozenset[str]) -> list[AchievementRule]:
    """The rules true in ``state`` that are not in ``earned``, in the order listed."""
    return [a for a in RULES if a.id not in earned and a.rule(state)]
