"""A one-line progress bar with a label before it and a suffix after, sized to its width.

A fraction of ``None`` shows the label alone (nothing is in progress).
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

_EIGHTHS = " ▏▎▍▌▋▊▉"


class Meter(Widget):
    DEFAULT_CSS = """
    Meter { height: 1; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._value: tuple[float | None, str, str] = (None, "", "")

    def set(self, fraction: float | None, label: str = "", suffix: str = "") -> None:
        value = (None if fraction is None else min(max(fraction, 0.0), 1.0), label, suffix)
        if value != self._value:
            self._value = value
            self.refresh()

    def render(self) -> Content:
        fraction, label, suffix = self._value
        if fraction is None:
            return Content(label + suffix)
        width = max(0, self.content_size.width - len(label) - len(suffix) - 2)
        return Content.assemble(
            label,
            ("▕", "$text-muted"),
            (bar(fraction, width), "$accent on $surface-lighten-1"),
            ("▏", "$text-muted"),
            suffix,
        )


def bar(fraction: float, width: int) -> str:
    """``width`` cells filled to ``fraction`` with eighth-block precision."""
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (_EIGHTHS[part] if part and full < width else "")
    return text.ljust(width)
