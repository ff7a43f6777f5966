"""Damage numbers that float up the side of the battle: one per repaint tick with new steps.

Each number is the newest step's loss (the damage DIO took). Numbers rise one row a tick and
fade; with ``TEXTUAL_ANIMATIONS=none`` only the newest number is shown, standing still.
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

RISE_S = 0.12
_FADE = ("bold $error", "$error", "$error 70%", "$error 45%", "$text-muted")


class DamageFloats(Widget):
    DEFAULT_CSS = """
    DamageFloats { width: 10; height: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.floats: list[list] = []  # [text, age in rises]
        self._timer = None

    @property
    def animated(self) -> bool:
        return self.app.animation_level != "none"

    def hit(self, loss: float) -> None:
        text = f"-{loss:.3f}" if loss < 100 else f"-{loss:.0f}"
        if not self.animated:
            self.floats = [[text, 0]]
            self.refresh()
            return
        self.floats.append([text, 0])
        del self.floats[: -max(self.content_size.height, 1)]
        if self._timer is None:
            self._timer = self.set_interval(RISE_S, self._rise)
        else:
            self._timer.resume()
        self.refresh()

    def _rise(self) -> None:
        height = max(self.content_size.height, 1)
        for item in self.floats:
            item[1] += 1
        self.floats = [item for item in self.floats if item[1] < height]
        if not self.floats and self._timer is not None:
            self._timer.pause()
        self.refresh()

    def render(self) -> Content:
        height = max(self.content_size.height, 1)
        rows = [Content("")] * height
        for text, age in self.floats:
            row = height - 1 - age
            if 0 <= row < height:
                rows[row] = Content.styled(text.rjust(self.content_size.width), _FADE[min(age, len(_FADE) - 1)])
        return Content("\n").join(rows)
