"""Small, pure number formatters shared by the screens (all return short strings)."""

from __future__ import annotations

import time

MISSING = "—"


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
