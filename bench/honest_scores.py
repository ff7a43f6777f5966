"""What the evaluation suite costs and whether DEF tracks real skill, on a real default run.

    python bench/honest_scores.py [--minutes M] [--home DIR] [--config FILE] [--csv FILE]

Runs the real trainer from scratch (``realm trainer``, headless, the defaults unless a config
is given) for M minutes, stops it with SIGTERM, then reads its metrics log and ledger. It
prints the share of wall time spent scoring checkpoints on the suite, and per checkpoint: the
minute, step, suite loss and DEF, suite accuracy, the active skill's frozen-set accuracy and
level from the nearest eval round before it, and the champion at that moment. A CSV of the
same rows goes to ``--csv``. Report ``uptime`` with the figures: the machine's load moves them.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.trainer_run import run_trainer, training_start  # noqa: E402
from realm.config import ChampionConfig, load_config  # noqa: E402
from realm.protocol import SuiteScore  # noqa: E402
from realm.skills.history import SkillStore  # noqa: E402
from realm.vault.champion import suite_score  # noqa: E402
from trainer.telemetry import read_metrics  # noqa: E402


def _options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--home", type=Path, default=None, help="a fresh data root (default: a temp folder)")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--csv", type=Path, default=None)
    return parser.parse_args(argv)


def rows(home: Path, weights: ChampionConfig, skill: str) -> tuple[list[dict], float, float]:
    records = read_metrics(home / "logs" / "metrics.jsonl")
    steps = [r for r in records if r["kind"] == "step"]
    suites = [r for r in records if r["kind"] == "suite"]
    start = training_start(steps)
    store = SkillStore(home / "vault" / "realm.db")
    try:
        rounds = [r for r in store.history(skill, limit=100_000) if r.at_level == r.level]
    finally:
        store.close()
    best: tuple[float, int] | None = None
    out = []
    for record in suites:
        score = SuiteScore(version=record["version"], loss=record["loss"], accuracy=record["accuracy"])
        value = suite_score(score, weights)
        if best is None or value > best[0]:
            best = (value, record["step"])
        before = [r for r in rounds if r.step <= record["step"]]
        out.append(
            {
                "minute": round((record["time"] - start) / 60, 2),
                "step": record["step"],
                "suite_loss": round(score.loss, 4) if score.loss is not None else "",
                "DEF": round(1 / score.loss, 3) if score.loss else "",
                "suite_acc": round(score.accuracy, 3) if score.accuracy is not None else "",
                f"{skill}_level": before[-1].level if before else 1,
                f"{skill}_frozen_acc": round(before[-1].accuracy, 2) if before else "",
                "champion": best[1],
                "scoring_s": round(record["seconds"], 2),
            }
        )
    wall = (steps[-1]["time"] - start) if steps else 0.0
    return out, sum(r["seconds"] for r in suites), wall


def main(argv=None) -> int:
    options = _options(argv)
    home = options.home or Path(tempfile.mkdtemp(prefix="realm-honest-")) / "home"
    config = load_config(options.config)
    print(f"training from scratch in {home} for {options.minutes:g} min; load before: {os.getloadavg()[0]:.2f}")
    seconds = run_trainer(home, options.config, options.minutes)
    skill = next(iter(config.skills.weights()), "bin")  # the active skill: the mix's first
    table, scoring, wall = rows(home, config.champion, skill)
    if not table:
        print("no checkpoint was scored: nothing to report")
        return 1
    print(
        f"ran {seconds / 60:.1f} min, load after {os.getloadavg()[0]:.2f}; "
        f"suite scoring took {scoring:.1f} s of {wall:.0f} s training wall time = {scoring / max(wall, 1e-9):.1%}"
    )
    columns = list(table[0])
    print("  ".join(f"{c:>10}" for c in columns))
    for row in table:
        print("  ".join(f"{row[c]!s:>10}" for c in columns))
    if options.csv:
        with open(options.csv, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(table)
        print(f"wrote {options.csv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
