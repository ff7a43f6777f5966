"""SVG snapshots of every screen at 80x24, drawn from a recorded, deterministic event stream.

The recorded session (``realm.tui.demo``) goes through the real reducer into the app's
mirror; the clock and the time zone are fixed, so the pictures only change when the
drawing does. Update them with ``python -m pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the report before committing.
"""

from __future__ import annotations

import time

import pytest

from realm.tui import demo
from realm.tui.app import RealmApp
from realm.tui.oracles import OracleNode

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


ORACLE = OracleNode("local", "ipc:///realm-home/run/oracle-pub", "ipc:///realm-home/run/oracle-ctl")


def recorded_app(oracle: bool = True, events=None, follow: str = "off") -> RealmApp:
    app = RealmApp(
        "ipc:///realm-home/run/trainer-pub", "ipc:///realm-home/run/trainer-ctl",
        follow_bus=False, clock=lambda: demo.T0 + 200, oracles=[ORACLE] if oracle else [], oracle_follow=follow,
    )  # fmt: skip
    demo.fill(app.mirror, events)
    for link in app.oracles.links:
        demo.fill(link.mirror, demo.oracle_session())
    return app


def gpu_app() -> RealmApp:
    """The recorded session on a CUDA trainer whose last step carries an NVML reading."""
    from msgspec.structs import replace

    from realm.protocol import GpuInfo

    events = demo.session()
    started = events[0]
    events[0] = replace(started, trainer=replace(started.trainer, device="cuda:0", parameters=596_049_920))
    reading = GpuInfo(
        index=0, name="NVIDIA GeForce RTX 4090", utilization=87.0, memory_used_mb=12_595.0,
        memory_total_mb=24_564.0, temperature_c=64.0, power_w=311.0,
    )  # fmt: skip
    events.insert(-2, replace(demo.step(250), gpu=reading))
    return recorded_app(events=events)


@pytest.mark.parametrize("key", ["2", "7"])
def test_trainer_gpu_reading(snap_compare, key):
    """Battle and Watchtower with the trainer's GPU (the recorded CPU session is the no-GPU case)."""
    assert snap_compare(gpu_app(), press=[key, "wait:300"], terminal_size=(80, 24))


@pytest.mark.parametrize("key", [str(n) for n in range(0, 10)])
def test_screen(snap_compare, key):
    assert snap_compare(recorded_app(), press=[key, "wait:300"], terminal_size=(80, 24))


def test_armory_confirmation_of_a_critical_key(snap_compare):
    keys = ["8", "wait:200", "down", "down", "e", "wait:200", "end", *["backspace"] * 3, *"128", "enter", "wait:200"]
    assert snap_compare(recorded_app(), press=keys, terminal_size=(80, 24))


def test_oracle_screen_without_an_oracle(snap_compare):
    assert snap_compare(recorded_app(oracle=False), press=["6", "wait:300"], terminal_size=(80, 24))


def test_oracle_chat_transcript(snap_compare):
    """A finished answer as the handlers draw it (the live stream is tested against a real oracle)."""
    from realm.protocol import ChatEnd
    from realm.tui.screens.oracle import ChatChunk, ChatFinished

    async def chat(pilot):
        await pilot.press("6")
        screen = pilot.app.screen
        screen.chat.request_id = "r1"
        screen.query_one("#oracle-chat").add_message("you", "What is 5 in binary?")
        screen.query_one("#oracle-chat").add_message("DIO")
        for piece in ("1", "01", " — five is four plus one."):
            screen.post_message(ChatChunk("r1", piece))
        end = ChatEnd(id="r1", reason="stop", tokens=9, seconds=0.25, checkpoint="checkpoint-200-20260101-0002")
        screen.post_message(ChatFinished("r1", end))
        await pilot.pause(0.3)

    assert snap_compare(recorded_app(), run_before=chat, terminal_size=(80, 24))


def test_oracle_follows_the_champion_and_ctrl_t_tries_a_suggestion(snap_compare):
    """The champion is served already, so following it sends nothing; ctrl+t fills the box."""
    app = recorded_app(follow="champion")
    assert snap_compare(app, press=["6", "wait:300", "ctrl+t", "wait:200"], terminal_size=(80, 24))


def test_generate_a_quest_box(snap_compare):
    assert snap_compare(recorded_app(), press=["4", "wait:200", "g", "wait:300"], terminal_size=(80, 24))


def test_quest_detail_of_a_failed_quest(snap_compare):
    """A failed quest with a long reason, opened with enter: the whole reason, wrapped beside its label."""
    from realm.protocol import QuestFinished, QuestResult
    from realm.state import apply

    app = recorded_app()
    reason = "bad.jsonl: refused: 12 of 40 lines are not JSON (line 3: Expecting ',' delimiter at column 48); "
    reason += "fix them or set quests.bad_lines: skip; see quests/quarantine/bad.jsonl.quarantine.jsonl"
    failed = QuestFinished(result=QuestResult(name="bad.jsonl", outcome="failed", reason=reason, time=demo.T0 + 150))
    app.mirror.state = apply(app.mirror.state, failed, demo.T0 + 150)
    assert snap_compare(app, press=["4", "wait:200", "tab", "enter", "wait:300"], terminal_size=(80, 24))


def test_add_quest_check_box(snap_compare, tmp_path):
    """The Add dialog's summary of a mixed file (30 good lines, 3 bad) before it is queued."""
    from quest_files_fixtures import mixed

    from realm.tui.screens.ask import QuestCheckBox

    path = mixed(tmp_path)

    async def check(pilot) -> None:
        await pilot.press("4")
        await pilot.pause(0.2)
        pilot.app.push_screen(QuestCheckBox(path, pilot.app.check_quest_file))
        for _ in range(600):
            await pilot.pause(0.1)
            if isinstance(pilot.app.screen, QuestCheckBox) and pilot.app.screen.refusal is not None:
                break
        pilot.app.screen.query_one("#quest-check-epochs").cursor_blink = False  # the same frame however long it took
        await pilot.pause(0.3)

    assert snap_compare(recorded_app(), run_before=check, terminal_size=(80, 24))


def with_real_skills(mix):
    from tests.tui.skill_scenes import with_skills

    app = recorded_app()
    with_skills(app, mix)
    return app


def test_skills_with_bin_alone_says_sy_is_left_out(snap_compare):
    """Real BIN items (multi-line answers) at 80x24; with skills.mix [bin] the screen says SY is left out."""
    from tests.tui.skill_scenes import BIN

    assert snap_compare(with_real_skills((BIN,)), press=["3", "wait:300"], terminal_size=(80, 24))


def test_skills_of_a_new_hero_with_sy_locked_until_bin_reaches_l2(snap_compare):
    from msgspec.structs import replace

    from tests.tui.skill_scenes import BIN, SY

    new_bin = replace(BIN, level=1)
    locked_sy = replace(SY, level=1, waits_for="bin", waits_level=2)
    assert snap_compare(with_real_skills((new_bin, locked_sy)), press=["3", "wait:300"], terminal_size=(80, 24))


def test_skills_with_bin_and_sy_at_120x40(snap_compare):
    from tests.tui.skill_scenes import BIN, SY

    assert snap_compare(with_real_skills((BIN, SY)), press=["3", "wait:300"], terminal_size=(120, 40))


def test_skill_item_detail_of_a_wrong_sy_answer(snap_compare):
    """enter on SY's item: the verdict, DIO's whole answer, the expected one and the grader's words first."""
    from tests.tui.skill_scenes import BIN, SY

    keys = ["3", "wait:300", "down", "down", "down", "enter", "wait:300"]
    assert snap_compare(with_real_skills((BIN, SY)), press=keys, terminal_size=(80, 24))


def test_checkpoint_detail_with_the_trainers_answer(snap_compare):
    """enter on the champion: marks, scores, lineage from the state; folder, size, files and
    sidecar as the trainer's manifest tells them (drawn here from a fixed manifest)."""
    from realm.protocol import Manifest, ManifestFile

    files = (
        (".ledger.json", 612),
        ("config.json", 702),
        ("generation_config.json", 119),
        ("model.safetensors", 1_652_208),
        ("tokenizer.json", 2_113),
        ("tokenizer_config.json", 1_048),
    )
    sidecar = {"lr": 0.003, "model": "builtin:dio-nano", "quest": "idle-bin-l1-0001.jsonl", "skill": "bin",
               "skills": {"bin": {"accuracy": 0.6, "level": 1}}, "step": 200, "train_loss": 0.6}  # fmt: skip

    async def open_detail(pilot):
        await pilot.press("5")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.3)
        ckpt = pilot.app.screen.ckpt
        manifest = Manifest(
            checkpoint=ckpt, weights_sha256="9f2c" * 16, files=tuple(ManifestFile(n, s, "") for n, s in files),
            folder=f"/home/dio/.local/share/realm/vault/checkpoints/{ckpt.name}", folder_bytes=4_960_514,
        )  # fmt: skip
        await pilot.app.screen.show_trainer_facts(manifest, sidecar)
        await pilot.pause(0.2)

    assert snap_compare(recorded_app(), run_before=open_detail, terminal_size=(80, 24))


def test_vault_empty_says_when_dio_saves(snap_compare):
    from msgspec.structs import replace

    from realm.protocol import ConfigField, VaultState

    app = recorded_app()
    config = (*app.mirror.state.config, ConfigField(key="train.checkpoint_every", value="200"))
    app.mirror.state = replace(app.mirror.state, vault=VaultState(), config=config)
    assert snap_compare(app, press=["5", "wait:300"], terminal_size=(80, 24))


def test_shop(snap_compare):
    from realm.game.hero import hero_stats
    from realm.tui.screens.shop import ShopScreen

    async def open_shop(pilot):
        state = pilot.app.mirror.state
        await pilot.app.push_screen(ShopScreen(hero_stats(state).gold, state.skills.skills, state.skills.active))
        await pilot.pause(0.3)

    assert snap_compare(recorded_app(), run_before=open_shop, terminal_size=(80, 24))


def test_battle_with_a_toast_over_the_log_not_the_chart(snap_compare):
    """The game's worst toast (an error, a failed and a won quest with long names, an achievement)."""
    from .test_notices import news_flood

    async def flood(pilot):
        await pilot.press("2")
        await pilot.pause(0.2)
        news_flood(pilot.app)
        await pilot.pause(0.4)

    assert snap_compare(recorded_app(), run_before=flood, terminal_size=(80, 24))


def test_battle_damage_number_and_a_measured_victory(snap_compare):
    """Animations off: the newest tick's loss change stands beside the chart under its header; the
    victory says the trainer's measures (held-out loss before and after, rows, steps)."""
    from realm.protocol import QuestFinished, QuestResult
    from realm.state import apply

    app = recorded_app()
    app.animation_level = "none"
    result = QuestResult(
        name="idle-bin-L1-00000136.jsonl", outcome="done", steps=14, time=demo.T0 + 150, source="idle",
        title="BIN L1 · 2-4-bit add", examples_trained=224, val_loss_start=1.4212, val_loss_end=0.6194,
    )  # fmt: skip
    app.mirror.state = apply(app.mirror.state, QuestFinished(result=result), demo.T0 + 150)

    async def hit(pilot):
        await pilot.press("2")
        await pilot.pause(0.2)
        pilot.app.screen.effect_hits([0.5123, 0.4871], before=0.5302)
        await pilot.pause(0.3)

    assert snap_compare(app, run_before=hit, terminal_size=(80, 24))


def test_notices_filtered_to_warnings(snap_compare):
    assert snap_compare(recorded_app(), press=["0", "wait:200", "f", "wait:300"], terminal_size=(80, 24))
