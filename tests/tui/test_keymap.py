"""Keys rebound by the config's ``tui.keys``: checked before the app starts, then live."""

from __future__ import annotations

import pytest

from realm.config import ConfigError
from realm.protocol import PauseRequest
from realm.tui.app import RealmApp
from realm.tui.keymap import bindings, check_keymap, describe

from .conftest import HEARTBEAT_S, text_of, wait_for
from .test_app import connect

pytestmark = pytest.mark.timeout(60)


def test_every_binding_has_an_id_and_the_list_names_them():
    ids = bindings()
    assert {"battle.pause", "vault.promote", "app.quit", "screen.hero", "quests.add"} <= set(ids)
    assert "battle.pause       space" in describe()


def test_an_unknown_id_or_an_empty_key_is_a_config_error_that_names_it():
    with pytest.raises(ConfigError, match=r"'battle.paws'.*battle\.pause"):
        check_keymap({"battle.paws": "p"})
    with pytest.raises(ConfigError, match="battle.pause: give one key"):
        check_keymap({"battle.pause": " , "})
    assert check_keymap({"battle.pause": "p,space"}) == {"battle.pause": "p,space"}


async def test_rebound_keys_fire_their_action_and_help_shows_them(endpoints, trainer):
    keymap = {"battle.pause": "p", "screen.battle": "b"}
    app = RealmApp(endpoints.pub, endpoints.control, heartbeat_s=HEARTBEAT_S, keymap=keymap)
    async with app.run_test(size=(80, 24)) as pilot:
        await connect(pilot, app, trainer)
        trainer.begin()
        trainer.steps(1, 5)
        await pilot.press("b")
        await wait_for(pilot, lambda: "Battle" in text_of(app.screen.query_one("#status")), what="the Battle screen")
        await pilot.press("space")  # no longer bound
        await pilot.press("p")
        await wait_for(pilot, lambda: trainer.control_requests(), what="a request")
        assert [type(r) for r in trainer.control_requests()] == [PauseRequest]
        await pilot.press("9")
        help_text = text_of(app.screen.query_one("#help-text"))
        assert "  p       Pause or resume" in help_text and "  b       Show the Battle" in help_text
