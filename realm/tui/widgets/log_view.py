"""The newest lines of the realm's log, as many as fit, one row each (never wrapped)."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from realm.protocol import LogLine
from realm.tui.format import bin_text, clock

_LEVEL_STYLE = {"info": "", "warning": "$warning", "error": "bold $error"}
EMPTY_HINT = "No news from the realm yet."


class LogView(Widget):
    DEFAULT_CSS = """
    LogView { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: tuple[LogLine, ...] = ()
        self._glyphs = "ascii"

    def set_lines(self, lines: tuple[LogLine, ...], glyphs: str = "ascii") -> None:
        """``glyphs``: config ``tui.bin_glyphs``, for log lines that quote BIN prompts."""
        if lines is not self._lines or glyphs != self._glyphs:
            self._lines, self._glyphs = lines, glyphs
            self.refresh()

    def render(self) -> Content:
        width, height = self.content_size
        if not self._lines:
            return Content.styled(EMPTY_HINT, "italic $text-muted")
        rows = [log_row(line, self._glyphs).truncate(width, ellipsis=True) for line in self._lines[-max(height, 1) :]]
        return Content("\n").join(rows)


def log_row(line: LogLine, glyphs: str = "ascii") -> Content:
    text = bin_text(line.text, glyphs)
    return Content.assemble((clock(line.time) + " ", "$text-muted"), (text, _LEVEL_STYLE[line.level]))
