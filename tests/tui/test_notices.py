"""Toasts (said together, at most one per 10 s of the app's clock, never over the Battle chart), the
Notices screen, and quest titles in the detail."""

from __future__ import annotations

import re

import pytest
from textual.notifications import Notify
from textual.widgets._toast import Toast

from realm.protocol import Achievement, AchievementUnlocked, Notice, QuestFinished, QuestResult
from realm.tui import demo
from realm.tui.news import ToastGate
from realm.tui.widgets.loss_chart import LossChart

from .conftest import ScriptedTrainer, wait_for
from .test_app import connect, make_app
from .test_snapshots import recorded_app

pytestmark = pytest.mark.timeout(60)


class ManualClock:
    """The app's time, moved only by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def won(name: str, source: str = "inbox") -> QuestFinished:
    return QuestFinished(result=QuestResult(name=name, outcome="done", steps=5, source=source))


def test_the_gate_coalesces_and_waits_10_s():
    gate = ToastGate()
    for i in range(3):
        gate.add(won(f"q{i}.jsonl"))
    gate.add(AchievementUnlocked(achievement=Achievement(id="c", name="Centurion", time=0.0)))
    first = gate.due(100.0)
    assert first is not None and first.text == "3 quests won · ★ Centurion" and first.severity == "information"
    assert gate.due(100.0) is None  # nothing new
    gate.add(won("late.jsonl"))
    gate.add(Notice(level="error", text="disk full"))
    assert gate.due(109.9) is None  # too soon: held, not lost
    second = gate.due(110.0)
    assert second is not None and second.severity == "error"
    assert second.text == "1 error: 0 shows Notices\nQuest won: late.jsonl"


def said_won(messages: list[str]) -> int:
    """How many quests the toasts said were won."""
    total = 0
    for text in messages:
        many = re.search(r"(\d+) quests won", text)
        total += int(many[1]) if many else text.count("Quest won: ")
    return total


async def test_a_flood_of_won_quests_toasts_at_most_once_per_10_s(endpoints, trainer: ScriptedTrainer):
    clock = ManualClock(1_000.0)
    shown: list[tuple[float, str]] = []  # (the app's time, the toast's text)

    def hook(message) -> None:
        if isinstance(message, Notify):
            shown.append((clock(), message.notification.message))

    app = make_app(endpoints, clock=clock)
    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        await connect(pilot, app, trainer)
        trainer.begin()
        flood = 0
        for burst in range(6):  # 60 quests won within 18 s of app time
            for i in range(10):
                trainer.publisher.emit(won(f"burst-{burst}-quest-{i}.jsonl"))
            flood += 10
            await wait_for(pilot, lambda: app.mirror.state.hero.quests_completed == flood, what="the burst")
            await pilot.pause()  # a repaint tick drains it
            clock.now += 3.0

        def every_win_said() -> bool:
            clock.now += 1.0
            return said_won([text for _, text in shown]) == flood

        await wait_for(pilot, every_win_said, what="every win said")
    times = [t for t, _ in shown]
    assert len(times) >= 2  # a flood of 60 wins, over 18 s and more: said more than once
    assert all(later - earlier >= 10.0 for earlier, later in zip(times, times[1:])), times
    assert any(re.search(r"\d+ quests won", text) for _, text in shown)  # coalesced


def news_flood(app) -> None:
    """The worst toast the game makes, at once: an error, a failed and a won quest with long real
    names, an achievement; through the real reducer into the mirror, as the bus would."""
    from realm.protocol import Envelope
    from realm.state import apply

    long_name = "reverse-words-from-the-whole-of-moby-dick-chapters-one-to-ten.jsonl"
    events = [
        Notice(level="error", text=f"quest {long_name}: could not read quests/queued/high/{long_name}"),
        QuestFinished(result=QuestResult(name=long_name, outcome="failed", reason="line 3: not JSON")),
        won("my-own-binary-addition-drills-for-dio-level-three.jsonl"),
        AchievementUnlocked(achievement=Achievement(id="x", name="A Failed Quest Survived", time=0.0)),
    ]
    mirror = app.mirror
    for event in events:
        mirror.seq += 1
        envelope = Envelope(run=mirror.state.run, seq=mirror.seq, time=demo.T0 + 300, event=event)
        mirror.state = apply(mirror.state, event, envelope.time)
        mirror.recent.append(envelope)


async def test_a_toast_on_the_battle_screen_leaves_the_chart_uncovered():
    app = recorded_app()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.press("2")
        news_flood(app)
        await wait_for(pilot, lambda: bool(app.screen.query(Toast)), what="the toast")
        await pilot.pause()
        chart = app.screen.query_one(LossChart).region
        toasts = list(app.screen.query(Toast))
        assert len(toasts) == 1  # said together
        assert not toasts[0].region.overlaps(chart), (toasts[0].region, chart)


def rendered(app, selector: str) -> str:
    from .conftest import text_of

    return text_of(app.screen.query_one(selector))


async def test_notices_hold_the_housekeeping_the_story_leaves_out():
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1")
        await pilot.pause()
        chronicle = str(app.screen.query_one("#hero-log").render())
        assert "battle paused" in chronicle and "ledger:" not in chronicle  # the newest story, no notices
        story = " ".join(line.text for line in app.mirror.state.log)
        assert "Victory: BIN L1 · 2-4-bit add — 60 steps" in story
        assert "duplicate" not in story and "saved checkpoint" not in story
        await pilot.press("0")
        await wait_for(pilot, lambda: "Notices · f: all" in str(app.screen.query_one("#notices-box").border_title))
        shown = rendered(app, "#notices-text")
        assert "115 exact duplicate(s)" in shown and "vault: saved checkpoint-200" in shown
        await pilot.press("f")
        await pilot.pause()
        shown = rendered(app, "#notices-text")
        assert "115 exact duplicate(s)" in shown and "saved checkpoint" not in shown  # warnings and errors
        await pilot.press("f")
        await pilot.pause()
        shown = rendered(app, "#notices-text")
        assert "could not read" in shown and "retrying" in shown and "duplicate" not in shown
        assert "(5 hidden)" in str(app.screen.query_one("#notices-box").border_title)


def test_a_game_quests_detail_keeps_its_file_name_beside_its_title():
    from realm.protocol import QuestInfo
    from realm.tui.screens.quest_detail import facts_of

    idle = QuestInfo(name=demo.IDLE_QUEST, source="idle", title="BIN L1 · 2-4-bit add")
    assert facts_of(idle)[:2] == [("title", "BIN L1 · 2-4-bit add"), ("file", demo.IDLE_QUEST)]
    mine = QuestInfo(name="my.jsonl")
    assert [label for label, _ in facts_of(mine)][0] == "status"  # the box's title is the name already


def test_a_won_quests_detail_has_the_trainers_measures():
    from realm.protocol import QuestResult
    from realm.tui.screens.quest_detail import facts_of

    won = QuestResult(
        name="my.jsonl", outcome="done", steps=14, examples_trained=224, val_loss_start=2.5, val_loss_end=1.25
    )
    facts = dict(facts_of(won))
    assert facts["trained"] == "224 rows (every pass counted)"
    assert facts["quest val"] == "2.5000 before → 1.2500 after (-1.2500)"
    assert "quest val" not in dict(facts_of(QuestResult(name="old.jsonl", outcome="done", steps=3)))
