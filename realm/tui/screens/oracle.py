"""The Oracle: chat with a checkpoint on an inference node, streamed, with stop and copy.

``oracle_model`` reads the state. The oracle worker publishes its state and answers chat on
its OWN endpoints (realm/oracle/worker.py; the CLI finds them through realm/hosts.py), which
this app does not connect to yet, so the chat layout shows disabled and says where to chat
instead (``realm chat``); wiring it means a second mirror on the oracle's PUB, a worker that
streams ``ChatDelta`` into ``ChatLog.append_chunk`` and ``CancelRequest`` on stop.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Input, Static

from realm.tui.screens.base import RealmScreen, missing_panel
from realm.tui.view import RealmView
from realm.tui.widgets.chat_log import ChatLog

MISSING_ORACLE = "chat in the app (the oracle publishes on its own endpoints, which this app does not follow yet)"
MISSING_DETAIL = "Chat with `realm chat`; promote a checkpoint to it from the Vault (P). The vault's checkpoints:"


@dataclass(frozen=True)
class OracleModel:
    available: bool
    missing: str | None
    node: str
    checkpoints: tuple[str, ...]  # what could be picked, newest first


def oracle_model(view: RealmView) -> OracleModel:
    names = tuple(c.name for c in reversed(view.state.vault.checkpoints))
    return OracleModel(available=False, missing=MISSING_ORACLE, node="no oracle node", checkpoints=names)


class OracleScreen(RealmScreen):
    SCREEN_NAME = "6 Oracle"
    # Keys whose requests are not on the bus yet stay disabled (realm.tui.actions says why);
    # their action_ methods arrive with the requests.
    BINDINGS = [
        Binding("ctrl+x", "stop_generation", "Stop", id="oracle.stop"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static(id="oracle-missing", classes="missing")
        yield Static(id="oracle-pick")
        yield ChatLog(id="oracle-chat")
        yield Input(placeholder="ask DIO something (needs an oracle)", id="oracle-input", disabled=True)

    def show_body(self, view: RealmView) -> None:
        model = oracle_model(view)
        missing = self.query_one("#oracle-missing", Static)
        missing.display = model.missing is not None
        if model.missing:
            missing.update(missing_panel(model.missing, MISSING_DETAIL))
        picks = ", ".join(model.checkpoints[:3]) + (" …" if len(model.checkpoints) > 3 else "")
        self.set_row("#oracle-pick", Content.assemble(("node ", "$text-muted"), model.node,
                                                      ("  checkpoints ", "$text-muted"), picks or "none yet"))
        self.query_one("#oracle-input", Input).disabled = not model.available
