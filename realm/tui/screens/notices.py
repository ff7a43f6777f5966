"""Notices: the game's housekeeping (file names, duplicates kept, retries, saves, the oracle's
loads), kept out of the story but never dropped; ``f`` filters all / warnings / errors.

Which event is housekeeping is ``realm.game.narration.policy``'s call; the reducer keeps
those lines in ``state.notices``. Lines wrap here: a notice is read whole, not cut at 80 columns.
"""

from __future__ import annotations

import textwrap

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.geometry import Size
from textual.widget import Widget

from realm.protocol import LogLine
from realm.tui.actions import bindings_for
from realm.tui.format import bin_text, clock
from realm.tui.screens.base import RealmScreen
from realm.tui.view import RealmView

FILTERS = ("all", "warnings", "errors")
_SHOWN = {"all": ("info", "warning", "error"), "warnings": ("warning", "error"), "errors": ("error",)}
_LEVEL_STYLE = {"info": "", "warning": "$warning", "error": "bold $error"}
INDENT = len("00:00:00 warning ")
EMPTY = "No housekeeping notices yet: the story is on the Hero and Battle screens."


def filtered(notices: tuple[LogLine, ...], by: str) -> tuple[LogLine, ...]:
    """``warnings``: warnings and errors; ``errors``: errors only."""
    return tuple(n for n in notices if n.level in _SHOWN[by])


def notice_rows(notices: tuple[LogLine, ...], width: int, glyphs: str = "ascii") -> list[Content]:
    """Newest first: time and level, then the text wrapped under itself (never cut, never at column 0)."""
    if not notices:
        return [Content.styled(EMPTY, "italic $text-muted")]
    rows = []
    room = max(width - INDENT, 20)
    for n in reversed(notices):
        style = _LEVEL_STYLE[n.level]
        pieces = textwrap.wrap(bin_text(n.text, glyphs), room, break_on_hyphens=False) or [""]
        head = Content.assemble((clock(n.time) + " ", "$text-muted"), (f"{n.level:<7} ", style or "$text-muted"))
        rows.append(Content.assemble(head, (pieces[0], style)))
        rows += [Content.assemble(" " * INDENT, (piece, style)) for piece in pieces[1:]]
    return rows


class NoticesView(Widget):
    """The notices, wrapped to the widget's width; as tall as they are (its parent scrolls)."""

    DEFAULT_CSS = "NoticesView { height: auto; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.notices: tuple[LogLine, ...] = ()
        self.glyphs = "ascii"

    def set_notices(self, notices: tuple[LogLine, ...], glyphs: str) -> None:
        if notices != self.notices or glyphs != self.glyphs:
            self.notices, self.glyphs = notices, glyphs
            self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(notice_rows(self.notices, width, self.glyphs))

    def render(self) -> Content:
        return Content("\n").join(notice_rows(self.notices, self.content_size.width, self.glyphs))


class NoticesScreen(RealmScreen):
    SCREEN_NAME = "0 Notices"
    BINDINGS = bindings_for("notices")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.filter = FILTERS[0]

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="notices-box"):
            yield NoticesView(id="notices-text")

    def show_body(self, view: RealmView) -> None:
        notices = view.state.notices
        shown = filtered(notices, self.filter)
        hidden = len(notices) - len(shown)
        box = self.query_one("#notices-box")
        box.border_title = f"Notices · f: {self.filter}" + (f" ({hidden} hidden)" if hidden else "")
        self.query_one(NoticesView).set_notices(shown, self.app.bin_glyphs)

    def action_cycle_filter(self) -> None:
        self.filter = FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)]
        if self.last_view is not None:
            self.show(self.last_view)
