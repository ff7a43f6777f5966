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


def recorded_app(oracle: bool = True) -> RealmApp:
    app = RealmApp(
        "ipc:///realm-home/run/trainer-pub", "ipc:///realm-home/run/trainer-ctl",
        follow_bus=False, clock=lambda: demo.T0 + 200, oracles=[ORACLE] if oracle else [],
    )  # fmt: skip
    demo.fill(app.mirror)
    for link in app.oracles.links:
        demo.fill(link.mirror, demo.oracle_session())
    return app


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


def test_battle_with_a_toast_over_the_log_not_the_chart(snap_compare):
    """The game's worst toast (an error, a failed and a won quest with long names, an achievement)."""
    from .test_notices import news_flood

    async def flood(pilot):
        await pilot.press("2")
        await pilot.pause(0.2)
        news_flood(pilot.app)
        await pilot.pause(0.4)

    assert snap_compare(recorded_app(), run_before=flood, terminal_size=(80, 24))


def test_notices_filtered_to_warnings(snap_compare):
    assert snap_compare(recorded_app(), press=["0", "wait:200", "f", "wait:300"], terminal_size=(80, 24))
