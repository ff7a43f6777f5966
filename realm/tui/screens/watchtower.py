"""The Watchtower: the trainer and oracle nodes, heartbeats, the newest event's age and sequence, reconnects,
the trainer's and the oracles' GPUs; the raw log.

``watchtower_model`` reads the state, the link stats and what each oracle node publishes on
its own bus (tokens/s, sessions, GPU use via pynvml, or "no NVIDIA GPU"). The data root's
disk is not reported on the bus; the screen says so (``realm doctor`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static

from realm.protocol import OracleState
from realm.state import every_line
from realm.tui import format as fmt
from realm.tui.oracles import OracleView
from realm.tui.screens.base import RealmScreen
from realm.tui.screens.battle import trainer_gpu_rows
from realm.tui.screens.oracle import gpu_text, serving_text
from realm.tui.view import RealmView
from realm.tui.widgets.log_view import LogView

DISK = "not on the bus: `realm doctor`"
NODE_LABEL = 9  # the node panels share a row, so their labels are narrow


@dataclass(frozen=True)
class WatchtowerModel:
    trainer: tuple[tuple[str, str], ...]
    link: tuple[tuple[str, str], ...]
    oracles: tuple[tuple[str, str], ...]


def watchtower_model(view: RealmView) -> WatchtowerModel:
    t = view.state.trainer
    if t is None:
        trainer = (("trainer", "not seen yet"),)
    else:
        uptime = fmt.duration(max(view.now - t.started, 0.0)) if view.now else fmt.MISSING
        trainer = (
            ("model", t.model),
            ("device", f"{t.device} · {fmt.params(t.parameters)} params"),
            ("pid · up", f"{t.pid} · {uptime}"),
            ("battle", view.state.battle.status),
            *trainer_gpu_rows(view.state),
            ("disk", DISK),
        )
    link = view.link
    links = (
        ("endpoint", view.control_endpoint),
        ("status", "connected" if view.connected else "waiting"),
        ("heard", fmt.ago(link.heard_s_ago)),
        ("last event", fmt.ago(link.lag_s)),
        ("seq · run", f"{link.seq:,} · {view.state.run or fmt.MISSING}"),
        ("reconnects", f"{link.reconnects} · bad messages {link.bad_messages}"),
    )
    oracles = tuple(pair for oracle in view.oracles for pair in oracle_rows(oracle))
    return WatchtowerModel(trainer=trainer, link=links, oracles=oracles or (("oracle", "none in the host registry"),))


def oracle_rows(oracle: OracleView) -> tuple[tuple[str, str], ...]:
    """One oracle node: its heartbeat, what it serves, its speed and sessions, its GPU."""
    if oracle.problem or not oracle.connected:
        why = oracle.problem or f"waiting at {oracle.control}"
        return (
            ("node", f"{oracle.name} · {why}"),
            ("hint", "run `realm oracle`" if not oracle.problem else "see `realm doctor`"),
        )
    o = oracle.state
    device = o.info.device if o.info else fmt.MISSING
    return (
        ("node", f"{oracle.name} · {device} · heard {fmt.ago(oracle.heard_s_ago)}"),
        ("serving", _serving(o)),
        ("speed", f"{o.tokens_per_s:,.0f} tok/s · {o.served:,} served"),
        ("queue", f"{o.active} answering · {o.queued} waiting"),
        ("gpu", gpu_text(o)),
    )


def pairs_text(pairs: tuple[tuple[str, str], ...], width: int = 11) -> Content:
    return Content("\n").join(Content.assemble((f"{k:<{width}}", "$text-muted"), v) for k, v in pairs)


class WatchtowerScreen(RealmScreen):
    SCREEN_NAME = "7 Watchtower"
    LIVE_CLOCK = True

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="watch-nodes"):
            yield Static(id="watch-trainer", classes="panel")
            yield Static(id="watch-oracles", classes="panel")
        yield Static(id="watch-link", classes="panel")
        yield LogView(id="watch-log")

    def on_mount(self) -> None:
        self.query_one("#watch-trainer").border_title = "Trainer node"
        self.query_one("#watch-oracles").border_title = "Oracle nodes"
        self.query_one("#watch-link").border_title = "Bus"
        self.query_one("#watch-log").border_title = "Trainer log"

    def show_body(self, view: RealmView) -> None:
        model = watchtower_model(view)
        self.query_one("#watch-trainer", Static).update(pairs_text(model.trainer, NODE_LABEL))
        self.query_one("#watch-oracles", Static).update(pairs_text(model.oracles, NODE_LABEL))
        self.query_one("#watch-link", Static).update(pairs_text(model.link))
        self.query_one(LogView).set_lines(every_line(view.state), self.app.bin_glyphs)


def _serving(o: OracleState) -> str:
    """What the node serves; with nothing served, why not (the start-up load's wait on an empty
    vault is no failure), else a failed load beside what still serves."""
    if o.last_error and o.serving is None and not o.loading:
        return o.last_error
    return serving_text(o) + (f" (failed: {o.last_error})" if o.last_error else "")
