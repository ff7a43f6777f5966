"""The 'while you were away' modal: what the trainer's journal says happened since last time."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from realm.tui.actions import bindings_for
from realm.tui.away_summary import AwaySummary
from realm.tui.format import clock


class AwayScreen(ModalScreen[None]):
    BINDINGS = bindings_for("away")

    def __init__(self, summary: AwaySummary) -> None:
        super().__init__()
        self.summary = summary

    def compose(self) -> ComposeResult:
        s = self.summary
        with Vertical(id="away-box"):
            yield Static(Content.styled("While you were away", "bold $accent"), id="away-title")
            yield Static(Content(f"since {clock(s.since)}: {s.headline()}"), id="away-headline")
            lines = [Content.assemble(("· ", "$text-muted"), line) for line in s.lines]
            if s.more:
                lines.insert(0, Content.styled("… earlier entries left out", "$text-muted"))
            yield Static(Content("\n").join(lines), id="away-lines")
            yield Static(Content.styled("any key closes this", "$text-muted"), id="away-hint")

    def on_key(self, event: events.Key) -> None:
        """The news never swallows a key: any other key closes it and does what it would have done."""
        if event.key in ("escape", "enter"):
            return
        event.stop()
        event.prevent_default()
        self.dismiss()
        self.app.simulate_key(event.key)

    def on_mount(self) -> None:
        self.query_one("#away-box").border_title = "News from the realm"
