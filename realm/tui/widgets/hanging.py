"""Text whose wrapped lines hang under the first line's text, not at column 0: a key or a
label on the left, its words wrapped in the column beside it (Help's keys and stats)."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

Entry = "Content | tuple[Content, Content]"  # a plain paragraph, or (label, words)


class HangingText(Widget):
    DEFAULT_CSS = """
    HangingText {
        height: auto;
    }
    """

    def __init__(self, indent: int, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.indent = indent  # the label column's width: where wrapped lines start
        self.entries: list = []

    def show(self, entries: list) -> None:
        if entries != self.entries:
            self.entries = entries
            self.refresh(layout=True)

    def lines(self, width: int) -> list[Content]:
        width = max(width, self.indent + 10)
        out: list[Content] = []
        for entry in self.entries:
            if isinstance(entry, Content):
                out += entry.wrap(width)
                continue
            label, words = entry
            wrapped = words.wrap(width - self.indent) or [Content("")]
            pad = Content(" " * self.indent)
            out.append(Content.assemble(label, " " * max(self.indent - label.cell_length, 0), wrapped[0]))
            out += [Content.assemble(pad, line) for line in wrapped[1:]]
        return out

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.lines(width))

    def render(self) -> Content:
        return Content("\n").join(self.lines(self.size.width))

    @property
    def plain(self) -> str:
        """The text as drawn at the current width (tests read it)."""
        return "\n".join(line.plain for line in self.lines(self.size.width or 80))
