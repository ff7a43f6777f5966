"""The Add dialog's check: a quest file's summary (the offline check's) before it is queued."""

from __future__ import annotations

import msgspec
from quest_files_fixtures import all_bad, mixed, too_long

from realm.config import TrainConfig
from realm.protocol import QuestAddRequest
from realm.tui.screens.ask import QuestCheckBox

from .conftest import text_of, wait_for
from .test_app import Notes, playing


async def add_through_the_dialog(app, pilot, path) -> QuestCheckBox:
    await pilot.press("4", "a")
    await wait_for(pilot, lambda: app.screen.query("#ask-path"), what="the path box")
    app.screen.query_one("#ask-path").value = str(path)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, QuestCheckBox), what="the check box")
    box = app.screen
    await wait_for(pilot, lambda: box.refusal is not None, timeout=60, what="the check's summary")
    return box


def summary(box: QuestCheckBox) -> str:
    return text_of(box.query_one("#quest-check-summary"))


async def test_a_mixed_file_shows_its_summary_and_enter_queues_it(endpoints, trainer, tmp_path):
    path = mixed(tmp_path)
    async with playing(endpoints, trainer) as (app, pilot):
        box = await add_through_the_dialog(app, pilot, path)
        shown = summary(box)
        assert "mixed.jsonl: messages (chat_v1), 33 lines: 30 ok, 3 rejected" in shown
        assert "1 × turn 2: unknown role 'asistant' (did you mean 'assistant'?)" in shown
        assert f"train.max_length {TrainConfig().max_length}: 0 over" in shown
        assert not [r for r in trainer.control_requests() if isinstance(r, QuestAddRequest)]
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: [r.name for r in trainer.control_requests() if isinstance(r, QuestAddRequest)] == ["mixed.jsonl"],
            what="the add request",
        )
        assert not isinstance(app.screen, QuestCheckBox)
        assert added(trainer)[0].epochs == 0  # left blank: the trainer's quests.epochs


def added(trainer) -> list[QuestAddRequest]:
    return [r for r in trainer.control_requests() if isinstance(r, QuestAddRequest)]


async def test_the_epochs_box_sends_the_quest_s_own_passes_and_refuses_what_the_cli_refuses(
    endpoints, trainer, tmp_path
):
    notes = Notes()
    async with playing(endpoints, trainer, notes=notes) as (app, pilot):
        box = await add_through_the_dialog(app, pilot, mixed(tmp_path))
        assert "1 (quests.epochs)" in box.query_one("#quest-check-epochs").placeholder
        for typed, refusal in (("0", "epochs: 0 is not at least 1"), ("two", "epochs: 'two' is not a whole number")):
            box.query_one("#quest-check-epochs").value = typed
            await pilot.press("enter")
            await wait_for(pilot, lambda: notes.any(refusal), what=refusal)  # noqa: B023
            assert app.screen is box and not added(trainer)
        box.query_one("#quest-check-epochs").value = ""
        await pilot.press("3", "enter")  # typed into the box, which has the focus
        await wait_for(pilot, lambda: added(trainer), what="the add request")
        assert (added(trainer)[0].name, added(trainer)[0].epochs) == ("mixed.jsonl", 3)


async def test_a_file_the_trainer_would_fail_is_not_queued(endpoints, trainer, tmp_path):
    notes = Notes()
    async with playing(endpoints, trainer, notes=notes) as (app, pilot):
        box = await add_through_the_dialog(app, pilot, all_bad(tmp_path))
        assert "5 lines: 0 ok, 5 rejected" in summary(box)
        assert "the trainer would fail the whole file: 5 of 5 lines (100%) are bad" in summary(box)
        await pilot.press("enter")
        await wait_for(pilot, lambda: notes.any("all-bad.jsonl is not queued: 5 of 5 lines"), what="the refusal")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, QuestCheckBox), what="the box to close")
        assert not [r for r in trainer.control_requests() if isinstance(r, QuestAddRequest)]


async def test_the_length_is_measured_against_the_trainers_announced_max_length(endpoints, trainer, tmp_path):
    trainer.config = msgspec.structs.replace(trainer.config, train=TrainConfig(max_length=64))
    async with playing(endpoints, trainer) as (app, pilot):
        trainer.announce_config()
        await wait_for(pilot, lambda: app.announced_config().train.max_length == 64, what="the announced config")
        box = await add_through_the_dialog(app, pilot, too_long(tmp_path, words=40))
        assert "train.max_length 64: 1 over" in summary(box)
        assert "21 lines: 20 ok, 1 rejected" in summary(box)


async def test_a_path_that_is_not_a_file_is_refused_at_once(endpoints, trainer, tmp_path):
    notes = Notes()
    async with playing(endpoints, trainer, notes=notes) as (app, pilot):
        for path, why in ((tmp_path / "nonexistent.jsonl", "not found"), (tmp_path, "is a folder, not a quest file")):
            await pilot.press("4", "a")
            await wait_for(pilot, lambda: app.screen.query("#ask-path"), what="the path box")
            app.screen.query_one("#ask-path").value = str(path)
            await pilot.press("enter")
            await wait_for(pilot, lambda: notes.any(f"{path}: {why}; nothing queued"), what="the refusal")  # noqa: B023
            assert not isinstance(app.screen, QuestCheckBox)
        assert not [r for r in trainer.control_requests() if isinstance(r, QuestAddRequest)]


async def test_a_check_that_breaks_refuses_the_file_and_the_game_goes_on(endpoints, trainer, tmp_path, monkeypatch):
    """A fault no rule foresaw in the offline check (one stopped the whole app, and `realm play` with it)."""
    path = mixed(tmp_path)
    async with playing(endpoints, trainer) as (app, pilot):

        def breaks(checked):
            raise RuntimeError("an unforeseen fault")

        monkeypatch.setattr(app, "check_quest_file", breaks)
        box = await add_through_the_dialog(app, pilot, path)
        assert (
            box.refusal == "could not be checked (RuntimeError: an unforeseen fault); a bug in realm: please report it"
        )
        await pilot.press("enter")  # refused: nothing is sent
        await pilot.press("escape")
        assert app.is_running and not added(trainer)
