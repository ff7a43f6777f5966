"""SVG snapshots of every screen at 80x24, drawn from a recorded, deterministic event stream.

The recorded session (``realm.tui.demo``) goes through the real reducer into the app's
mirror; the clock and the time zone are fixed, so the pictures only change when the
drawing does. Update them with ``python -m pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the report before committing.
"""

from __future__ import annotations

import os
import time

import pytest

from realm.tui import demo
from realm.tui.app import RealmApp

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def recorded_app() -> RealmApp:
    app = RealmApp(
        "ipc:///realm-home/run/trainer-pub", "ipc:///realm-home/run/trainer-ctl",
        follow_bus=False, clock=lambda: demo.T0 + 200,
    )  # fmt: skip
    demo.fill(app.mirror)
    return app


@pytest.mark.parametrize("key", [str(n) for n in range(1, 10)])
def test_screen(snap_compare, key):
    assert snap_compare(recorded_app(), press=[key, "wait:300"], terminal_size=(80, 24))


def test_armory_confirmation_of_a_critical_key(snap_compare):
    keys = ["8", "wait:200", "down", "down", "e", "wait:200", "end", *["backspace"] * 3, *"128", "enter", "wait:200"]
    assert snap_compare(recorded_app(), press=keys, terminal_size=(80, 24))
