"""The key bar: one widget for the screen's keys, disabled ones dimmed with their reason."""

from __future__ import annotations

import contextlib

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen

from realm.tui.widgets.key_bar import KeyBar

REASON = "the vault is empty"


class Keys(Screen):
    BINDINGS = [Binding("a", "add", "Add"), Binding("d", "delete", "Delete"), Binding("z", "zap", "Zap", show=False)]

    def compose(self) -> ComposeResult:
        yield KeyBar()

    def check_action(self, action, parameters):
        return None if action == "delete" else True

    def action_add(self) -> None:
        self.app.done.append("add")

    def action_delete(self) -> None:
        self.app.done.append("delete")


class KeysApp(App):
    BINDINGS = [Binding("question_mark", "help", "Help"), Binding("q", "quit", "Quit")]

    def __init__(self) -> None:
        super().__init__()
        self.done: list[str] = []

    def on_mount(self) -> None:
        self.push_screen(Keys())

    def why_disabled(self, action):
        return REASON if action == "delete" else None

    def action_help(self) -> None:
        self.done.append("help")


@contextlib.asynccontextmanager
async def showing_keys(width: int):
    """KeysApp at ``width`` columns with its key bar laid out: (app, pilot, bar)."""
    app = KeysApp()
    async with app.run_test(size=(width, 3)) as pilot:
        await pilot.pause()
        yield app, pilot, app.screen.query_one(KeyBar)


async def test_shown_keys_in_order_with_disabled_ones_carrying_their_reason():
    async with showing_keys(80) as (app, pilot, bar):
        text = bar.render().plain
        assert text.startswith(" a Add  d Delete ") and "Zap" not in text
        assert text.rstrip().endswith("palette") and len(text) == 80
        assert [(s.key, s.enabled) for s in bar.spans] == [
            ("a", True),
            ("d", False),
            ("question_mark", True),
            ("q", True),
        ]
        assert bar.span_at(bar.spans[1].start).tooltip == REASON


async def test_a_click_presses_an_enabled_key_and_not_a_disabled_one():
    async with showing_keys(80) as (app, pilot, bar):
        await pilot.click(KeyBar, offset=(bar.spans[1].start + 1, 0))
        await pilot.click(KeyBar, offset=(bar.spans[0].start + 1, 0))
        await pilot.pause()
        assert app.done == ["add"]


async def test_too_narrow_cuts_the_keys_and_keeps_help_at_the_right():
    async with showing_keys(24) as (app, pilot, bar):
        text = bar.render().plain
        assert len(text) == 24 and text.startswith(" a Add ") and text.endswith("? Help ")
        await pilot.click(KeyBar, offset=(22, 0))
        await pilot.pause()
        assert app.done == ["help"]
