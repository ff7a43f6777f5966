"""Small, pure number formatters shared by the screens (all return short strings)."""

from __future__ import annotations

import time
from difflib import SequenceMatcher

MISSING = "—"

BIN_GLYPHS = ("circled", "ascii")  # config `tui.bin_glyphs`
_CIRCLED_TO_ASCII = str.maketrans({"\u24ea": "0", "\u2460": "1"})  # BIN's ⓪ ① (realm/skills/bin.py)
_ASCII_TO_CIRCLED = str.maketrans({"0": "\u24ea", "1": "\u2460"})


def count(n: int) -> str:
    return f"{n:,}"


def params(n: int) -> str:
    """A parameter count the way model cards say it: 52K, 0.4M, 596M, 1.2B."""
    if n >= 1e9:
        return f"{n / 1e9:.1f}B"
    if n >= 1e5:
        millions = n / 1e6
        return f"{millions:.1f}M" if millions < 10 else f"{millions:.0f}M"
    if n >= 1e3:
        return f"{n / 1e3:.0f}K"
    return str(n)


def loss(value: float | None) -> str:
    return MISSING if value is None else f"{value:.4f}"


def stat(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{value:.0%}"


def sci(value: float) -> str:
    return f"{value:.2e}"


def rate(value: float) -> str:
    """Throughput with a k/M suffix: 950, 12.3k, 4.1M."""
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e4:
        return f"{value / 1e3:.1f}k"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def duration(seconds: float) -> str:
    """A short duration: 45s, 4m05s, 2h13m, 3d04h."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def ago(seconds: float | None) -> str:
    return MISSING if seconds is None else f"{duration(max(seconds, 0.0))} ago"


def bin_text(text: str, glyphs: str) -> str:
    """BIN's circled digits as the player chose to see them: ``ascii`` draws ⓪ ① as 0 1 (fonts without
    U+24EA show boxes, and some terminals draw them two cells wide); ``circled`` leaves what DIO saw."""
    return text.translate(_CIRCLED_TO_ASCII) if glyphs == "ascii" else text


def bin_typed(typed: str, shown_from: str, glyphs: str) -> str:
    """What the player typed, starting from ``shown_from`` drawn with ``bin_text``, in DIO's notation
    again: the characters kept from it are the original ones, and 0 1 typed over its circled digits
    are circled (``bin_text`` maps one character to one, so the drawn text lines up with the original)."""
    shown = bin_text(shown_from, glyphs)
    if shown == shown_from:
        return typed
    parts = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, shown, typed, autojunk=False).get_opcodes():
        kept, new = shown_from[i1:i2], typed[j1:j2]
        if tag == "equal":
            parts.append(kept)
        elif tag == "replace" and not kept.strip("\u24ea\u2460") and not new.strip("01"):
            parts.append(new.translate(_ASCII_TO_CIRCLED))  # a binary digit changed: still a circled one
        else:
            parts.append(new)
    return "".join(parts)


def gpu_name(gpu) -> str:
    """A card's name without the vendor's brand words: 'RTX 4090', 'H100 80GB HBM3'."""
    return gpu.name.removeprefix("NVIDIA ").removeprefix("GeForce ")


def gpu_memory(gpu) -> str:
    return f"{gpu.memory_used_mb / 1024:.1f}/{gpu.memory_total_mb / 1024:.1f} GiB"


def gpu_heat(gpu) -> str:
    """Temperature and power where the card reports them: '64°C 311 W', '' where it reports neither."""
    parts = [f"{gpu.temperature_c:.0f}°C" if gpu.temperature_c is not None else "",
             f"{gpu.power_w:.0f} W" if gpu.power_w is not None else ""]  # fmt: skip
    return " ".join(p for p in parts if p)
