"""The Textual app against the real trainer: DIO-nano training real steps on loopback ipc."""

from __future__ import annotations

import pytest

from realm.tui.app import RealmApp

from .conftest import text_of, wait_for

pytestmark = pytest.mark.timeout(120)


async def test_the_app_follows_a_real_trainer_and_space_pauses_and_resumes(trainer_factory):
    trainer = trainer_factory().start()
    app = RealmApp(trainer.pub, trainer.control, heartbeat_s=trainer.config.bus.heartbeat_s)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: app.mirror.state.hero.steps >= 3, timeout=60, what="training steps")
        seen = app.mirror.state.hero.steps
        await wait_for(pilot, lambda: app.mirror.state.hero.steps > seen, timeout=30, what="the step to advance")
        await wait_for(pilot, lambda: "idle-" in text_of(app.screen.query_one("#battle-quest")), what="quest name")

        await pilot.press("space")
        await wait_for(pilot, lambda: trainer.state.battle.status == "paused", timeout=30, what="the trainer pausing")
        await wait_for(pilot, lambda: "PAUSED" in text_of(app.screen.query_one("#battle-state")), what="PAUSED")
        paused_at = trainer.state.hero.steps

        await pilot.press("space")
        await wait_for(pilot, lambda: trainer.state.hero.steps > paused_at, timeout=30, what="training to resume")
        await wait_for(pilot, lambda: "PAUSED" not in text_of(app.screen.query_one("#battle-state")), what="unpaused")
    trainer.stop()
    assert trainer.exit_code == 0
