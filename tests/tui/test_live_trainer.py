"""The Textual app against the real trainer: DIO-nano training real steps on loopback ipc."""

from __future__ import annotations

import pytest

from realm.game.narration import quest_title
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

        def titled() -> bool:  # the game's own quest by its title, not its file name
            quest, meter = app.mirror.state.battle.quest, text_of(app.screen.query_one("#battle-quest"))
            return (
                quest is not None and quest_title(quest, app.mirror.state.skills)[:20] in meter and "idle-" not in meter
            )

        await wait_for(pilot, titled, what="quest title")

        await pilot.press("space")
        await wait_for(pilot, lambda: trainer.state.battle.status == "paused", timeout=30, what="the trainer pausing")
        await wait_for(pilot, lambda: "PAUSED" in text_of(app.screen.query_one("#battle-state")), what="PAUSED")
        paused_at = trainer.state.hero.steps

        await pilot.press("space")
        await wait_for(pilot, lambda: trainer.state.hero.steps > paused_at, timeout=30, what="training to resume")
        await wait_for(pilot, lambda: "PAUSED" not in text_of(app.screen.query_one("#battle-state")), what="unpaused")
    trainer.stop()
    assert trainer.exit_code == 0


async def test_armory_and_while_you_were_away_against_a_real_trainer(trainer_factory, tmp_path):
    from conftest import fast_config
    from textual.widgets import DataTable, Input

    from realm.tui.screens.away import AwayScreen

    state_dir = tmp_path / "state"
    trainer = trainer_factory(fast_config(warmup_steps=1)).start()
    endpoints = (trainer.pub, trainer.control)
    app = RealmApp(*endpoints, heartbeat_s=trainer.config.bus.heartbeat_s, state_dir=state_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.mirror.state.config, timeout=60, what="the trainer's config")
        await pilot.press("8")
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count > 0, what="the config rows")
        table.move_cursor(row=[r.value for r in table.rows].index("train.lr"))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.focused, Input), what="the edit box")
        app.focused.value = "2e-4"
        await pilot.press("enter")
        await wait_for(pilot, lambda: trainer.state.battle.lr == 2e-4, timeout=30, what="the new lr in training")
        await wait_for(pilot, lambda: "0.0002" in text_of_row(table, "train.lr"), what="the table to follow")

    from realm.tui.away_summary import SeenStore

    seen = SeenStore(state_dir).get(trainer.control).step  # what the app remembered on its way out
    await_steps = seen + 5  # away: DIO trains on without the app
    import time

    deadline = time.monotonic() + 60
    while trainer.state.hero.steps < await_steps and time.monotonic() < deadline:
        time.sleep(0.05)
    again = RealmApp(*endpoints, heartbeat_s=trainer.config.bus.heartbeat_s, state_dir=state_dir, away_after_s=0)
    async with again.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(again.screen, AwayScreen), timeout=30, what="the away modal")
        assert again.screen.summary.steps >= 5
    trainer.stop()
    assert trainer.exit_code == 0


def text_of_row(table, key: str) -> str:
    return " ".join(str(cell) for cell in table.get_row(key))


async def test_g_on_the_quest_board_generates_a_quest_from_a_skill_at_a_level(trainer_factory, tmp_path):
    import shutil

    import msgspec
    from conftest import fast_config

    from realm.config import SkillsConfig
    from realm.protocol import PauseRequest
    from realm.skills.registry import SKILLS_DIR
    from realm.tui.screens.ask import AskGenerate

    from .test_app import Notes

    folder = tmp_path / "skills"  # bin alone: loading every shipped skill takes a while
    folder.mkdir()
    shutil.copy(SKILLS_DIR / "bin.yaml", folder / "bin.yaml")
    skills = SkillsConfig(enabled=True, folder=str(folder), mix=["bin"], eval_every=1000, max_eval_share=0.0)
    trainer = trainer_factory(msgspec.structs.replace(fast_config(max_length=256), skills=skills)).start()
    trainer.client.request(PauseRequest())  # DIO rests: the quest stays queued, and the CPU stays free
    notes = Notes()
    app = RealmApp(trainer.pub, trainer.control, heartbeat_s=trainer.config.bus.heartbeat_s)
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: app.why_disabled("generate_quest") is None, timeout=60, what="the skills")
        await pilot.press("g")
        await wait_for(pilot, lambda: isinstance(app.screen, AskGenerate), what="the generate box")
        assert app.focused.value == "1"  # the skill's own level to start with
        await pilot.press("ctrl+u", *"99", "enter")
        await wait_for(pilot, lambda: notes.any("level: bin has levels 1..30"), what="the level refused here")
        assert isinstance(app.screen, AskGenerate)
        await pilot.press("ctrl+u", "2", "tab", "ctrl+u", "9", "enter")
        await wait_for(pilot, lambda: notes.any("queued bin-L2-9x-"), timeout=30, what="the trainer's answer")
        queued = lambda: [q for q in app.mirror.state.board.queued if q.name.startswith("bin-L2-9x-")]  # noqa: E731
        await wait_for(pilot, queued, timeout=30, what="the quest on the board")
        assert queued()[0].examples == 9
    trainer.stop()
    assert trainer.exit_code == 0


async def test_over_tcp_with_keys_the_app_reaches_the_trainer_through_curve_and_a_stranger_does_not(
    trainer_factory, tmp_path
):
    import msgspec
    from conftest import fast_config

    from realm.cli.tui import trainer_link
    from realm.config import BusConfig
    from realm.security import init_keys
    from tests.oracle.test_security import free_port

    home = tmp_path / "home"
    public = init_keys(home / "keys")
    port = free_port()
    control, pub = f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port + 1}"
    (home / "hosts.yaml").write_text(
        f"nodes:\n  - {{name: here, roles: [trainer], public_key: '{public['node']}',"
        f" trainer: {{control: '{control}', pub: '{pub}'}}}}\n"
        f"clients:\n  - {{name: me, public_key: '{public['client']}'}}\n"
    )
    config = msgspec.structs.replace(fast_config(), bus=BusConfig(control=control, pub=pub, heartbeat_s=0.2))
    trainer = trainer_factory(config, home=home).start()
    setup = trainer_link(config, home, control)
    assert setup is not None

    app = RealmApp(pub, control, heartbeat_s=0.2, trainer_setup=setup)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.mirror.state.hero.steps >= 1, timeout=60, what="steps over CURVE")
        await pilot.press("space")
        await wait_for(pilot, lambda: trainer.state.battle.status == "paused", timeout=30, what="a pause over CURVE")

    stranger = RealmApp(pub, control, heartbeat_s=0.2)  # no keys: the trainer neither answers nor publishes to it
    async with stranger.run_test(size=(80, 24)) as pilot:
        await pilot.pause(2.0)
        assert not stranger.mirror.connected and stranger.mirror.state.hero.steps == 0
    trainer.stop()
