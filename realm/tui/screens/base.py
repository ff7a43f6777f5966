"""What every realm screen shares: the status line on top, the key footer below."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static

from realm.tui.view import RealmView
from realm.tui.widgets.status_bar import StatusBar


class RealmScreen(Screen):
    SCREEN_NAME = "Realm"

    def compose(self) -> ComposeResult:
        yield StatusBar(self.SCREEN_NAME, id="status")
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def show(self, view: RealmView) -> None:
        """Push ``view`` into the widgets (once mounted); called by the app on its repaint tick."""
        self.query_one(StatusBar).show(view)
        self.show_body(view)

    def show_body(self, view: RealmView) -> None:
        pass

    def set_row(self, selector: str, content: Content) -> None:
        """Replace a one-row Static's text; its height is fixed in CSS, so no relayout."""
        self.query_one(selector, Static).update(content, layout=False)
