"""The reducer's skills section: what the TUI and `realm status` see."""

from __future__ import annotations

from realm.game.hero import hero_stats
from realm.protocol import (
    LineageCount,
    LineageCounted,
    RealmState,
    SkillEvalItem,
    SkillEvaluated,
    SkillLevelUp,
    SkillsLoaded,
    SkillsState,
    SkillState,
)
from realm.state import SKILL_HISTORY, apply


def loaded() -> RealmState:
    skills = SkillsState(active="bin", skills=(SkillState(id="bin", level=1, max_level=30), SkillState(id="sy")))
    return apply(RealmState(), SkillsLoaded(skills=skills))


def test_an_eval_updates_accuracy_history_items_and_the_heros_acc():
    item = SkillEvalItem(prompt="p", expected="a", response="b", correct=False, explanation="x")
    state = apply(
        loaded(),
        SkillEvaluated(
            skill="bin",
            level=1,
            step=50,
            accuracy=0.4,
            probe=0.3,
            next_accuracy=0.0,
            items=(item,),
            next_eval_step=100,
            seconds=2.0,
            train_seconds=40.0,
        ),
    )
    bin_ = state.skills.skills[0]
    assert bin_.accuracy == 0.4 and bin_.last_items == (item,) and bin_.next_eval_step == 100
    assert [(p.level, p.step, p.accuracy) for p in bin_.history] == [(1, 50, 0.4), (2, 50, 0.0)]
    assert hero_stats(state).acc == 0.4
    assert state.skills.eval_seconds == 2.0 and state.skills.train_seconds == 40.0
    assert state.skills.skills[1] == SkillState(id="sy")  # other skills untouched
    assert "eval 40%" in state.log[-1].text


def test_a_level_up_moves_the_level_and_clears_the_levels_accuracy():
    state = apply(loaded(), SkillEvaluated(skill="bin", level=1, step=50, accuracy=1.0))
    state = apply(state, SkillLevelUp(skill="bin", level=2, step=50, reason="3 evals >= 80%"))
    bin_ = state.skills.skills[0]
    assert bin_.level == 2 and bin_.accuracy is None
    assert hero_stats(state).acc is None
    assert "rises to L2" in state.log[-1].text


def test_history_is_bounded_and_lineage_adds_up():
    state = loaded()
    for step in range(SKILL_HISTORY):
        state = apply(state, SkillEvaluated(skill="bin", level=1, step=step, accuracy=0.5, next_accuracy=0.1))
    assert len(state.skills.skills[0].history) == SKILL_HISTORY
    for _ in range(2):
        state = apply(state, LineageCounted(counts=(LineageCount(generator="bin@1", validator="", count=5),)))
    assert state.skills.lineage == (LineageCount(generator="bin@1", validator="", count=10),)


def test_the_reducer_is_pure():
    before = loaded()
    apply(before, SkillLevelUp(skill="bin", level=2, step=1))
    assert before.skills.skills[0].level == 1


def test_an_event_for_an_unknown_skill_adds_it():
    state = apply(RealmState(), SkillLevelUp(skill="new", level=2, step=1))
    assert state.skills.skills[0].id == "new" and state.skills.skills[0].level == 2


def test_realm_status_shows_each_skills_level_and_accuracy():
    from realm.cli.trainer import format_status
    from realm.protocol import Snapshot

    state = apply(loaded(), SkillEvaluated(skill="bin", level=1, step=50, accuracy=0.4))
    text = format_status(Snapshot(run="r", seq=1, state=state))
    assert "skills: bin L1/30 acc 40%, sy L1/1 acc -" in text
