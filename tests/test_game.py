"""DIO's stats: level, XP, ATK, DEF and gold, derived from the state."""

from __future__ import annotations

import pytest

from realm.game.hero import GOLD_PER_QUEST, HeroStats, attack, defense, gold, hero_stats, level
from realm.protocol import HeroState, QuestFinished, QuestResult, RealmState, SuiteScore, TrainerInfo
from realm.state import apply


def trainer(steps_per_level: int = 1000) -> TrainerInfo:
    return TrainerInfo(model="m", device="cpu", parameters=1, pid=1, started=0.0, steps_per_level=steps_per_level)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [(0, 1), (1, 1), (999, 1), (1000, 2), (1001, 2), (1999, 2), (2000, 3), (123_456, 124)],
)
def test_level_default_steps(steps, expected):
    assert level(steps) == expected


@pytest.mark.parametrize(
    ("steps", "per_level", "expected"), [(0, 10, 1), (9, 10, 1), (10, 10, 2), (95, 10, 10), (5, 1, 6)]
)
def test_level_configurable(steps, per_level, expected):
    assert level(steps, per_level) == expected


def test_attack():
    assert attack(None) is None
    assert attack(2.0) == 0.5
    assert attack(0.25) == 4.0
    assert attack(0.0) == pytest.approx(1e6)  # a perfect loss does not divide by zero
    assert attack(-1.0) == pytest.approx(1e6)


def test_defense():
    assert defense(None) is None
    assert defense(4.0) == 0.25
    assert defense(0.0) == pytest.approx(1e6)


def test_gold():
    assert gold(0) == 0
    assert gold(3) == 3 * GOLD_PER_QUEST == 300


def test_hero_stats_fresh_realm():
    stats = hero_stats(RealmState())
    assert stats == HeroStats(level=1, xp=0, xp_into_level=0, xp_for_level=1000, atk=None, defense=None, gold=0)


def test_hero_stats_without_trainer_uses_default_steps_per_level():
    suite = SuiteScore(version="v", loss=4.0, accuracy=0.5)
    state = RealmState(hero=HeroState(steps=2500, loss_ema=2.0, val_loss=0.001, quests_completed=2, suite=suite))
    stats = hero_stats(state)
    assert stats.level == 3
    assert stats.xp == 2500
    assert (stats.xp_into_level, stats.xp_for_level) == (500, 1000)
    assert stats.atk == 0.5
    assert stats.defense == 0.25
    assert stats.gold == 200


def test_hero_stats_uses_trainers_steps_per_level():
    state = RealmState(trainer=trainer(50), hero=HeroState(steps=175))
    stats = hero_stats(state)
    assert stats.level == 4
    assert (stats.xp_into_level, stats.xp_for_level) == (25, 50)
    assert stats.atk is None and stats.defense is None  # no fight, no validation yet


def test_hero_stats_level_boundary():
    assert hero_stats(RealmState(trainer=trainer(100), hero=HeroState(steps=100))).level == 2
    assert hero_stats(RealmState(trainer=trainer(100), hero=HeroState(steps=99))).level == 1


def test_gold_follows_done_quests_through_the_reducer():
    state = RealmState()
    for outcome in ("done", "failed", "done", "skipped"):
        state = apply(state, QuestFinished(result=QuestResult(name="q", outcome=outcome)))
    assert hero_stats(state).gold == 2 * GOLD_PER_QUEST
