"""What every realm screen shares: the status line on top, the key footer below, and the hooks
the app calls on the active screen (each a no-op unless a screen has something to do)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Static

from realm.protocol import CheckpointInfo
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
        self.last_view: RealmView | None = None  # what ``show`` last drew (actions read it)

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
        self.last_view = view

    def show_body(self, view: RealmView) -> None:
        pass

    def effect_hits(self, losses: list[float], before: float | None = None) -> None:
        """Training steps landed since the last tick, with these losses; ``before``: the loss
        of the last step before them, when the state held one."""

    def effect_level_up(self, new_level: int) -> None:
        """DIO reached ``new_level`` since the last tick."""

    def selected_checkpoint(self) -> CheckpointInfo | None:
        """The checkpoint this screen has selected (what ``P`` promotes; None: the champion)."""
        return None

    def set_row(self, selector: str, content: Content) -> None:
        """Replace a one-row Static's text; its height is fixed in CSS, so no relayout."""
        self.query_one(selector, Static).update(content, layout=False)

    def why_disabled_here(self, action: str) -> str | None:
        """Why ``action`` cannot run on what this screen has selected (the app's reasons aside)."""
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Screen actions share the app's reasons: a disabled one shows dimmed, with its why."""
        return None if self.app.why_disabled(action) or self.why_disabled_here(action) else True


def missing_panel(what: str, detail: str = "") -> Content:
    """The honest panel for a part of a screen whose data is not on the bus yet."""
    lines = [Content.assemble(("not available yet: ", "bold $warning"), what)]
    if detail:
        lines.append(Content.styled(detail, "$text-muted"))
    return Content("\n").join(lines)
