"""DIO's portrait in half blocks: two pixels a cell, the armour's colour showing his tier."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

# 16 x 16 pixels -> 16 x 8 cells. "." is transparent; "A" is the tier's armour colour.
PIXELS = (
    "......HHHH......",
    "....HHHHHHHH....",
    "...HHHHHHHHHH...",
    "...HSSSSSSSSH...",
    "...SSESSSSESS...",
    "...SSSSSSSSSS...",
    "....SSSMMSSS....",
    ".....SSSSSS.....",
    "...AAAAAAAAAA...",
    "..AAAAAGGAAAAA..",
    ".SAAAAAGGAAAAAS.",
    ".SAAAAAAAAAAAAS.",
    ".S.BBBBBBBBBB.S.",
    "...LLLL..LLLL...",
    "...LLLL..LLLL...",
    "...KKKK..KKKK...",
)
COLOURS = {
    "H": "#e8c547",  # hair
    "S": "#f1c27d",  # skin
    "E": "#2b2424",  # eyes
    "M": "#b5523b",  # mouth
    "G": "#d04040",  # gem
    "B": "#6b4f2a",  # belt
    "L": "#3a4a6b",  # legs
    "K": "#4a3426",  # boots
}
# (first level of the tier, armour colour): leather, iron, gold, mythril
TIERS = ((1, "#8b5a2b"), (5, "#9aa4ad"), (10, "#d4af37"), (20, "#7fd4ff"))


def tier(level: int) -> int:
    return max(i for i, (first, _) in enumerate(TIERS) if level >= first)


def portrait(tier_index: int) -> Content:
    colours = {**COLOURS, "A": TIERS[tier_index][1]}
    rows = [
        Content.assemble(*(_cell(colours.get(top), colours.get(bottom)) for top, bottom in zip(upper, lower)))
        for upper, lower in zip(PIXELS[0::2], PIXELS[1::2])
    ]
    return Content("\n").join(rows)


def _cell(top: str | None, bottom: str | None) -> tuple[str, str]:
    if top and bottom:
        return "▀", f"{top} on {bottom}"
    if top:
        return "▀", top
    if bottom:
        return "▄", bottom
    return " ", ""


class Portrait(Static):
    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(portrait(0), id=id, classes=classes)
        self._tier = 0

    def show_level(self, level: int) -> None:
        new_tier = tier(level)
        if new_tier != self._tier:
            self._tier = new_tier
            self.update(portrait(new_tier), layout=False)
