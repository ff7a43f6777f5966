"""The one policy table: every event's audience and toast, and quests' titles for people."""

from __future__ import annotations

import pytest

from realm.game.narration import (
    HOUSEKEEPING,
    LOG_WIDTH,
    STORY,
    STORY_TOAST,
    TITLE_WIDTH,
    narrate,
    policy,
    quest_title,
    skill_quest_title,
)
from realm.protocol import (
    Achievement,
    AchievementUnlocked,
    BattleChanged,
    ChampionChanged,
    CheckpointInfo,
    CheckpointSaved,
    Notice,
    OracleLoadFailed,
    QuestFinished,
    QuestInfo,
    QuestResult,
    QuestStarted,
    RealmState,
    SkillLevelUp,
    SkillsState,
    SkillState,
    StepMetrics,
)
from realm.state import apply, every_line

SKILLS = SkillsState(skills=(SkillState(id="bin", name="Binary Alchemy", short_name="BIN"),))


def test_the_policy_table():
    assert (
        policy(Notice(level="warning", text="quest idle-bin-L1-00000100.jsonl: 115 exact duplicate(s)")) == HOUSEKEEPING
    )
    assert policy(Notice(level="info", text="quest a.jsonl is back in the queue")) == HOUSEKEEPING
    error = policy(Notice(level="error", text="disk full"))
    assert error.audience == "housekeeping" and error.toast  # the player must act on it
    assert policy(CheckpointSaved(checkpoint=CheckpointInfo(step=1, name="checkpoint-1", time=0.0))) == HOUSEKEEPING
    assert policy(OracleLoadFailed(ref="7", reason="gone")).toast
    assert policy(BattleChanged(status="paused")) == STORY
    assert policy(SkillLevelUp(skill="bin", level=2, step=100)) == STORY_TOAST
    assert policy(ChampionChanged(step=200, score=0.5)) == STORY_TOAST
    assert policy(AchievementUnlocked(achievement=Achievement(id="x", name="X", time=0.0))) == STORY_TOAST


@pytest.mark.parametrize(
    ("source", "toast"), [("inbox", True), ("generated", True), ("idle", False), ("correction", False)]
)
def test_quests_are_story_and_only_the_players_own_toast(source, toast):
    finished = QuestFinished(result=QuestResult(name="q.jsonl", outcome="done", source=source))
    assert policy(finished).audience == "story"
    assert policy(finished).toast is toast


def test_housekeeping_goes_to_the_notices_and_the_story_to_the_log():
    state = RealmState()
    for event in (
        Notice(level="warning", text="quest idle-bin-L1-00000100.jsonl: 115 exact duplicate(s) kept"),
        BattleChanged(status="paused"),
        CheckpointSaved(checkpoint=CheckpointInfo(step=1, name="checkpoint-1-20260101-0000", time=0.0)),
    ):
        state = apply(state, event, 1.0)
    assert [line.text for line in state.log] == ["battle paused"]
    assert [line.text for line in state.notices] == [
        "quest idle-bin-L1-00000100.jsonl: 115 exact duplicate(s) kept",
        "vault: saved checkpoint-1-20260101-0000",
    ]
    assert len(every_line(state)) == 3  # nothing is dropped


@pytest.mark.parametrize(
    ("name", "source", "title"),
    [
        ("idle-bin-L3-00001200.jsonl", "idle", "BIN L3 · Binary Alchemy drills"),
        ("idle-bin-L3-00001200-2.jsonl", "idle", "BIN L3 · Binary Alchemy drills"),
        ("correction-sy-L2-00000400.jsonl", "correction", "Correction · SY L2"),
        ("bin-L4-40x-12345678.jsonl", "generated", "BIN L4 · 40 chats of Binary Alchemy"),
        ("idle-00000007.jsonl", "idle", "Warm-up · adding small numbers"),
        ("idle-bin-L3-00001200.jsonl", "inbox", "idle-bin-L3-00001200.jsonl"),  # the player's name is theirs
        ("odd.jsonl", "idle", "odd.jsonl"),  # a name the game does not make: shown as it is
    ],
)
def test_quest_titles_come_from_skill_level_and_kind(name, source, title):
    assert quest_title(QuestInfo(name=name, source=source), SKILLS) == title


def test_the_trainers_titles_take_the_longest_description_that_fits():
    forms = ("5-bit add, sub, logic, conversions and a great deal more", "5-bit, 8 ops", "5-bit")
    assert skill_quest_title("idle", [("BIN", 4, 128, forms)]) == "BIN L4 · 5-bit, 8 ops"
    assert skill_quest_title("generated", [("BIN", 4, 1, ("a" * 60,))]) == "BIN L4"  # nothing fits: the level
    two = [("BIN", 3, 96, ("4-bit add, logic", "4-bit")), ("SY", 2, 32, ("4 words",))]
    assert skill_quest_title("idle", two) == "BIN L3 4-bit ×96 · SY L2 4 words ×32"
    assert skill_quest_title("correction", [("SY", 2, 24, ("4 words of 2 syllables", "4 words"))], wrong=6) == (
        "Correction · SY L2 · 6 missed · 4 words"
    )
    assert all(len(skill_quest_title("idle", [("BIN", 30, 256, (f, "32-bit"))])) <= TITLE_WIDTH for f in forms)
    titled = QuestResult(name="idle-bin-L3-00001200.jsonl", outcome="done", source="idle", title="BIN L3 · 128 chats")
    assert quest_title(titled, SKILLS) == "BIN L3 · 128 chats"  # the lineage's title wins


def test_a_victory_says_rows_steps_and_the_loss_before_and_after():
    quest = QuestInfo(name="idle-bin-L3-00001200.jsonl", source="idle", examples=120, held_out=8)
    state = apply(RealmState(skills=SKILLS), QuestStarted(quest=quest, total_steps=3))
    for i, loss in enumerate((2.5, 1.75, 0.5), start=1):
        metrics = StepMetrics(
            step=i, loss=loss, lr=0.0, grad_norm=0.0, tokens=1, tokens_per_s=1.0, examples_per_s=1.0,
            quest_step=i, quest_total=3,
        )  # fmt: skip
        state = apply(state, metrics)
    done = QuestFinished(result=QuestResult(name=quest.name, outcome="done", steps=3, source="idle"))
    assert narrate(done, state) == (
        "info",
        "Victory: BIN L3 — 120 rows (8 held out), 3 steps, loss 2.500→0.500",  # the title cut to fit a log row
    )
    assert apply(state, done).log[-1].text == narrate(done, state)[1]
    started = narrate(QuestStarted(quest=quest, total_steps=3), state)
    assert started == ("info", "DIO enters battle: BIN L3 · Binary Alchemy drills — 120 rows (8 held out), 3 steps")


def test_a_long_victory_keeps_its_numbers_and_drops_the_titles_words_after_the_skill_and_level():
    def victory(title: str) -> str:
        won = QuestResult(name="q.jsonl", outcome="done", steps=12, title=title, examples_trained=224,
                          val_loss_start=1.2, val_loss_end=0.8)  # fmt: skip
        return narrate(QuestFinished(result=won), RealmState())[1]

    facts = " — val 1.200→0.800, 224 rows, 12 steps"
    assert victory("BIN L4 · 5-bit add, sub, logic, conversions") == "Victory: BIN L4" + facts
    assert victory("Correction · BIN L7 · 12 missed · 8-bit, 13 ops") == "Victory: Correction · BIN L7" + facts
    assert victory("BIN L1 · 2-4-bit add") == "Victory: BIN L1 · 2-4-bit add" + facts  # it fits: all of it
    mixed = "BIN L3 4-bit add, logic ×192 · SY L2 4 words ×64"  # each part keeps its skill, level and rows
    assert victory(mixed) == f"Victory: BIN L3 ×192 · SY L2{facts}"
    assert victory("BIN L3 add ×9 · SY L1 ×8") == f"Victory: BIN L3 ×9 · SY L1 ×8{facts}"
    long_titles = ("BIN L10 · 11-bit, 17 ops, newest signed", "SY L50 · 12 words", mixed)
    assert all(len(victory(t)) <= LOG_WIDTH for t in long_titles)


def test_a_victory_with_the_trainers_measures_says_rows_trained_and_the_held_out_loss_before_and_after():
    measured = QuestResult(
        name="idle-bin-L3-00001200.jsonl", outcome="done", steps=14, source="idle", title="BIN L3 · 4-bit add",
        examples_trained=224, val_loss_start=2.9134, val_loss_end=1.2041,
    )  # fmt: skip
    assert narrate(QuestFinished(result=measured), RealmState()) == (
        "info",
        "Victory: BIN L3 · 4-bit add — val 2.913→1.204, 224 rows, 14 steps",
    )
