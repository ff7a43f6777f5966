"""Every screen and action of the app against a scripted trainer on real ipc sockets."""

from __future__ import annotations

import shutil

import pytest
from textual.command import CommandList
from textual.widgets import DataTable, Input

from realm.config import TrainConfig
from realm.protocol import (
    Achievement,
    AchievementUnlocked,
    BattleChanged,
    ChampionChanged,
    CheckpointInfo,
    CheckpointSaved,
    CheckpointScored,
    ConfigUpdateRequest,
    QuestFinished,
    QuestResult,
    SuiteScore,
)
from realm.tui.actions import EMPTY_VAULT
from realm.tui.app import RealmApp
from realm.tui.screens.away import AwayScreen
from realm.tui.widgets.damage import DamageFloats

from .conftest import HEARTBEAT_S, ScriptedTrainer, SteppedClock, text_of, wait_for
from .test_app import Notes, connect, make_app, playing, text, toasts_after_each_wait

pytestmark = pytest.mark.timeout(60)

SCREENS = [
    ("1", "Hero"),
    ("2", "Battle"),
    ("3", "Skills"),
    ("4", "Quests"),
    ("5", "Vault"),
    ("6", "Oracle"),
    ("7", "Watchtower"),
    ("8", "Armory"),
    ("9", "Help"),
]


async def test_number_keys_show_every_screen_and_esc_goes_back(endpoints, trainer):
    async with playing(endpoints, trainer) as (app, pilot):
        for key, name in SCREENS:
            await pilot.press(key)
            await wait_for(pilot, lambda: f"{key} {name}" in text(app, "#status"), what=f"the {name} screen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: "8 Armory" in text(app, "#status"), what="back to the Armory")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: "9 Help" in text(app, "#status"), what="help on ?")
        assert "Pause or resume" in text_of(app.screen.query_one("#help-text"))


async def test_disabled_actions_show_dimmed_and_say_why(endpoints, trainer):
    notes = Notes()
    async with playing(endpoints, trainer, notes=notes) as (app, pilot):
        await pilot.press("5")
        await wait_for(pilot, lambda: "5 Vault" in text(app, "#status"), what="the vault")
        assert app.screen.active_bindings["P"].enabled is False
        assert app.screen.active_bindings["d"].enabled is False
        assert app.screen.active_bindings["s"].enabled is True
        await pilot.press("P")
        await wait_for(pilot, lambda: notes.any(EMPTY_VAULT), what="the promote reason")
        await pilot.press("9")
        help_text = text_of(app.screen.query_one("#help-text"))
        assert "disabled: " + EMPTY_VAULT[:20] in help_text
        assert trainer.control_requests() == []


async def test_readonly_disables_commands_in_the_footer(endpoints, trainer):
    async with playing(endpoints, trainer, readonly=True) as (app, pilot):
        trainer.announce_config()
        await pilot.press("8")
        await wait_for(pilot, lambda: app.screen.query_one(DataTable).row_count > 0, what="the config rows")
        assert app.screen.active_bindings["space"].enabled is False
        assert app.screen.active_bindings["e"].enabled is False
        await pilot.press("e")
        await pilot.press("enter")
        assert not any(isinstance(s, Input) for s in app.screen.query(Input))
        assert trainer.control_requests() == []


async def test_vault_sorts_and_filters(endpoints, trainer):
    async with playing(endpoints, trainer) as (app, pilot):
        for step, loss in ((100, 2.0), (200, 1.0), (300, 1.5)):
            info = CheckpointInfo(
                step=step,
                name=f"checkpoint-{step}",
                time=1.7e9 + step,
                train_loss=1.0,
                val_loss=0.1,
                quest="reverse" if step == 200 else "idle",
            )
            trainer.publisher.emit(CheckpointSaved(checkpoint=info))
            trainer.publisher.emit(CheckpointScored(step=step, suite=SuiteScore(version="v1", loss=loss)))
        trainer.publisher.emit(ChampionChanged(step=200, score=-1.0))
        await pilot.press("5")
        table = lambda: app.screen.query_one(DataTable)  # noqa: E731
        keys = lambda: [r.value for r in table().rows]  # noqa: E731
        await wait_for(pilot, lambda: table().row_count == 3, what="three checkpoints")
        assert keys() == ["300", "200", "100"]  # newest first
        assert "champion 200: suite loss 1.000" in text(app, "#vault-stats")
        await pilot.press("s")  # by suite loss
        assert keys() == ["200", "300", "100"]
        await pilot.press("slash")
        await pilot.press(*"reverse")
        await wait_for(pilot, lambda: table().row_count == 1, what="the filter")
        assert keys() == ["200"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: table().row_count == 3, what="the filter cleared")
        assert "5 Vault" in text(app, "#status")


async def test_the_vault_keeps_the_selected_checkpoint_when_a_new_one_is_saved(endpoints, trainer):
    def saved(step: int) -> CheckpointSaved:
        return CheckpointSaved(checkpoint=CheckpointInfo(step=step, name=f"checkpoint-{step}", time=1.7e9 + step))

    async with playing(endpoints, trainer) as (app, pilot):
        for step in (100, 200, 300):
            trainer.publisher.emit(saved(step))
        await pilot.press("5")
        table = lambda: app.screen.query_one(DataTable)  # noqa: E731
        await wait_for(pilot, lambda: table().row_count == 3, what="three checkpoints")
        await pilot.press("down", "down")
        assert app.screen.selected_checkpoint().step == 100
        trainer.publisher.emit(saved(400))  # a new top row, and the latest mark moves
        await wait_for(pilot, lambda: table().row_count == 4, what="the new checkpoint")
        assert app.screen.selected_checkpoint().step == 100
        assert table().cursor_row == 3


async def test_armory_edits_a_safe_key_and_confirms_a_critical_one(endpoints, trainer):
    notes = Notes()
    async with playing(endpoints, trainer, notes=notes) as (app, pilot):
        trainer.announce_config()
        await pilot.press("8")
        table = lambda: app.screen.query_one(DataTable)  # noqa: E731
        await wait_for(pilot, lambda: table().row_count > 0, what="the config rows")
        keys = [r.value for r in table().rows]

        table().move_cursor(row=keys.index("train.lr"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.focused, Input), what="the edit box")
        app.focused.value = ""
        await pilot.press(*"1e-4", "enter")
        await wait_for(pilot, lambda: trainer.config.train.lr == 1e-4, what="the trainer's new lr")
        await wait_for(pilot, lambda: notes.any("train.lr accepted"), what="the ack")

        table().move_cursor(row=keys.index("train.lr"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.focused, Input), what="the edit box")
        app.focused.value = ""
        await pilot.press(*"-3", "enter")
        await wait_for(pilot, lambda: notes.any("refused") and notes.any("lr"), what="the refusal")
        assert trainer.config.train.lr == 1e-4

        table().move_cursor(row=keys.index("train.max_length"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.focused, Input), what="the edit box")
        app.focused.value = "128"
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: "Critical key" in str(app.screen.query("Static").first().render()), what="the confirmation"
        )
        await pilot.press("n")
        await wait_for(pilot, lambda: notes.any(f"kept at {TrainConfig().max_length}"), what="kept")
        sent = [r for r in trainer.control_requests() if isinstance(r, ConfigUpdateRequest)]
        assert [r.key for r in sent] == ["train.lr", "train.lr"]

        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.focused, Input), what="the edit box")
        app.focused.value = "128"
        await pilot.press("enter", "y")
        await wait_for(pilot, lambda: trainer.config.train.max_length == 128, what="the confirmed change")
        last = [r for r in trainer.control_requests() if isinstance(r, ConfigUpdateRequest)][-1]
        assert last.confirm is True


async def test_battle_effects_eta_damage_flash_and_toasts(endpoints, trainer):
    notes = Notes()
    clock = SteppedClock()
    app = make_app(endpoints, clock=clock)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await connect(pilot, app, trainer)
        trainer.begin(total_steps=400)
        await pilot.press("2")
        trainer.steps(1, 20)
        await wait_for(pilot, lambda: "ETA" in text(app, "#battle-state"), what="the ETA")
        await wait_for(pilot, lambda: app.screen.query_one(DamageFloats).floats, what="a damage number")
        number, _, fell = app.screen.query_one(DamageFloats).floats[-1]
        loss = lambda step: 3.0 / (1 + step / 50)  # noqa: E731  (the fake trainer's losses)
        # the loss change over the tick's steps: to step 20's loss from the step before the tick (or its first)
        assert fell and number in {f"-{loss(k) - loss(20):.3f}" for k in range(1, 20)}
        assert "loss change" in str(app.screen.query_one(DamageFloats).render())

        trainer.steps(21, 120)  # level 2 at step 100
        await wait_for(pilot, lambda: notes.any("level 2"), what="the level-up toast")
        if app.animation_level != "none":
            assert app.screen.query_one("#battle-state").has_class("-flash")
        trainer.publisher.emit(AchievementUnlocked(achievement=Achievement(id="x", name="Centurion", time=1.0)))
        trainer.publisher.emit(QuestFinished(result=QuestResult(name="bad.jsonl", outcome="failed", reason="no json")))
        together = toasts_after_each_wait(
            clock, lambda: notes.any("Quest failed: bad.jsonl") and notes.any("Centurion")
        )
        await wait_for(pilot, together, what="one toast for both")
        log = text_of(app.screen.query_one("#battle-log"))
        assert "Defeat: bad.jsonl (no json)" in log and "achievement unlocked: Centurion" in log


def first_hit(app) -> str:
    lists = app.screen.query(CommandList)
    if not lists or lists.first().option_count == 0:
        return ""
    prompt = lists.first().get_option_at_index(0).prompt
    return getattr(prompt, "plain", str(prompt))


async def test_command_palette_runs_actions_and_explains_disabled_ones(endpoints, trainer):
    notes = Notes()
    async with playing(endpoints, trainer, notes=notes) as (app, pilot):
        await pilot.press("ctrl+p")
        await pilot.press(*"Watchtower")
        await wait_for(pilot, lambda: "Watchtower" in first_hit(app), what="the palette hit")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "7 Watchtower" in text(app, "#status"), what="the watchtower")
        await wait_for(pilot, lambda: "seq · run" in text_of(app.screen.query_one("#watch-link")), what="link")

        await pilot.press("ctrl+p")
        await pilot.press(*"Promote")
        await wait_for(pilot, lambda: "Promote" in first_hit(app), what="the palette hit")
        await pilot.press("enter")
        await wait_for(pilot, lambda: notes.any(EMPTY_VAULT), what="the reason")


async def test_while_you_were_away_shows_what_the_journal_says(endpoints, tmp_path):
    state_dir = tmp_path / "state"
    trainer = ScriptedTrainer(endpoints, journal_db=tmp_path / "realm.db").start()
    try:
        first = RealmApp(endpoints.pub, endpoints.control, heartbeat_s=HEARTBEAT_S, state_dir=state_dir)
        async with first.run_test(size=(80, 24)) as pilot:
            trainer.begin()
            trainer.steps(1, 30)
            await wait_for(pilot, lambda: first.mirror.state.hero.steps == 30, what="step 30")
        assert (state_dir / "seen.json").exists()

        # away: the trainer goes on without anyone watching
        trainer.steps(31, 250)
        trainer.publisher.emit(QuestFinished(result=QuestResult(name="arith-l1", outcome="done", steps=250)))
        trainer.publisher.emit(BattleChanged(status="paused"))

        soon_dir = tmp_path / "soon"  # the same mark, for a player back within tui.away_after_s
        soon_dir.mkdir()
        shutil.copy(state_dir / "seen.json", soon_dir / "seen.json")
        soon = RealmApp(endpoints.pub, endpoints.control, heartbeat_s=HEARTBEAT_S, state_dir=soon_dir)
        async with soon.run_test(size=(80, 24)) as pilot:  # seconds away are not an absence
            await wait_for(pilot, lambda: soon.mirror.state.hero.steps == 250, what="the snapshot")
            await pilot.pause(0.5)
            assert not isinstance(soon.screen, AwayScreen)

        second = RealmApp(
            endpoints.pub, endpoints.control, heartbeat_s=HEARTBEAT_S, state_dir=state_dir, away_after_s=0
        )
        async with second.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(second.screen, AwayScreen), what="the away modal")
            summary = second.screen.summary
            assert summary.steps == 220
            assert len(summary.levels) == 2  # levels 2 and 3 at 100 steps a level
            assert summary.quests_done == 1
            assert "Centurion" in summary.achievements
            await pilot.press("2")  # the news never swallows a key: it closes and the key still works
            await wait_for(pilot, lambda: not isinstance(second.screen, AwayScreen), what="the modal to close")
            await wait_for(pilot, lambda: type(second.screen).__name__ == "BattleScreen", what="the Battle screen")

        third = RealmApp(endpoints.pub, endpoints.control, heartbeat_s=HEARTBEAT_S, state_dir=state_dir, away_after_s=0)
        async with third.run_test(size=(80, 24)) as pilot:  # nothing new: no modal
            await wait_for(pilot, lambda: third.mirror.connected, what="connected")
            await pilot.pause(0.5)
            assert not isinstance(third.screen, AwayScreen)
    finally:
        trainer.stop()


async def test_without_animations_damage_stands_still_and_no_flash(endpoints, trainer):
    notes = Notes()
    app = make_app(endpoints)
    app.animation_level = "none"  # what TEXTUAL_ANIMATIONS=none sets
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await connect(pilot, app, trainer)
        trainer.begin(total_steps=400)
        await pilot.press("2")
        trainer.steps(1, 95)
        await wait_for(pilot, lambda: "Step 95" in text(app, "#battle-state"), what="step 95")
        trainer.steps(96, 130)
        await wait_for(pilot, lambda: notes.any("level 2"), what="the level-up toast")
        floats = app.screen.query_one(DamageFloats).floats
        assert len(floats) == 1 and floats[0][1] == 0
        assert not app.screen.query_one("#battle-state").has_class("-flash")


async def test_a_key_judges_the_state_its_screen_shows_not_the_last_tick(endpoints, trainer, monkeypatch):
    """Switching screens paints the newest state at once; the keys must be enabled by that same
    state, not by the reasons the last tick computed (CI pressed ``r`` on a failed quest the
    board already showed while the tick's reasons still said there was nothing to retry)."""
    import realm.tui.app as app_module
    from realm.protocol import QuestRetryRequest
    from realm.state import apply

    monkeypatch.setattr(app_module, "REPAINT_S", 3600)  # no tick: only the screen switch repaints
    trainer.start()
    app = RealmApp(endpoints.pub, endpoints.control, follow_bus=False)
    async with app.run_test(size=(80, 24)) as pilot:
        failed = QuestFinished(result=QuestResult(name="broken.jsonl", outcome="failed", reason="line 3"))
        app.mirror.state = apply(app.mirror.state, failed, 1.0)
        app.mirror.connected = True
        await pilot.press("4")
        assert app.screen.query_one("#quests-finished", DataTable).row_count == 1
        await pilot.press("r")
        await wait_for(
            pilot, lambda: QuestRetryRequest(name="broken.jsonl") in trainer.control_requests(), what="retry"
        )


async def test_board_keys_send_retry_remove_and_skip_with_the_selected_names(endpoints, trainer):
    from realm.protocol import QuestInfo, QuestQueued, QuestRemoveRequest, QuestRetryRequest, SkipRequest
    from realm.tui.screens.ask import Confirm

    notes = Notes()
    async with playing(endpoints, trainer, notes=notes) as (app, pilot):
        trainer.publisher.emit(QuestQueued(quest=QuestInfo(name="reverse.jsonl", examples=8)))
        trainer.publisher.emit(
            QuestFinished(result=QuestResult(name="broken.jsonl", outcome="failed", reason="line 3"))
        )
        await pilot.press("4")
        await wait_for(pilot, lambda: app.screen.query_one("#quests-finished", DataTable).row_count == 1, what="rows")
        await pilot.press("r")
        await wait_for(
            pilot, lambda: QuestRetryRequest(name="broken.jsonl") in trainer.control_requests(), what="retry"
        )
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm), what="the confirmation")
        await pilot.press("n")  # no: nothing is sent
        await wait_for(pilot, lambda: not isinstance(app.screen, Confirm), what="the modal to close")
        await pilot.press("delete")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm), what="the confirmation")
        await pilot.press("y")
        await wait_for(
            pilot, lambda: QuestRemoveRequest(name="reverse.jsonl") in trainer.control_requests(), what="remove"
        )
        await pilot.press("k")
        await wait_for(pilot, lambda: SkipRequest() in trainer.control_requests(), what="skip")
        assert len(trainer.control_requests()) == 3
        await wait_for(pilot, lambda: notes.any("refused: unsupported: SkipRequest"), what="the scripted refusal")


async def test_first_visits_do_not_reparse_the_css_and_a_new_theme_still_reaches_every_screen(endpoints):
    """Textual re-parses every stylesheet when it shows a screen it thinks unstyled; realm screens
    are styled at their mount, so visiting each costs no re-parse (100+ ms a visit here), while a
    theme changed later still restyles the screens made before it."""
    from textual.color import Color

    from realm.tui import demo

    app = RealmApp(endpoints.pub, endpoints.control, follow_bus=False)
    demo.fill(app.mirror)
    reparses = []
    refresh_css = app.refresh_css
    app.refresh_css = lambda animate=True: (reparses.append(app.screen), refresh_css(animate))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        before = len(reparses)
        for key in "234567891":
            await pilot.press(key)
        assert len(reparses) == before
        dark = app.screen.styles.background
        app.theme = "textual-light"
        await pilot.press("5")
        await pilot.pause(0.1)
        assert app.screen.styles.background != dark
        assert app.screen.styles.background == Color.parse(app.get_theme("textual-light").background)


LONG_REASON = ("bad.jsonl: line 3 is not JSON (Expecting ',' delimiter: line 1 column 48); " * 3)[:200]


async def test_enter_shows_a_failed_quests_whole_reason_and_esc_closes_it(endpoints, trainer):
    from realm.tui.screens.quest_detail import QuestDetail

    assert len(LONG_REASON) == 200
    async with playing(endpoints, trainer) as (app, pilot):
        result = QuestResult(name="bad.jsonl", outcome="failed", reason=LONG_REASON, time=1.0, source="inbox")
        trainer.publisher.emit(QuestFinished(result=result))
        await pilot.press("4")
        await wait_for(pilot, lambda: app.screen.query_one("#quests-finished", DataTable).row_count == 1, what="row")
        await pilot.press("tab", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, QuestDetail), what="the detail view")
        await pilot.pause()
        labels = [text_of(w) for w in app.screen.query(".quest-fact-label")]
        values = dict(zip(labels, (text_of(w) for w in app.screen.query(".quest-fact-value"))))
        assert values["reason"] == LONG_REASON and values["status"] == "failed" and values["source"] == "inbox"
        reason = app.screen.query(".quest-fact-value").last()
        assert reason.size.height == 4, "200 characters wrap to four lines in the 60 columns beside the labels"
        assert app.screen.query_one("#quest-detail-box").max_scroll_y == 0, "all of it is on screen at 80x24"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, QuestDetail), what="the detail view to close")
        assert app.screen.query_one("#quests-finished", DataTable).row_count == 1


async def test_the_filter_hides_the_games_idle_quests_until_all_is_picked(endpoints, trainer):
    from realm.protocol import QuestInfo, QuestQueued

    def rows(selector: str) -> int:
        return app.screen.query_one(selector, DataTable).row_count

    async with playing(endpoints, trainer) as (app, pilot):
        trainer.publisher.emit(QuestQueued(quest=QuestInfo(name="idle-2.jsonl", source="idle", priority="low")))
        trainer.publisher.emit(QuestQueued(quest=QuestInfo(name="mine.jsonl", examples=8)))
        for n, source in enumerate(("idle", "correction", "inbox", "idle")):
            outcome = "failed" if source in ("inbox", "correction") else "done"
            finished = QuestResult(name=f"{source}-{n}.jsonl", outcome=outcome, time=n + 1.0, source=source)
            trainer.publisher.emit(QuestFinished(result=finished))
        await pilot.press("4")
        await wait_for(pilot, lambda: len(app.mirror.state.board.recent) == 4, what="four finished quests")
        await wait_for(pilot, lambda: rows("#quests-finished") == 1, what="mine: the one inbox quest")
        assert rows("#quests-queued") == 1
        assert "f: mine (3 hidden)" in app.screen.query_one("#quests-finished").border_title
        await pilot.press("f")
        assert rows("#quests-finished") == 2 and "f: failed" in app.screen.query_one("#quests-finished").border_title
        await pilot.press("f")
        assert rows("#quests-finished") == 4 and rows("#quests-queued") == 2
        assert app.screen.query_one("#quests-finished").border_title == "Done and failed · enter: detail · f: all"


async def test_enter_on_a_queued_quest_shows_its_counts(endpoints, trainer):
    from realm.protocol import QuestInfo, QuestQueued
    from realm.tui.screens.quest_detail import QuestDetail

    async with playing(endpoints, trainer) as (app, pilot):
        quest = QuestInfo(name="mine.jsonl", examples=1234, format="messages", quarantined=3, held_out=20)
        trainer.publisher.emit(QuestQueued(quest=quest))
        await pilot.press("4")
        await wait_for(pilot, lambda: app.screen.query_one("#quests-queued", DataTable).row_count == 1, what="row")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, QuestDetail), what="the detail view")
        labels = [text_of(w) for w in app.screen.query(".quest-fact-label")]
        values = dict(zip(labels, (text_of(w) for w in app.screen.query(".quest-fact-value"))))
        assert values["status"] == "queued" and values["examples"] == "1,234" and values["bad lines"] == "3"
        assert values["quarantine"].startswith("quests/quarantine/")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, QuestDetail), what="enter to close it too")
