"""How fast DIO learns: minutes and steps to each level of each skill in the mix, on a real run from scratch.

    python bench/learning.py [--config FILE] [--minutes M] [--seed N] [--out DIR] [--max-steps S]
                             [--start-level SKILL=N ...]

Runs the real trainer headless (``realm trainer``, the shipped defaults unless a config is given) from
scratch for M minutes with the seed N, stops it, then reads its metrics log and skill store. It writes
``DIR/rounds.csv`` (one row per eval round: minute, step, skill, level, frozen accuracy, probe accuracy,
the probe's accuracy per operation)
and prints a table (skill, level, step, minutes at which the level was reached), a text plot of the
probe and frozen accuracy of the active skill, steps/s and the machine's load at start and end, since
the machine is shared. It is the measure for every change to DIO's learning.

An ``--out`` that already holds a run goes on from where that run stopped (minutes count from its
first step), so one climb can be forked: copy the folder and go on with two versions of the code.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.trainer_run import run_trainer, training_start  # noqa: E402
from realm.config import ConfigError, load_config  # noqa: E402
from realm.skills.history import SkillStore  # noqa: E402
from realm.tui.widgets.loss_chart import render_chart  # noqa: E402
from trainer.telemetry import read_metrics  # noqa: E402

COLUMNS = ("minute", "step", "skill", "level", "frozen_acc", "probe_acc", "probe_by_op")


def _options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None, help="a realm config (default: the shipped defaults)")
    parser.add_argument("--minutes", type=float, default=6.0, help="how long to train (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="train.seed for data order and initialisation (default 0)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps if sooner")
    parser.add_argument(
        "--start-level",
        action="append",
        default=[],
        metavar="SKILL=N",
        help="start SKILL at level N (an untrained DIO there): a wall measured without the climb to it; repeatable",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="where rounds.csv and the run's home go (default: a temp folder)"
    )
    return parser.parse_args(argv)


def seeded_config(config: Path | None, seed: int, out: Path) -> Path:
    """The given config (or none: the defaults) with ``train.seed`` set, written to ``out/config.yaml``."""
    raw = yaml.safe_load(config.read_text(encoding="utf-8")) if config else {}
    raw = raw or {}
    raw.setdefault("train", {})["seed"] = seed
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def eval_rounds(home: Path, skills: list[str], start: float) -> list[dict]:
    """Every eval round of the skills' current level, oldest first, as CSV rows."""
    store = SkillStore(home / "vault" / "realm.db")
    try:
        rounds = [r for skill in skills for r in store.history(skill, limit=1_000_000) if r.level == r.at_level]
    finally:
        store.close()
    rounds.sort(key=lambda r: (r.time, r.skill))
    return [
        {
            "minute": round((r.time - start) / 60, 2),
            "step": r.step,
            "skill": r.skill,
            "level": r.level,
            "frozen_acc": round(r.accuracy, 3),
            "probe_acc": round(r.probe, 3) if r.probe is not None else "",
            "probe_by_op": " ".join(f"{op}:{share:.2f}" for op, share in sorted(r.strata.items())),
        }
        for r in rounds
    ]


def start_levels(specs: list[str], skills: list[str]) -> dict[str, int]:
    """``["bin=7"]`` as ``{"bin": 7}``; a ValueError names a spec that is not SKILL=N of the mix."""
    levels = {}
    for spec in specs:
        skill, _, level = spec.partition("=")
        if skill not in skills or not level.isdigit() or int(level) < 1:
            raise ValueError(f"--start-level {spec!r}: give SKILL=N with a skill of the mix ({', '.join(skills)})")
        levels[skill] = int(level)
    return levels


def level_ups(rounds: list[dict]) -> list[dict]:
    """Per skill, its first round's level at step 0, then each level at the round that earned it: the
    last one at the level below."""
    out, last = [], {}
    for row in rounds:
        before = last.get(row["skill"])
        if before is None:
            out.append({"skill": row["skill"], "level": row["level"], "step": 0, "minute": 0.0})
        elif row["level"] > before["level"]:
            out.append(
                {"skill": row["skill"], "level": row["level"], "step": before["step"], "minute": before["minute"]}
            )
        last[row["skill"]] = row
    return out


def plot(rounds: list[dict], skill: str, width: int = 78, height: int = 12) -> str:
    """The skill's probe accuracy (the bright line) and frozen accuracy over steps, as text."""
    mine = [r for r in rounds if r["skill"] == skill]
    probe = [(r["step"], float(r["probe_acc"])) for r in mine if r["probe_acc"] != ""]
    frozen = [(r["step"], float(r["frozen_acc"])) for r in mine]
    if not probe and not frozen:
        return ""
    return render_chart(probe or frozen, frozen, width, height).plain


def main(argv=None) -> int:
    options = _options(argv)
    out = options.out or Path(tempfile.mkdtemp(prefix="realm-learning-"))
    out.mkdir(parents=True, exist_ok=True)
    home = out / "home"
    try:
        config_path = seeded_config(options.config, options.seed, out)
        config = load_config(config_path)
    except FileNotFoundError:
        print(f"bench/learning.py: {options.config}: config file not found", file=sys.stderr)
        return 2
    except (OSError, yaml.YAMLError, ConfigError) as exc:
        print(f"bench/learning.py: {exc}", file=sys.stderr)
        return 2
    skills = list(config.skills.weights())
    try:
        levels = start_levels(options.start_level, skills)
    except ValueError as exc:
        print(f"bench/learning.py: {exc}", file=sys.stderr)
        return 2
    if levels:
        store = SkillStore(home / "vault" / "realm.db")
        for skill, level in levels.items():
            store.set_level(skill, level, 0)
        store.close()
    load_before = os.getloadavg()
    metrics = home / "logs" / "metrics.jsonl"
    earlier = [r for r in read_metrics(metrics) if r["kind"] == "step"] if metrics.exists() else []
    starting = ", ".join(f"{skill} at L{level}" for skill, level in levels.items()) or (
        f"on from step {earlier[-1]['step']} of the run already in --out" if earlier else "from scratch"
    )
    print(f"training {skills} {starting}, seed {options.seed}, {options.minutes:g} min, in {home}")
    seconds = run_trainer(home, config_path, options.minutes, options.max_steps)
    load_after = os.getloadavg()
    steps = [r for r in read_metrics(metrics) if r["kind"] == "step"] if metrics.exists() else []
    start = training_start(steps)
    rounds = eval_rounds(home, skills, start) if steps else []
    with open(out / "rounds.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rounds)
    ours = steps[len(earlier) :]
    done = ours[-1]["step"] - (earlier[-1]["step"] if earlier else 0) if ours else 0
    wall = ours[-1]["time"] - training_start(ours) if ours else 0.0
    print(
        f"ran {seconds / 60:.1f} min: {done} steps, {done / max(wall, 1e-9):.2f} steps/s; "
        f"load (1 min) at start {load_before[0]:.2f}, at end {load_after[0]:.2f}"
    )
    print(f"{'skill':>8} {'level':>6} {'step':>7} {'minutes':>8}")
    for row in level_ups(rounds):
        print(f"{row['skill']:>8} {row['level']:>6} {row['step']:>7} {row['minute']:>8.2f}")
    if rounds:
        print(f"\n{skills[0]}: probe accuracy (bright) and frozen accuracy by step")
        print(plot(rounds, skills[0]))
    else:
        print("no eval round ran: train longer, or lower skills.eval_every")
    print(f"wrote {out / 'rounds.csv'} ({len(rounds)} rounds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
