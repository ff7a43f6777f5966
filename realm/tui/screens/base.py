"""What every realm screen shares: the status line on top, the key footer below."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Static

from realm.tui.view import RealmView
from realm.tui.widgets.key_bar import KeyBar
from realm.tui.widgets.status_bar import StatusBar


class RealmScreen(Screen):
    SCREEN_NAME = "Realm"
    LIVE_CLOCK = False  # True: repaint each second even without events (ages, heartbeats)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Textual re-parses every stylesheet (2-3 times, ~35 ms each here) the first times it shows
        # a screen whose CSS counter lags the app's. A screen made now is styled at its mount from
        # the current stylesheet and theme, so it is up to date: saying so keeps a screen's first
        # visit from costing 100+ ms. (A theme change after this still bumps the app's counter.)
        self._css_update_count = getattr(self.app, "_css_update_count", -1)

    def compose(self) -> ComposeResult:
        yield StatusBar(self.SCREEN_NAME, id="status")
        yield from self.compose_body()
        yield KeyBar()

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Screen actions share the app's reasons: a disabled one shows dimmed, with its why."""
        why = getattr(self.app, "why_disabled", lambda name: None)(action)
        return None if why else True


def missing_panel(what: str, detail: str = "") -> Content:
    """The honest panel for a part of a screen whose data is not on the bus yet."""
    lines = [Content.assemble(("not available yet: ", "bold $warning"), what)]
    if detail:
        lines.append(Content.styled(detail, "$text-muted"))
    return Content("\n").join(lines)
