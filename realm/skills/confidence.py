"""How far a skill's fresh-probe accuracy can be trusted: the last few rounds' probes pooled, with
a 95 % Wilson score interval, so a plateau reads as a number with a band rather than as rounds
that jump by the probe's step.

Pure arithmetic over eval points (``SkillEvalPoint`` or ``EvalRow``: anything with ``level``,
``probe`` and ``probe_items``); the TUI and the CLI both show it.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol, Sequence

Z95 = 1.959964  # the normal quantile of a two-sided 95 % interval
POOLED_ROUNDS = 3  # the level-up rule's window in the shipped skills


class ProbePoint(Protocol):
    level: int
    probe: float | None
    probe_items: int


class ProbeBand(NamedTuple):
    accuracy: float  # pooled share right
    low: float
    high: float
    items: int  # probe items pooled
    rounds: int  # rounds pooled


def wilson_interval(right: float, items: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``right`` successes in ``items`` trials (``items`` > 0)."""
    share = right / items
    denominator = 1 + z * z / items
    centre = (share + z * z / (2 * items)) / denominator
    half = z * math.sqrt(share * (1 - share) / items + z * z / (4 * items * items)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def probe_band(points: Sequence[ProbePoint], level: int, rounds: int = POOLED_ROUNDS) -> ProbeBand | None:
    """The last ``rounds`` probes at ``level`` pooled; None when no round there kept its probe size."""
    sized = [p for p in points if p.level == level and p.probe is not None and p.probe_items > 0][-rounds:]
    if not sized:
        return None
    items = sum(p.probe_items for p in sized)
    right = sum(round(p.probe * p.probe_items) for p in sized)
    low, high = wilson_interval(right, items)
    return ProbeBand(right / items, low, high, items, len(sized))


def band_text(band: ProbeBand) -> str:
    """``probe 70% (61-77%, 120 items in 3 rounds)``: one line a player can read."""
    rounds = f"{band.rounds} round{'s' if band.rounds != 1 else ''}"
    return f"probe {band.accuracy:.0%} ({100 * band.low:.0f}-{band.high:.0%}, {band.items} items in {rounds})"
