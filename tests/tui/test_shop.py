"""The shop modal against the real trainer: `$`, pick an item, `enter` buys it for real."""

from __future__ import annotations

import pytest

from realm.game.hero import hero_stats
from realm.tui.app import RealmApp
from realm.tui.screens.shop import ShopScreen

from .conftest import text_of, wait_for

pytestmark = pytest.mark.timeout(180)


async def test_dollar_opens_the_shop_and_enter_buys_an_eval_round_from_the_real_trainer(trainer_factory, tmp_path):
    from tests.skills.test_trainer_skills import skill_folder, skills_config

    trainer = trainer_factory(skills_config(skill_folder(tmp_path), eval_every=1000)).start()
    app = RealmApp(trainer.pub, trainer.control, heartbeat_s=trainer.config.bus.heartbeat_s)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: hero_stats(app.mirror.state).gold >= 200, timeout=120, what="200 gold")
        rounds = len(trainer.state.skills.skills[0].history)
        await pilot.press("dollar_sign")
        await wait_for(pilot, lambda: isinstance(app.screen, ShopScreen), what="the shop")
        lines = [text_of(s) for s in app.screen.query("Static")]
        assert any(line.startswith("Shop  · Gold ") for line in lines), lines
        await pilot.press("down", "enter")  # the second item: an eval round
        await wait_for(pilot, lambda: not isinstance(app.screen, ShopScreen), what="the shop to close")
        await wait_for(pilot, lambda: app.mirror.state.hero.gold_spent == 200, timeout=30, what="GoldSpent")
        await wait_for(
            pilot, lambda: len(trainer.state.skills.skills[0].history) > rounds, timeout=60, what="the eval round"
        )
        assert trainer.state.hero.steps < 1000
    trainer.stop()
