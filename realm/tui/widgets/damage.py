"""Damage numbers that float up the side of the battle: one per repaint tick with new steps.

Each number is what the tick's steps did to the training loss: ``-0.031`` (the loss fell by
that from the last step before them to the newest, a hit) or ``+0.012`` (it rose). A dim
header says so. Numbers rise one row a tick and fade; with ``TEXTUAL_ANIMATIONS=none`` only
the newest number is shown, standing still.
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

RISE_S = 0.12
HEADER = "loss change"
_FADE = {
    True: ("bold $success", "$success", "$success 70%", "$success 45%", "$text-muted"),  # the loss fell
    False: ("bold $error", "$error", "$error 70%", "$error 45%", "$text-muted"),  # it rose
}


def loss_change(before: float | None, losses: list[float]) -> float | None:
    """How much the loss moved over a tick's ``losses``, from ``before`` (the last loss before
    them; without it, the tick's first): negative when it fell. None with nothing to compare."""
    start = before if before is not None else (losses[0] if len(losses) > 1 else None)
    return None if start is None or not losses else losses[-1] - start


def change_text(change: float) -> str:
    return f"{change:+.3f}" if abs(change) < 100 else f"{change:+.0f}"


class DamageFloats(Widget):
    DEFAULT_CSS = """
    DamageFloats { width: 12; height: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.floats: list[list] = []  # [text, age in rises, whether the loss fell]
        self._timer = None

    @property
    def animated(self) -> bool:
        return self.app.animation_level != "none"

    def hit(self, change: float) -> None:
        """A tick's loss change (``loss_change``) floats up."""
        item = [change_text(change), 0, change < 0]
        if not self.animated:
            self.floats = [item]
            self.refresh()
            return
        self.floats.append(item)
        del self.floats[: -max(self._rows(), 1)]
        if self._timer is None:
            self._timer = self.set_interval(RISE_S, self._rise)
        else:
            self._timer.resume()
        self.refresh()

    def _rows(self) -> int:
        """The rows numbers float in: all but the header's."""
        return max(self.content_size.height - 1, 1)

    def _rise(self) -> None:
        height = self._rows()
        for item in self.floats:
            item[1] += 1
        self.floats = [item for item in self.floats if item[1] < height]
        if not self.floats and self._timer is not None:
            self._timer.pause()
        self.refresh()

    def render(self) -> Content:
        width, height = self.content_size.width, self._rows()
        rows = [Content.styled(HEADER.rjust(width), "$text-muted")] + [Content("")] * height
        for text, age, fell in self.floats:
            row = height - age
            if 1 <= row <= height:
                fade = _FADE[fell]
                rows[row] = Content.styled(text.rjust(width), fade[min(age, len(fade) - 1)])
        return Content("\n").join(rows)
