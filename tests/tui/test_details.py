"""The detail panes and the keys of the Skills and Vault screens, Help's hanging indent and the
palette's words, against a scripted trainer on real ipc sockets (the Vault's requests are
answered by the real VaultService over a real ledger and real checkpoint folders)."""

from __future__ import annotations

from datetime import datetime

import pytest
from textual.command import CommandList
from textual.widgets import DataTable

from realm.config import RealmConfig
from realm.protocol import ChampionChanged, CheckpointSaved, DeleteCheckpointRequest, SkillsLoaded, SkillsState
from realm.tui.actions import EMPTY_VAULT
from realm.tui.format import bin_text
from realm.tui.screens.ask import Confirm
from realm.tui.screens.checkpoint_detail import CheckpointDetail, size_text
from realm.tui.screens.quest_detail import FactSheet
from realm.vault.checkpoints import read_sidecar, write_checkpoint
from realm.vault.ledger import Ledger
from realm.vault.service import VaultService, kept_reason

from .conftest import text_of, wait_for
from .skill_scenes import BIN, BIN_ITEMS, SY, SY_ITEMS, rounds
from .test_app import Notes, playing, text

pytestmark = pytest.mark.timeout(60)


def flat(words: str) -> str:
    return " ".join(words.split())


async def test_skills_enter_shows_the_whole_eval_item_and_the_mix_is_said(endpoints, trainer):
    async with playing(endpoints, trainer) as (app, pilot):
        trainer.announce_config()  # the defaults: the shipped skills folder; the trainer announces BIN alone
        trainer.publisher.emit(SkillsLoaded(skills=SkillsState(active="bin", skills=(BIN,))))
        for event in rounds(BIN, BIN_ITEMS, 3):
            trainer.publisher.emit(event)
        await pilot.press("3")
        table = lambda: app.screen.query_one("#skills-items", DataTable)  # noqa: E731
        await wait_for(pilot, lambda: table().row_count == len(BIN_ITEMS), what="the eval items")
        now = flat(text(app, "#skills-now"))
        assert "In the mix (skills.mix): BIN. Not in the mix, so not trained or shown: sy" in now
        rows = text(app, "#skills-rows")
        assert "  L4  ▁▂▂" in rows and " 18%" in rows and "steps 50–150 · 3 evals" in rows and "L5" in rows

        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FactSheet), what="the item's detail")
        wrong = BIN_ITEMS[0]
        facts = dict(app.screen.facts)
        assert facts["DIO said"] == bin_text(wrong.response, app.bin_glyphs)
        assert facts["expected"] == bin_text(wrong.expected, app.bin_glyphs)
        assert facts["grader"] == bin_text(wrong.explanation, app.bin_glyphs)
        assert facts["verdict"] == "✗ wrong" and facts["round"] == "step 150"
        drawn = [text_of(w) for w in app.screen.query(".quest-fact-value")]
        assert bin_text(wrong.response, app.bin_glyphs) in drawn, "the whole answer, its six lines, drawn"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, FactSheet), what="the detail to close")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FactSheet), what="the second item's detail")
        assert dict(app.screen.facts)["grader"] == "the answer matches"


async def test_skills_in_the_mix_are_all_shown_sy_too(endpoints, trainer):
    async with playing(endpoints, trainer) as (app, pilot):
        trainer.publisher.emit(SkillsLoaded(skills=SkillsState(active="bin", skills=(BIN, SY))))
        for event in rounds(SY, SY_ITEMS, 2):
            trainer.publisher.emit(event)
        await pilot.press("3")
        table = lambda: app.screen.query_one("#skills-items", DataTable)  # noqa: E731
        await wait_for(pilot, lambda: table().row_count == 1, what="SY's item")
        assert "🧩 Word Weaving (SY)" in text(app, "#skills-rows")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, FactSheet), what="the item's detail")
        assert dict(app.screen.facts)["prompt"] == SY_ITEMS[0].prompt


def real_vault(tmp_path, trainer, steps=(100, 200, 300)):
    """Checkpoint folders written and recorded as the trainer's checkpointer does, and the real
    VaultService answering the app; returns the folders by step."""
    home = tmp_path / "home"
    ledger = Ledger(home / "vault" / "realm.db")
    folders = {}
    for step in steps:

        def save(folder, step=step):
            (folder / "model.safetensors").write_bytes(b"w" * 2048 * step)
            (folder / "training_state.pt").write_bytes(b"o" * 4096)

        sidecar = {"time": 1.7e9 + step, "train_loss": 1.0, "quest": "reverse.jsonl", "lr": 0.003, "model": "tiny"}
        folders[step] = write_checkpoint(home / "vault" / "checkpoints", step, datetime(2026, 1, 1), save, sidecar)
        info = ledger.record(folders[step], read_sidecar(folders[step]))
        trainer.publisher.emit(CheckpointSaved(checkpoint=info))
    trainer.vault = VaultService(RealmConfig(), home, ledger, trainer.publisher)
    return folders, ledger


async def test_vault_detail_delete_refused_up_front_and_a_real_delete(endpoints, trainer, tmp_path):
    notes = Notes()
    async with playing(endpoints, trainer, notes=notes) as (app, pilot):
        folders, ledger = real_vault(tmp_path, trainer)
        trainer.publisher.emit(ChampionChanged(step=200, score=-1.0))
        await pilot.press("5")
        table = lambda: app.screen.query_one("#vault-table", DataTable)  # noqa: E731
        await wait_for(pilot, lambda: table().row_count == 3, what="three checkpoints")
        cells = lambda: [table().get_row_at(n)[0] for n in range(3)]  # noqa: E731
        await wait_for(pilot, lambda: cells() == ["•", "★", ""], what="latest and champion marked")

        latest = app.mirror.state.vault.checkpoints[-1]
        await wait_for(pilot, lambda: app.screen.active_bindings["d"].enabled is False, what="d dimmed")
        await pilot.press("d")
        await wait_for(pilot, lambda: notes.any(kept_reason(latest.name, "latest")), what="the reason at once")
        assert not isinstance(app.screen, Confirm)
        await pilot.press("down", "d")
        await wait_for(pilot, lambda: notes.any("is the champion; it is kept"), what="the champion's reason")
        assert not any(isinstance(r, DeleteCheckpointRequest) for r in trainer.control_requests())

        await pilot.press("up", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CheckpointDetail), what="the checkpoint's detail")
        await wait_for(pilot, lambda: app.screen.fact("folder") == str(folders[300]), what="the trainer's facts")
        facts = dict(app.screen.facts)
        assert facts["marks"] == "• the latest" and facts["step"] == "300"
        assert facts["lineage"].startswith("100 steps after " + app.mirror.state.vault.checkpoints[1].name)
        assert facts["lineage"].endswith("; saved during reverse.jsonl")  # the quest at the save, not all it trained on
        every = sum(p.stat().st_size for p in folders[300].iterdir())
        shipped = every - (folders[300] / "training_state.pt").stat().st_size  # the optimizer state stays home
        assert facts["size"] == f"{size_text(every)} in all; {size_text(shipped)} shipped to an oracle"
        assert size_text(every).startswith("604.")
        assert "model.safetensors  600.0 KB" in facts["files"] and "training_state" not in facts["files"]
        assert '"lr": 0.003' not in facts["sidecar"] and "lr: 0.003" in facts["sidecar"]
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, CheckpointDetail), what="the detail to close")

        await pilot.press("down", "down")
        await wait_for(pilot, lambda: app.screen.active_bindings["d"].enabled is True, what="d enabled on step 100")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, Confirm), what="the confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: table().row_count == 2, timeout=20, what="the deleted row gone")
        assert not folders[100].exists() and [c.step for c in ledger.present()] == [200, 300]
        ledger.close()


async def test_the_empty_vault_says_when_dio_saves(endpoints, trainer):
    async with playing(endpoints, trainer) as (app, pilot):
        trainer.announce_config()
        await pilot.press("5")
        every = RealmConfig().train.checkpoint_every
        await wait_for(pilot, lambda: f"every {every} steps (idle quests too)" in text(app, "#vault-empty"),
                       what="the cadence")  # fmt: skip


def hits(app) -> int:
    lists = app.screen.query(CommandList)
    return lists.first().option_count if lists else 0


async def test_palette_subtitles_say_what_a_command_does(endpoints, trainer):
    async with playing(endpoints, trainer) as (app, pilot):
        await pilot.press("ctrl+p")
        await pilot.press(*"checkpoint to the oracle")  # found by what it does
        await wait_for(pilot, lambda: hits(app), what="a hit")
        title, subtitle = str(app.screen.query_one(CommandList).get_option_at_index(0).prompt).split("\n")
        assert title == "Vault: Promote (P) (disabled)"
        assert subtitle == "Promote the selected checkpoint to the oracle — disabled: " + EMPTY_VAULT


async def test_help_wraps_under_the_words_not_at_column_zero(endpoints, trainer):
    app_size = (60, 24)
    async with playing(endpoints, trainer) as (app, pilot):
        await pilot.resize_terminal(*app_size)
        await pilot.press("9")
        await wait_for(pilot, lambda: "9 Help" in text(app, "#status"), what="help")
        await pilot.pause()
        lines = text(app, "#help-text").splitlines()
        export = next(n for n, line in enumerate(lines) if line.startswith("  x "))
        assert lines[export + 1].startswith(" " * 10) and lines[export + 1].strip(), "a hanging indent"
        assert all(len(line) <= app.screen.query_one("#help-text").size.width for line in lines)
