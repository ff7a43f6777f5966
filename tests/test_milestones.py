"""Milestones: the pure rules, the reducer, and the chronicle that owns the records (real SQLite)."""

from __future__ import annotations

from realm.game.hero import hero_stats
from realm.game.milestones import LADDER, MEANINGS, Records, is_streak_rung, next_rank, rank, reached
from realm.protocol import (
    ChampionChanged,
    CheckpointInfo,
    CheckpointSaved,
    CheckpointScored,
    GoldSpent,
    Milestone,
    MilestoneReached,
    QuestFinished,
    QuestResult,
    SkillEvaluated,
    SkillLevelUp,
    SuiteScore,
    TrainerInfo,
    TrainerStarted,
)
from realm.state import RealmState, apply
from trainer.chronicle import Chronicle


def won(name: str = "q") -> QuestFinished:
    return QuestFinished(result=QuestResult(name=name, outcome="done"))


def lost() -> QuestFinished:
    return QuestFinished(result=QuestResult(name="bad", outcome="failed", reason="no examples"))


def scored(step: int, loss: float) -> CheckpointScored:
    return CheckpointScored(step=step, suite=SuiteScore(version="v1", loss=loss))


def run(events, records: Records = Records()) -> tuple[list[tuple[str, str]], Records]:
    made = []
    for event in events:
        new, records = reached(event, records)
        made += new
    return made, records


def test_a_streak_counts_quests_won_in_a_row_a_failure_ends_it_and_only_a_longest_streak_counts():
    made, records = run([won()] * 3)
    assert made == [("streak", "3 quests won in a row")]
    made, records = run([lost(), won(), won()], records)
    assert made == [] and records.streak == 2
    skipped = QuestFinished(result=QuestResult(name="s", outcome="skipped"))
    made, records = run([skipped, won()], records)
    assert made == [] and records.streak == 3  # 3 again after a failure: no milestone a failed quest can farm
    made, records = run([won()] * 2, records)
    assert made == [("streak", "5 quests won in a row")] and records.best_streak == 5


def test_the_streak_rungs_grow_rarer_as_the_streak_grows():
    made = [int(text.split()[0]) for _, text in run([won()] * 10_000)[0]]
    assert made == [3, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]
    assert [is_streak_rung(n) for n in (25_000, 50_000, 100_000, 150, 2_000, 75_000)] == [True] * 3 + [False] * 3
    shown = next(words for kind, words in MEANINGS if kind == "streak")
    assert shown.endswith(", ".join(map(str, made[:10])) + ", …")  # the Help and README ladder is the rule's


def test_personal_bests_need_a_real_improvement():
    made, records = run([scored(100, 2.0), scored(200, 1.995), scored(300, 1.5)])
    assert made == [("best-suite-loss", "new lowest suite loss 1.500 (was 2.000)")]
    assert records.best_suite_loss == 1.5
    evals = [SkillEvaluated(skill="bin", level=1, step=s, accuracy=a) for s, a in ((5, 0.0), (10, 0.4), (15, 0.2))]
    made, records = run(evals, records)
    assert made == [("best-accuracy", "bin L1: best accuracy 40% (was 0%)")]
    made, _ = run([SkillEvaluated(skill="bin", level=2, step=20, accuracy=0.2)], records)
    assert made == [("best-accuracy", "bin L2: best accuracy 20% (was 0%)")]  # each level has its own best


def test_level_ups_checkpoints_and_the_first_champion():
    saved = [CheckpointSaved(checkpoint=CheckpointInfo(step=s, name=f"c{s}", time=0.0)) for s in range(1, 6)]
    events = [SkillLevelUp(skill="bin", level=2, step=7), *saved, ChampionChanged(step=3), ChampionChanged(step=5)]
    made, records = run(events)
    assert made == [
        ("skill-level", "bin reached level 2"),
        ("checkpoints", "1 checkpoint saved"),
        ("checkpoints", "5 checkpoints saved"),
        ("first-champion", "first champion crowned: step 3"),
    ]
    assert run([ChampionChanged(step=None)])[0] == []


def test_the_ladder_is_keyed_on_milestones_reached_and_every_kind_has_a_meaning():
    assert (
        rank(0)[0] == "Novice of Noise" and rank(4)[0] == "Squire of Gradients" and rank(5)[0] == "Knight of the Loss"
    )
    assert next_rank(3) == (5, "Knight of the Loss") and next_rank(LADDER[0][0]) is None
    assert {kind for kind, _ in MEANINGS} == {
        "skill-level", "skill-unlock", "best-suite-loss", "best-accuracy", "streak", "checkpoints", "first-champion"
    }  # fmt: skip


def test_the_reducer_counts_milestones_restores_them_and_spends_gold():
    m = Milestone(kind="streak", text="3 quests won in a row", time=1.0, step=30)
    info = TrainerInfo(model="m", device="cpu", parameters=1, pid=1, started=0.0)
    state = apply(RealmState(), TrainerStarted(trainer=info, step=30, quests_completed=4, milestones=6,
                                               recent_milestones=(m,), gold_spent=100))  # fmt: skip
    assert state.hero.milestones == 6 and state.milestones == (m,) and hero_stats(state).gold == 300
    state = apply(state, MilestoneReached(milestone=m), time=2.0)
    assert state.hero.milestones == 7 and state.milestones == (m, m)
    assert state.log[-1].text == "milestone: 3 quests won in a row"
    state = apply(state, GoldSpent(item="eval", price=200, detail="an eval round of bin"))
    assert hero_stats(state).gold == 100 and state.log[-1].text == "shop: 200 gold for an eval round of bin"


def test_the_chronicle_owns_the_records_and_they_survive_a_restart(tmp_path):
    db = tmp_path / "realm.db"
    chronicle = Chronicle(db)
    made = [m for _ in range(3) for m in chronicle.reach_milestones(won(), 10, "r1", 5.0)]
    assert [m.text for m in made] == ["3 quests won in a row"]
    assert chronicle.reach_milestones(scored(10, 2.0), 10, "r1", 6.0) == []
    chronicle.close()
    chronicle = Chronicle(db)  # a restarted trainer
    assert [m.text for m in chronicle.reach_milestones(won(), 11, "r2", 7.0)] == []  # streak 4
    assert [m.text for m in chronicle.reach_milestones(won(), 12, "r2", 8.0)] == ["5 quests won in a row"]
    assert [m.text for m in chronicle.reach_milestones(scored(20, 1.0), 20, "r2", 9.0)] == [
        "new lowest suite loss 1.000 (was 2.000)"
    ]
    level_up = SkillLevelUp(skill="bin", level=5, step=30, reason="3 evals >= 80%")
    assert [m.text for m in chronicle.reach_milestones(level_up, 30, "r2", 9.5)] == ["bin reached level 5"]
    count, recent = chronicle.milestones()
    assert count == 4 and [m.step for m in recent] == [10, 12, 20, 30]
    assert Chronicle.entry_for(MilestoneReached(milestone=recent[0])) == (
        "milestone",
        "milestone: 3 quests won in a row",
    )
    chronicle.record_purchase("r2", 10.0, "eval", 200, "an eval round")
    assert chronicle.gold_spent() == 200
    chronicle.close()
    assert Chronicle(db).gold_spent() == 200


def test_a_milestone_is_toasted_with_what_it_means():
    from realm.game.narration import policy
    from realm.tui.news import ToastGate

    m = Milestone(kind="skill-level", text="bin reached level 2", time=1.0, step=50)
    event = MilestoneReached(milestone=m)
    assert policy(event).toast and policy(event).audience == "story"
    gate = ToastGate()
    gate.add(event)
    toast = gate.due(10.0)
    assert toast is not None and toast.text == "⚑ bin reached level 2"
