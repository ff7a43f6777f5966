"""The top line of every screen: connected or waiting, run id, read-only."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from realm.tui.view import RealmView


def ago(seconds: float) -> str:
    """'just now', '3 min ago', '2 h ago', '4 days ago'."""
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


class StatusBar(Static):
    def __init__(self, screen_name: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.screen_name = screen_name

    def show(self, view: RealmView) -> None:
        self.set_class(not view.connected, "-waiting")
        self.update(status_line(self.screen_name, view), layout=False)  # one fixed row


def status_line(screen_name: str, view: RealmView) -> Content:
    parts: list[str | tuple[str, str]] = [(f" {screen_name} ", "reverse bold"), " "]
    if view.connected:
        parts += [
            ("● ", "bold"),
            "connected · run ",
            (view.state.run, "bold"),
            f" · {view.control_endpoint}",
        ]
    elif view.last_known_at is not None:
        parts += [
            ("◌ last known", "bold"),
            f" · {ago(view.now - view.last_known_at)} (from disk, not live) · waiting for trainer...",
        ]
    else:
        lost = "connection lost · " if view.ever_connected else ""
        parts += [("◌ ", "bold"), f"{lost}waiting for trainer at {view.control_endpoint}..."]
    if view.readonly:
        parts.append((" · read-only", "bold"))
    return Content.assemble(*parts)
