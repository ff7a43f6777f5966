"""The Textual app against a scripted trainer on real ipc sockets: no mocks, no fixed sleeps."""

from __future__ import annotations

import contextlib
import time

import pytest
from textual.message import Message
from textual.notifications import Notify

from realm.game.hero import hero_stats
from realm.protocol import PauseRequest, QuestFinished, QuestResult, ResumeRequest
from realm.tui.app import RealmApp

from .conftest import HEARTBEAT_S, ScriptedTrainer, SteppedClock, text_of, wait_for

pytestmark = pytest.mark.timeout(60)


class Notes:
    """Collects the app's toasts through run_test's message hook."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.posted = 0

    def __call__(self, message: Message) -> None:
        self.posted += 1
        if isinstance(message, Notify):
            self.messages.append(message.notification.message)

    def any(self, text: str) -> bool:
        return any(text in m for m in self.messages)


def make_app(endpoints, readonly: bool = False, clock=time.time) -> RealmApp:
    return RealmApp(endpoints.pub, endpoints.control, heartbeat_s=HEARTBEAT_S, readonly=readonly, clock=clock)


def toasts_after_each_wait(clock: SteppedClock, condition):
    """``condition``, with the app's clock 1 s further on each time it is asked (toasts wait 10 s)."""

    def check() -> bool:
        clock.advance(1.0)
        return condition()

    return check


def text(app: RealmApp, selector: str) -> str:
    return text_of(app.screen.query_one(selector))


async def connect(pilot, app: RealmApp, trainer: ScriptedTrainer) -> None:
    trainer.start()
    await wait_for(pilot, lambda: app.mirror.connected, what="the mirror to connect")
    # A snapshot can come back before the subscription is live (ZeroMQ's slow joiner): events
    # sent then reach the app only through a resync, never as events. A heartbeat proves it live.
    answered = app.mirror.last_heard
    await wait_for(pilot, lambda: app.mirror.last_heard > answered, what="the first heartbeat")


@contextlib.asynccontextmanager
async def playing(endpoints, trainer: ScriptedTrainer, *, readonly: bool = False, notes: Notes | None = None):
    """The app at 80x24, connected to ``trainer``, whose run has begun: (app, pilot)."""
    app = make_app(endpoints, readonly=readonly)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await connect(pilot, app, trainer)
        trainer.begin()
        yield app, pilot


async def test_waits_for_the_trainer_then_connects_without_restart(endpoints, trainer):
    app = make_app(endpoints)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "waiting for trainer at" in text(app, "#status"), what="the waiting line")
        assert endpoints.control in text(app, "#status")

        trainer.start()
        trainer.begin()
        await wait_for(pilot, lambda: "connected" in text(app, "#status"), what="the connected line")
        await wait_for(pilot, lambda: "builtin:dio-nano" in text(app, "#hero-model"), what="the model line")
        assert "waiting" not in text(app, "#status")
        assert "run r1" in text(app, "#status")


async def test_a_lost_trainer_shows_waiting_and_a_new_one_is_followed(endpoints, trainer):
    async with playing(endpoints, trainer) as (app, pilot):
        trainer.steps(1, 42)
        await wait_for(pilot, lambda: "XP 42 " in text(app, "#hero-xp"), what="XP 42")

        trainer.stop()
        await wait_for(pilot, lambda: "connection lost" in text(app, "#status"), what="the lost line")
        assert "waiting for trainer at" in text(app, "#status")
        assert "XP 42 " in text(app, "#hero-xp")  # the last state seen stays on show

        restarted = ScriptedTrainer(endpoints, run="r2").start()
        try:
            restarted.begin()
            restarted.steps(1, 7)
            await wait_for(pilot, lambda: "XP 7 " in text(app, "#hero-xp"), what="the new run's XP")
            assert "connected · run r2" in text(app, "#status")
        finally:
            restarted.stop()


async def test_battle_and_hero_screens_follow_the_events(endpoints, trainer):
    notes = Notes()
    clock = SteppedClock()
    app = make_app(endpoints, clock=clock)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await connect(pilot, app, trainer)
        trainer.begin(quest="arith-l1", total_steps=400)
        trainer.steps(1, 90)
        await pilot.press("2")
        await wait_for(pilot, lambda: "Step 90" in text(app, "#battle-state"), what="step 90")
        assert "arith-l1" in text(app, "#battle-quest")
        assert "90/400" in text(app, "#battle-quest")

        trainer.steps(91, 250)  # crosses levels 2 and 3 (100 steps a level)
        trainer.publisher.emit(QuestFinished(result=QuestResult(name="warmup", outcome="done", steps=5)))
        await wait_for(pilot, lambda: "Step 250" in text(app, "#battle-state"), what="step 250")
        assert "loss 0.5000" in text(app, "#battle-metrics")

        await pilot.press("1")
        stats = hero_stats(app.mirror.state)
        assert stats.level == 3
        await wait_for(pilot, lambda: f"Level {stats.level}" in text(app, "#hero-level"), what="the level")
        xp = text(app, "#hero-xp")
        assert f"XP {stats.xp}" in xp
        assert f"{stats.xp_into_level}/{stats.xp_for_level}" in xp
        assert "Gold 100" in text(app, "#hero-stats")
        both = toasts_after_each_wait(clock, lambda: notes.any("level 3") and notes.any("Quest won: warmup"))
        await wait_for(pilot, both, what="the toasts")


async def test_space_pauses_and_resumes(endpoints, trainer):
    async with playing(endpoints, trainer) as (app, pilot):
        trainer.steps(1, 10)
        await pilot.press("2")
        await wait_for(pilot, lambda: "TRAINING" in text(app, "#battle-state"), what="training")

        await pilot.press("space")
        await wait_for(pilot, lambda: "PAUSED" in text(app, "#battle-state"), what="PAUSED")
        assert [type(r) for r in trainer.control_requests()] == [PauseRequest]
        assert app.screen.query_one("#battle-state").has_class("-paused")

        await pilot.press("space")
        await wait_for(pilot, lambda: "TRAINING" in text(app, "#battle-state"), what="training again")
        assert [type(r) for r in trainer.control_requests()] == [PauseRequest, ResumeRequest]


async def test_space_without_a_trainer_says_so(endpoints):
    notes = Notes()
    app = make_app(endpoints)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await pilot.press("space")
        await wait_for(pilot, lambda: notes.any("trainer not reachable"), what="the toast")


async def test_readonly_space_sends_nothing(endpoints, trainer):
    notes = Notes()
    app = make_app(endpoints, readonly=True)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await connect(pilot, app, trainer)
        trainer.begin()
        await pilot.press("2")
        await pilot.press("space")
        await wait_for(pilot, lambda: notes.any("read-only session"), what="the read-only toast")
        await wait_for(pilot, lambda: "read-only" in text(app, "#status"), what="read-only in the status line")
        assert trainer.control_requests() == []
        assert app.mirror.state.battle.status != "paused"


async def test_a_quest_file_that_cannot_be_read_is_not_sent_and_the_toast_says_why(endpoints, trainer, tmp_path):
    notes = Notes()
    async with playing(endpoints, trainer, notes=notes) as (app, pilot):
        app.add_quest_file(tmp_path / "missing.jsonl")
        await wait_for(pilot, lambda: notes.any("missing.jsonl: file not found"), what="the toast")
        assert trainer.control_requests() == []


async def test_firehose_of_5000_steps_ends_in_sync(endpoints, trainer):
    notes = Notes()
    app = make_app(endpoints)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await connect(pilot, app, trainer)
        await pilot.press("2")
        trainer.begin(total_steps=5000)
        posted_before = notes.posted
        for first in range(1, 5001, 1000):
            trainer.steps(first, first + 999, quest_total=5000)
            await pilot.pause(0)  # let the app run between bursts, as it would live
        assert trainer.publisher is not None
        # typically well under a second; the bound is generous for a machine under load
        caught_up = lambda: app.mirror.seq == trainer.publisher.seq  # noqa: E731
        await wait_for(pilot, caught_up, timeout=20, what="the mirror to catch up")
        await wait_for(pilot, lambda: "Step 5,000" in text(app, "#battle-state"), what="the last step")
        assert "5,000/5,000" in text(app, "#battle-quest")
        assert app.mirror.state == trainer.publisher.state
        # repaints are coalesced on the tick: far fewer messages than bus events
        assert notes.posted - posted_before < 5000


async def test_a_trainer_process_that_exits_is_announced_with_its_log(endpoints, tmp_path):
    import subprocess
    import sys

    from realm.tui.app import TrainerProcess

    log = tmp_path / "trainer.log"
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    notes = Notes()
    app = RealmApp(endpoints.pub, endpoints.control, heartbeat_s=HEARTBEAT_S, trainer=TrainerProcess(process, log))
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await wait_for(pilot, lambda: notes.any("exited with code 3"), what="the trainer's exit")
        assert notes.any(str(log))
        await pilot.pause(0.3)
        assert sum("exited with code" in m for m in notes.messages) == 1  # said once, not every tick


async def test_the_screens_not_shown_yet_are_made_ready_after_the_first_frame(endpoints):
    """A screen's first visit costs what a return does: each one is composed and mounted once the
    first frame is out (the first frame waits for none of them)."""
    app = make_app(endpoints)
    made_before_the_first_frame: list[str] = []
    display = app._display

    def first_display(screen, renderable) -> None:
        if not made_before_the_first_frame:
            made_before_the_first_frame.extend(m for m in app.MODES if ready(m))
        display(screen, renderable)

    def ready(mode: str) -> bool:
        try:
            return app.get_screen_stack(mode)[0].is_mounted
        except (KeyError, IndexError):
            return False

    app._display = first_display
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: all(ready(m) for m in app.MODES), what="every screen made ready")
        quests = app.get_screen_stack("quests")[0]
        assert made_before_the_first_frame == ["hero"] and app.screen.SCREEN_NAME == "1 Hero"
        await pilot.press("4")
        assert app.screen is quests and "4 Quests" in text(app, "#status")
