"""DIO's portrait in half blocks: two pixels a cell, one sprite a level tier.

The pixel art is shipped in ``assets/portraits/dio.yaml`` (its header says the format) and
checked here when first drawn: a bad sprite is a ``PortraitError`` naming the tier and row."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml
from textual.content import Content
from textual.widgets import Static

from realm.resources import shipped

SPRITES = shipped("assets/portraits/dio.yaml")
SIZE = 16
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class PortraitError(ValueError):
    """A sprite file that cannot be drawn; the message names the file, the tier and the row."""


@dataclass(frozen=True)
class Tier:
    name: str
    from_level: int
    colours: dict[str, str]  # letter -> colour, "A" being this tier's armour
    pixels: tuple[str, ...]


def load_tiers(path: Path = SPRITES) -> tuple[Tier, ...]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        colours, tiers = dict(raw["colours"]), list(raw["tiers"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise PortraitError(f"{path}: not a sprite file ({type(exc).__name__}: {exc})") from None
    for letter, colour in colours.items():
        if not _COLOUR.match(str(colour)):
            raise PortraitError(f"{path}: colour {letter!r} is {colour!r}; write #rrggbb")
    loaded = tuple(_tier(path, colours, index, entry) for index, entry in enumerate(tiers))
    if (
        not loaded
        or loaded[0].from_level != 1
        or [t.from_level for t in loaded] != sorted({t.from_level for t in loaded})
    ):
        raise PortraitError(f"{path}: tiers must start at level 1 and rise")
    return loaded


def _tier(path: Path, colours: dict[str, str], index: int, entry) -> Tier:
    try:
        name, from_level, armour, pixels = entry["name"], int(entry["from_level"]), entry["armour"], entry["pixels"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PortraitError(f"{path}: tier {index + 1} needs name, from_level, armour and pixels ({exc})") from None
    where = f"{path}: tier {name!r}"
    if not _COLOUR.match(str(armour)):
        raise PortraitError(f"{where}: armour is {armour!r}; write #rrggbb")
    if not isinstance(pixels, list) or len(pixels) != SIZE:
        raise PortraitError(
            f"{where}: {SIZE} rows of pixels, not {len(pixels) if isinstance(pixels, list) else pixels!r}"
        )
    known = set(colours) | {"A", "."}
    for row, line in enumerate(pixels, start=1):
        if not isinstance(line, str) or len(line) != SIZE:
            raise PortraitError(f"{where}, row {row}: {SIZE} pixels, not {line!r}")
        if unknown := sorted(set(line) - known):
            raise PortraitError(f"{where}, row {row}: no colour for {', '.join(unknown)}")
    return Tier(name, from_level, {**colours, "A": armour}, tuple(pixels))


@cache
def tiers() -> tuple[Tier, ...]:
    return load_tiers()


def tier(level: int) -> int:
    return max(i for i, t in enumerate(tiers()) if level >= t.from_level)


def portrait(tier_index: int) -> Content:
    sprite = tiers()[tier_index]
    rows = [
        Content.assemble(
            *(_cell(sprite.colours.get(top), sprite.colours.get(bottom)) for top, bottom in zip(upper, lower))
        )
        for upper, lower in zip(sprite.pixels[0::2], sprite.pixels[1::2])
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
        self.show_tier(tier(level))

    def show_tier(self, new_tier: int) -> None:
        new_tier = min(new_tier, len(tiers()) - 1)
        if new_tier != self._tier:
            self._tier = new_tier
            self.update(portrait(new_tier), layout=False)
