"""A live loss chart in braille: train loss as a line, validation loss as dots.

Each terminal cell holds a 2x4 grid of braille dots, so a 60x10 chart plots 120x40 points.
The chart is redrawn from the (step, loss) history only when that history changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widget import Widget

Series = Sequence[tuple[int, float]]

_BRAILLE = 0x2800
# Bit of the dot at (column, row) inside one braille cell.
_DOT = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
_AXIS_WIDTH = 7  # "12.345" plus the axis line
TRAIN_STYLE = "$accent"
VAL_STYLE = "bold $warning"
WAITING_TEXT = "the chart starts with DIO's first step"


class LossChart(Widget):
    DEFAULT_CSS = """
    LossChart { height: 1fr; min-height: 4; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._train: Series = ()
        self._val: Series = ()

    def set_series(self, train: Series, val: Series) -> None:
        if train is not self._train or val is not self._val:
            self._train, self._val = train, val
            self.refresh()

    def render(self) -> Content:
        width, height = self.content_size
        if not self._train and not self._val:
            return Content.styled(WAITING_TEXT, "italic $text-muted")
        return render_chart(self._train, self._val, width, height)


def render_chart(train: Series, val: Series, width: int, height: int) -> Content:
    """The chart as ``height`` lines of ``width`` cells: y labels, plot, x labels below."""
    plot_w, plot_h = max(width - _AXIS_WIDTH, 1), max(height - 1, 1)
    points = [*train, *val]
    x_range = _padded(min(p[0] for p in points), max(p[0] for p in points), 0.0)
    values = [p[1] for p in points]
    top, clipped = _robust_top(values)
    y_range = _padded(min(values), top, 0.05)
    if min(values) >= 0:  # a loss is never negative, so the axis never labels one
        y_range = (max(y_range[0], 0.0), y_range[1])
    train_grid = _Grid(plot_w, plot_h, x_range, y_range)
    train_grid.line(train)
    val_grid = _Grid(plot_w, plot_h, x_range, y_range)
    val_grid.dots(val)
    rows = [
        Content.assemble(_y_label(row, plot_h, y_range, clipped), *_plot_row(train_grid, val_grid, row))
        for row in range(plot_h)
    ]
    rows.append(Content.styled(_x_labels(x_range, plot_w), "$text-muted"))
    return Content("\n").join(rows[-height:] if height > 0 else rows)


class _Grid:
    """A plot_w x plot_h grid of braille cells, addressed in dots (2 wide, 4 tall per cell)."""

    def __init__(self, cells_w: int, cells_h: int, x_range: tuple[float, float], y_range: tuple[float, float]):
        self.cells_w, self.cells_h = cells_w, cells_h
        self.dots_w, self.dots_h = cells_w * 2, cells_h * 4
        self.x_range, self.y_range = x_range, y_range
        self.bits = [[0] * cells_w for _ in range(cells_h)]

    def to_dot(self, step: float, value: float) -> tuple[int, int]:
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        x = round((step - x0) / (x1 - x0) * (self.dots_w - 1))
        y = round((y1 - value) / (y1 - y0) * (self.dots_h - 1))
        return min(max(x, 0), self.dots_w - 1), min(max(y, 0), self.dots_h - 1)

    def set(self, x: int, y: int) -> None:
        self.bits[y // 4][x // 2] |= _DOT[x % 2][y % 4]

    def dots(self, series: Series) -> None:
        for step, value in series:
            self.set(*self.to_dot(step, value))

    def line(self, series: Series) -> None:
        """Join consecutive points, filling each column's vertical span so no gap shows."""
        previous: tuple[int, int] | None = None
        for step, value in series:
            x, y = self.to_dot(step, value)
            if previous is None:
                self.set(x, y)
            else:
                self._segment(previous, (x, y))
            previous = (x, y)

    def _segment(self, a: tuple[int, int], b: tuple[int, int]) -> None:
        (xa, ya), (xb, yb) = a, b
        if xb < xa:  # the steps went back (a restart from an older checkpoint): no line
            self.set(xb, yb)
            return
        span = max(xb - xa, 1)
        for x in range(xa, xb + 1):
            # the column covers the y values between its two neighbours on the line
            y_from = ya + (yb - ya) * (x - xa) / span
            y_to = ya + (yb - ya) * min(x - xa + 1, span) / span
            for y in range(round(min(y_from, y_to)), round(max(y_from, y_to)) + 1):
                self.set(x, y)


def _plot_row(train: _Grid, val: _Grid, row: int) -> list[tuple[str, str]]:
    """One row of cells as runs of (text, style); a cell with a val dot takes the val colour."""
    runs: list[tuple[str, str]] = []
    for t_bits, v_bits in zip(train.bits[row], val.bits[row]):
        char, style = chr(_BRAILLE + (t_bits | v_bits)), VAL_STYLE if v_bits else TRAIN_STYLE
        if runs and runs[-1][1] == style:
            runs[-1] = (runs[-1][0] + char, style)
        else:
            runs.append((char, style))
    return runs


def _padded(low: float, high: float, margin: float) -> tuple[float, float]:
    if high - low < 1e-12:
        pad = max(abs(high) * 0.1, 0.5)
        return low - pad, high + pad
    pad = (high - low) * margin
    return low - pad, high + pad


def _robust_top(values: list[float]) -> tuple[float, bool]:
    """The axis top and whether spikes above it are clipped.

    One spike (a loss of 14 among losses near 1) would flatten the curve into the bottom row for
    hundreds of steps, so the axis stops a little above the 98th percentile when the maximum is
    far beyond it; clipped points are drawn on the top row and the top label is marked with ↑.
    """
    ordered = sorted(values)
    typical = ordered[min(int(len(ordered) * 0.98), len(ordered) - 1)]
    if len(ordered) >= 20 and ordered[-1] > typical + 2 * max(typical - ordered[0], 1e-9):
        return typical + 0.25 * (typical - ordered[0]), True
    return ordered[-1], False


def _y_label(row: int, rows: int, y_range: tuple[float, float], clipped: bool) -> tuple[str, str]:
    low, high = y_range
    if row == 0:
        return (f"{'↑' + _short(high):>6}┤", "$warning") if clipped else (f"{_short(high):>6}┤", "$text-muted")
    if row == rows - 1:
        return f"{_short(low):>6}┤", "$text-muted"
    return "      │", "$text-muted"


def _x_labels(x_range: tuple[float, float], plot_w: int) -> str:
    first, last = (str(max(round(x), 0)) for x in x_range)
    gap = max(plot_w - len(first) - len(last), 1)
    return " " * (_AXIS_WIDTH - 1) + "└" + (first + " " * gap + last)[:plot_w]


def _short(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.2e}"
