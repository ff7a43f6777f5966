"""SY benchmark: Word Weaving puzzles per second by level band, on one core.

    python bench/sy.py [--per-level N] [--seconds S]

Each puzzle is drawn, hinted, and proved unique by the solver (redrawn when it is not), as
the trainer's idle quests and evals draw them. The lexicon load is timed apart. The goal in
the issue is >= 50 puzzles/s; the ratio column is the band's rate over that goal. Rates are
given per CPU second of this process (what one core delivers) and per wall second (lower
when other processes share the core).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from realm.skills import sy  # noqa: E402

GOAL = 50.0
BANDS = [(1, 10), (11, 20), (21, 30), (31, 40), (41, 50)]


def bench_band(lo: int, hi: int, per_level: int) -> tuple[float, float, float]:
    """(puzzles per CPU second, per wall second, mean draws per puzzle) over levels lo..hi."""
    params = [sy.level_params(level) for level in range(lo, hi + 1)]
    count, draws = 0, 0
    cpu, wall = time.process_time(), time.perf_counter()
    for p in params:
        for seed in range(per_level):
            sample = sy.FAMILY.generate(p, random.Random(seed))
            count += 1
            draws += sample.meta["attempts"]
    return count / (time.process_time() - cpu), count / (time.perf_counter() - wall), draws / count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-level", type=int, default=10, help="puzzles per level (seeds 0..N-1)")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    start = time.perf_counter()
    lex = sy.lexicon()
    print(
        f"lexicon: {len(lex.entries)} entries, {len(lex.trie)} trie nodes, loaded in {time.perf_counter() - start:.2f}s"
    )
    print(f"{'levels':>8} {'per CPU s':>10} {'per wall s':>11} {'draws/puzzle':>13} {'x goal (50/s, CPU)':>19}")
    total = []
    for lo, hi in BANDS:
        rate, wall_rate, draws = bench_band(lo, hi, args.per_level)
        total.append(rate)
        print(f"{lo:>3}-{hi:<4} {rate:>10.1f} {wall_rate:>11.1f} {draws:>13.2f} {rate / GOAL:>19.2f}")
    harmonic = len(total) / sum(1 / r for r in total)  # puzzles/s over an equal number per band
    print(f"{'all':>8} {harmonic:>10.1f} {'':>11} {'':>13} {harmonic / GOAL:>19.2f}")


if __name__ == "__main__":
    main()
