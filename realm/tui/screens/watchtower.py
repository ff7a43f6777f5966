"""The Watchtower: the trainer node, heartbeats, bus lag and sequence, reconnects; the raw log.

``watchtower_model`` reads the state and the link stats. The oracle nodes, GPUs and the data
root's disk are not reported on the bus on this branch; the screen says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Static

from realm.tui import format as fmt
from realm.tui.screens.base import RealmScreen, missing_panel
from realm.tui.view import RealmView
from realm.tui.widgets.log_view import LogView

MISSING_NODES = "oracle nodes, GPUs (pynvml) and the data root's disk"
MISSING_DETAIL = "The trainer reports none of these yet; they land with the oracle's node/GPU status."


@dataclass(frozen=True)
class WatchtowerModel:
    trainer: tuple[tuple[str, str], ...]
    link: tuple[tuple[str, str], ...]
    missing: str | None


def watchtower_model(view: RealmView) -> WatchtowerModel:
    t = view.state.trainer
    if t is None:
        trainer = (("trainer", "not seen yet"),)
    else:
        uptime = fmt.duration(max(view.now - t.started, 0.0)) if view.now else fmt.MISSING
        trainer = (
            ("model", f"{t.model} ({fmt.params(t.parameters)} params)"),
            ("device", t.device),
            ("pid · up", f"{t.pid} · {uptime}"),
            ("battle", view.state.battle.status),
        )
    link = view.link
    lag = fmt.MISSING if link.lag_s is None else f"{link.lag_s * 1000:.0f} ms"
    links = (
        ("endpoint", view.control_endpoint),
        ("status", "connected" if view.connected else "waiting"),
        ("heard", fmt.ago(link.heard_s_ago)),
        ("bus lag", f"{lag} (now − newest event's time)"),
        ("seq · run", f"{link.seq:,} · {view.state.run or fmt.MISSING}"),
        ("reconnects", f"{link.reconnects} · bad messages {link.bad_messages}"),
    )
    return WatchtowerModel(trainer=trainer, link=links, missing=MISSING_NODES)


def pairs_text(pairs: tuple[tuple[str, str], ...]) -> Content:
    return Content("\n").join(Content.assemble((f"{k:<11}", "$text-muted"), v) for k, v in pairs)


class WatchtowerScreen(RealmScreen):
    SCREEN_NAME = "7 Watchtower"
    LIVE_CLOCK = True

    def compose_body(self) -> ComposeResult:
        yield Static(id="watch-trainer", classes="panel")
        yield Static(id="watch-link", classes="panel")
        yield Static(id="watch-missing", classes="missing")
        yield LogView(id="watch-log")

    def on_mount(self) -> None:
        self.query_one("#watch-trainer").border_title = "Trainer node"
        self.query_one("#watch-link").border_title = "Bus"
        self.query_one("#watch-log").border_title = "Trainer log"

    def show_body(self, view: RealmView) -> None:
        model = watchtower_model(view)
        self.query_one("#watch-trainer", Static).update(pairs_text(model.trainer))
        self.query_one("#watch-link", Static).update(pairs_text(model.link))
        missing = self.query_one("#watch-missing", Static)
        missing.display = model.missing is not None
        if model.missing:
            missing.update(missing_panel(model.missing, MISSING_DETAIL))
        self.query_one(LogView).set_lines(view.state.log)
