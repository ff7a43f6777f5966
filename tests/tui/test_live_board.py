"""The Quest board, the Vault and the Skills screen against the real trainer (DIO-nano on ipc)."""

from __future__ import annotations

import re

import pytest
from conftest import fast_config, write_chat_quest
from textual.widgets import DataTable, Input

from realm.protocol import PauseRequest
from realm.tui.app import RealmApp
from realm.tui.format import bin_text
from realm.tui.screens.ask import AskPath, Confirm
from realm.tui.screens.checkpoint_detail import CheckpointDetail
from realm.tui.screens.quest_detail import FactSheet

from .conftest import text_of, wait_for
from .test_app import Notes

pytestmark = pytest.mark.timeout(180)


def queued_names(app) -> list[str]:
    return [q.name for q in app.mirror.state.board.queued]


def table_keys(app, selector: str) -> list[str]:
    return [r.value for r in app.screen.query_one(selector, DataTable).rows]


async def test_a_quest_added_from_the_board_is_queued_reprioritised_and_trained(trainer_factory, tmp_path):
    quest = write_chat_quest(tmp_path / "reverse.jsonl", n=16)
    notes = Notes()
    trainer = trainer_factory().start()
    app = RealmApp(trainer.pub, trainer.control, heartbeat_s=trainer.config.bus.heartbeat_s)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await wait_for(pilot, lambda: app.mirror.state.battle.status == "training", timeout=60, what="training")
        await pilot.press("space")  # paused: the added quest waits in the queue
        await wait_for(pilot, lambda: trainer.state.battle.status == "paused", timeout=30, what="paused")
        await pilot.press("4")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, AskPath), what="the path box")
        app.screen.query_one(Input).value = str(quest)  # typing it key by key is slow under load
        await pilot.press("enter")
        await wait_for(pilot, lambda: getattr(app.screen, "refusal", None) == "", timeout=60, what="the check")
        assert "reverse.jsonl: messages (chat_v1), 16 lines: 16 ok, 0 rejected" in text_of(
            app.screen.query_one("#quest-check-summary")
        )
        await pilot.press("enter")  # the check's summary: queue it
        await wait_for(pilot, lambda: "reverse.jsonl" in queued_names(app), timeout=30, what="the quest queued")
        await wait_for(pilot, lambda: "reverse.jsonl" in table_keys(app, "#quests-queued"), what="the board row")
        assert notes.any("queued reverse.jsonl")

        app.screen.query_one("#quests-queued", DataTable).move_cursor(
            row=table_keys(app, "#quests-queued").index("reverse.jsonl")
        )
        await pilot.press("plus")
        await wait_for(
            pilot,
            lambda: any(q.name == "reverse.jsonl" and q.priority == "high" for q in app.mirror.state.board.queued),
            timeout=30,
            what="high priority",
        )

        await pilot.press("space")  # resume: DIO trains on it
        await wait_for(
            pilot,
            lambda: any(r.name == "reverse.jsonl" and r.outcome == "done" for r in app.mirror.state.board.recent),
            timeout=90,
            what="trained",
        )
        await wait_for(pilot, lambda: any(k.startswith("reverse.jsonl@") for k in table_keys(app, "#quests-finished")),
                       what="the finished row")  # fmt: skip
    trainer.stop()
    assert trainer.exit_code == 0


async def test_add_a_missing_file_says_so_and_sends_nothing(trainer_factory, tmp_path):
    notes = Notes()
    trainer = trainer_factory().start()
    app = RealmApp(trainer.pub, trainer.control, heartbeat_s=trainer.config.bus.heartbeat_s)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await wait_for(pilot, lambda: app.mirror.connected, timeout=30, what="connected")
        await pilot.press("4", "a")
        await wait_for(pilot, lambda: isinstance(app.screen, AskPath), what="the path box")
        app.screen.query_one(Input).value = str(tmp_path / "nope.jsonl")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: notes.any(f"{tmp_path / 'nope.jsonl'}: not found; nothing queued"), what="the refusal"
        )
        assert not isinstance(app.screen, AskPath) and "nope.jsonl" not in queued_names(app)
    trainer.stop()


async def test_promote_and_delete_reach_the_trainer_which_refuses_without_an_oracle(trainer_factory):
    notes = Notes()
    trainer = trainer_factory(fast_config(checkpoint_every=3)).start()
    app = RealmApp(trainer.pub, trainer.control, heartbeat_s=trainer.config.bus.heartbeat_s)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await wait_for(pilot, lambda: app.mirror.state.vault.checkpoints, timeout=60, what="a checkpoint")
        await pilot.press("space")  # paused: the newest checkpoint stays the newest
        await wait_for(pilot, lambda: trainer.state.battle.status == "paused", timeout=30, what="paused")
        await pilot.press("5")
        table = app.screen.query_one("#vault-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == len(trainer.state.vault.checkpoints), what="the rows")
        newest = max(trainer.state.vault.checkpoints, key=lambda c: c.step)
        await pilot.press("P")
        await wait_for(pilot, lambda: notes.any(f"promote {newest.name} refused: promote {newest.name}"),
                       timeout=30, what="the trainer's refusal (no oracle)")  # fmt: skip
        await pilot.press("d")  # the newest: refused at once, nothing asked
        await wait_for(pilot, lambda: notes.any(f"{newest.name} is the latest checkpoint"), what="the reason")
        assert not isinstance(app.screen, Confirm)
        await pilot.press("enter")  # its detail: the trainer's real manifest and sidecar
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointDetail), what="the detail")
        await wait_for(pilot, lambda: (app.screen.fact("folder") or "").endswith(newest.name), timeout=30,
                       what="the trainer's facts")  # fmt: skip
        assert "model.safetensors" in app.screen.fact("files") and f"step: {newest.step}" in app.screen.fact("sidecar")
        await pilot.press("escape")
        assert any(c.step == newest.step for c in trainer.state.vault.checkpoints)
    trainer.stop()
    assert trainer.exit_code == 0


async def test_the_skills_screen_shows_bin_after_an_eval_round(trainer_factory, tmp_path):
    from skills.test_trainer_skills import skill_folder, skills_config

    trainer = trainer_factory(skills_config(skill_folder(tmp_path))).start()
    app = RealmApp(trainer.pub, trainer.control, heartbeat_s=trainer.config.bus.heartbeat_s)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        rows = lambda: text_of(app.screen.query_one("#skills-rows"))  # noqa: E731
        await wait_for(pilot, lambda: "  L1  " in rows(), timeout=120, what="an eval round on the screen")
        [skill] = app.mirror.state.skills.skills
        assert skill.id == "bin"
        assert f"{skill.name}" in rows() and f"Lv {skill.level}/{skill.max_level}" in rows()
        assert re.search(r"steps? [\d,–]+ · \d+ evals?", rows()), "the sparkline's steps and rounds"
        assert app.screen.query_one("#skills-items", DataTable).row_count == len(skill.last_items) > 0
        assert not app.screen.query_one("#skills-empty").display
        trainer.client.request(PauseRequest())  # no newer round may replace the items between here and enter
        await wait_for(pilot, lambda: app.mirror.state.battle.status == "paused", what="the pause")
        item = app.mirror.state.skills.skills[0].last_items[0]
        await wait_for(pilot, lambda: app.screen.selected_item().item == item, what="the last round's items drawn")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FactSheet), what="the item's detail")
        assert app.screen.fact("DIO said") == (bin_text(item.response, app.bin_glyphs) or "(nothing)")
        assert app.screen.fact("expected") == bin_text(item.expected, app.bin_glyphs)
    trainer.stop()
    assert trainer.exit_code == 0
