"""The Oracle's suggested prompts (ctrl+t), clearing the conversation (ctrl+l), and following the
latest or the champion checkpoint (tui.oracle_follow, ctrl+f) through the real promote request."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from realm.protocol import ChampionChanged, CheckpointInfo, CheckpointSaved, PromoteRequest
from realm.tui.app import RealmApp
from realm.tui.oracle_follow import OracleFollow
from realm.tui.widgets.chat_log import ChatLog

from .conftest import HEARTBEAT_S, ScriptedTrainer, wait_for
from .test_app import Notes, connect
from .test_snapshots import recorded_app

pytestmark = pytest.mark.timeout(60)


def checkpoint(step: int) -> CheckpointInfo:
    return CheckpointInfo(step=step, name=f"checkpoint-{step}", time=float(step))


def promotes(trainer: ScriptedTrainer) -> list[str]:
    return [r.ref for r in trainer.control_requests() if isinstance(r, PromoteRequest)]


# --------------------------------------------------------------------------- suggestions and clearing


async def test_ctrl_t_puts_each_suggested_item_in_the_box_in_turn():
    app = recorded_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("6")
        screen = app.screen
        suggestions = screen._suggestions
        assert suggestions and all(label.startswith("BIN L") for label, _ in suggestions)
        await pilot.press("ctrl+t")
        box = screen.query_one("#oracle-input", Input)
        assert box.value == suggestions[0][1] and box.has_focus
        await pilot.press("ctrl+t")
        assert box.value == suggestions[1 % len(suggestions)][1]


async def test_ctrl_l_clears_the_conversation_and_then_says_it_is_empty():
    notes = Notes()
    app = recorded_app()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await pilot.press("6")
        screen = app.screen
        screen.chat.history += [{"role": "user", "content": "5?"}, {"role": "assistant", "content": "101"}]
        screen.query_one(ChatLog).add_message("you", "5?")
        screen.query_one(ChatLog).add_message("DIO", "101")
        app.refresh_now()
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: not screen.query_one(ChatLog).children, what="an empty chat")
        assert screen.chat.history == [] and notes.any("conversation cleared")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: notes.any("the conversation is empty"), what="the reason")


# --------------------------------------------------------------------------- following


def test_follow_asks_once_for_what_the_mode_names_unless_it_is_served():
    from realm.protocol import RealmState, VaultState

    state = RealmState(vault=VaultState(checkpoints=(checkpoint(100), checkpoint(200)), champion=100))
    follow = OracleFollow("champion")
    assert follow.due(state, served_step=None).step == 100
    assert follow.due(state, served_step=100) is None  # served already
    follow.asked = 100
    assert follow.due(state, served_step=None) is None  # asked once: a refusal is not retried
    assert follow.cycle() == "off" and follow.due(state, None) is None
    assert follow.cycle() == "latest" and follow.due(state, None).step == 200


async def test_follow_champion_promotes_each_new_champion_once(endpoints, trainer):
    app = RealmApp(endpoints.pub, endpoints.control, heartbeat_s=HEARTBEAT_S, oracle_follow="champion")
    async with app.run_test(size=(80, 24)) as pilot:
        await connect(pilot, app, trainer)
        trainer.begin()
        trainer.publisher.emit(CheckpointSaved(checkpoint=checkpoint(100)))
        trainer.publisher.emit(ChampionChanged(step=100, score=-1.0))
        await wait_for(pilot, lambda: promotes(trainer) == ["100"], what="the champion's promote")
        trainer.publisher.emit(CheckpointSaved(checkpoint=checkpoint(200)))  # not a champion: not followed
        trainer.publisher.emit(CheckpointSaved(checkpoint=checkpoint(300)))
        trainer.publisher.emit(ChampionChanged(step=300, score=-0.5))
        await wait_for(pilot, lambda: len(promotes(trainer)) >= 2, what="the new champion's promote")
        assert promotes(trainer) == ["100", "300"]


async def test_ctrl_f_cycles_to_latest_and_follows_each_new_checkpoint(endpoints, trainer):
    notes = Notes()
    app = RealmApp(endpoints.pub, endpoints.control, heartbeat_s=HEARTBEAT_S)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await connect(pilot, app, trainer)
        trainer.begin()
        trainer.publisher.emit(CheckpointSaved(checkpoint=checkpoint(100)))
        await wait_for(pilot, lambda: app.mirror.state.vault.checkpoints, what="the checkpoint")
        await pilot.press("6")
        assert app.follow.mode == "off" and promotes(trainer) == []
        await pilot.press("ctrl+f")
        assert app.screen.query_one(ChatLog).border_subtitle == "follows the latest · ctrl+f"
        await wait_for(pilot, lambda: promotes(trainer) == ["100"], what="the latest's promote")
        trainer.publisher.emit(CheckpointSaved(checkpoint=checkpoint(200)))
        await wait_for(pilot, lambda: promotes(trainer) == ["100", "200"], what="the next one's promote")
        await pilot.press("ctrl+f", "ctrl+f")
        assert app.follow.mode == "off" and notes.any("the oracle follows nothing")


async def test_a_read_only_session_follows_nothing(endpoints, trainer):
    notes = Notes()
    app = RealmApp(endpoints.pub, endpoints.control, heartbeat_s=HEARTBEAT_S, readonly=True, oracle_follow="latest")
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await connect(pilot, app, trainer)
        trainer.begin()
        trainer.publisher.emit(CheckpointSaved(checkpoint=checkpoint(100)))
        await wait_for(pilot, lambda: app.mirror.state.vault.checkpoints, what="the checkpoint")
        await pilot.press("6", "ctrl+f")
        await wait_for(pilot, lambda: notes.any("read-only session"), what="the read-only reason")
        assert app.follow.mode == "latest" and promotes(trainer) == []
