"""DIO's stats, derived from the state: nothing here is stored, everything is computed."""

from __future__ import annotations

import msgspec

from realm.protocol import RealmState

GOLD_PER_QUEST = 100

STAT_MEANINGS = (  # one line each, for the Hero and Help screens and `realm status`
    ("ATK", "1 / smoothed train loss: how hard DIO hits the quest he is fighting"),
    ("DEF", "1 / loss on the evaluation suite: held-out data, the same for every checkpoint"),
    ("ACC", "the active skill's frozen eval items answered right, at DIO's level in it"),
    ("XP", "optimizer steps trained; a level every game.steps_per_level steps"),
)


class HeroStats(msgspec.Struct, frozen=True):
    level: int
    xp: int
    xp_into_level: int
    xp_for_level: int
    atk: float | None
    defense: float | None
    gold: int
    acc: float | None = None  # the latest frozen-set accuracy at the active skill's level


def level(steps: int, steps_per_level: int = 1000) -> int:
    return 1 + steps // steps_per_level


def steps_per_level(state: RealmState) -> int:
    """The trainer's ``game.steps_per_level``, or the default before a trainer announced it."""
    return state.trainer.steps_per_level if state.trainer else 1000


def hero_level(state: RealmState) -> int:
    return level(state.hero.steps, steps_per_level(state))


def attack(loss_ema: float | None) -> float | None:
    """ATK = 1 / smoothed train loss (None until DIO has fought)."""
    return None if loss_ema is None else 1.0 / max(loss_ema, 1e-6)


def defense(suite_loss: float | None) -> float | None:
    """DEF = 1 / the evaluation suite's loss on the newest scored checkpoint (held-out data, the same for every checkpoint)."""
    return None if suite_loss is None else 1.0 / max(suite_loss, 1e-6)


def gold(quests_completed: int, spent: int = 0) -> int:
    """GOLD_PER_QUEST for every quest won, less what the shop took."""
    return GOLD_PER_QUEST * quests_completed - spent


def hero_stats(state: RealmState) -> HeroStats:
    per_level = steps_per_level(state)
    steps = state.hero.steps
    return HeroStats(
        level=level(steps, per_level),
        xp=steps,
        xp_into_level=steps % per_level,
        xp_for_level=per_level,
        atk=attack(state.hero.loss_ema),
        defense=defense(state.hero.suite.loss if state.hero.suite else None),
        gold=gold(state.hero.quests_completed, state.hero.gold_spent),
        acc=accuracy(state),
    )


def accuracy(state: RealmState) -> float | None:
    """ACC: the latest eval accuracy at the active skill's current level (None before any)."""
    skills = state.skills
    active = next((s for s in skills.skills if s.id == skills.active), None)
    return active.accuracy if active else None
