"""Skill generators on one core: BIN samples/s (and SY puzzles/s when realm/skills/sy.py exists).

    python bench/skills.py [--seconds S]

Each generator runs alone in this process (torch is never imported), pinned to one core
where the OS allows it. Three numbers per skill, side by side:

* raw: ``family.generate`` alone, at a mid level;
* checked: what idle quests really pay per sample: the eval-overlap check (canonical key
  against every frozen eval item) and the self-grade, via ``curriculum.Drawer``;
* per level: the checked rate at the lowest, a middle and the highest level.

The baseline a user would otherwise have is the goal in the issue: >= 1000 BIN samples/s and
>= 50 SY puzzles/s; the ratio against it is printed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOALS = {"bin": 1000.0, "sy": 50.0}


def rate(fn, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(20):
            fn()
        count += 20
    return count / elapsed


def bench_skill(skill, seconds: float) -> None:
    from realm.skills import curriculum

    mid = max(1, skill.max_level // 2)
    params = curriculum.eval_params(skill, mid)
    rng = random.Random(0)
    family = skill.family
    raw = rate(lambda: family.generate(params, rng), seconds)
    drawer = curriculum.Drawer(skill)
    goal = GOALS.get(skill.generator, 0.0)
    print(f"{skill.id}: raw generate at L{mid}: {raw:,.0f}/s")
    for level in sorted({1, mid, skill.max_level}):
        lrng = random.Random(level)
        lparams = curriculum.eval_params(skill, level)
        checked = rate(lambda: drawer.draw(level, lrng, lparams), seconds)
        ratio = f"  ({checked / goal:.1f}x the {goal:,.0f}/s goal)" if goal else ""
        print(f"{skill.id}: checked draw (eval exclusion + self-grade) at L{level}: {checked:,.0f}/s{ratio}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per measurement")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from realm.skills.registry import load_skills

    skills = load_skills()
    print(f"one core; {args.seconds:.1f}s per measurement; python {sys.version.split()[0]}")
    for skill_id in ("bin", "sy"):
        if skill_id in skills:
            bench_skill(skills[skill_id], args.seconds)
        elif skill_id == "sy":
            print("sy: configs/skills/sy.yaml not present in this tree; skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
