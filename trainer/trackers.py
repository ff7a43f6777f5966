"""Experiment trackers (``train.log_with``): accelerate's tracker classes, fed every record of the metrics log.

``MetricsLog.write`` is the one place a metric is recorded; it hands each record to ``Trackers.log``
too, so TensorBoard, W&B and the others see exactly what ``logs/metrics.jsonl`` holds. A tracker's
numbers are named ``<kind>/<field>`` (``train/loss``, ``val/val_loss``, ``suite/skills/bin``,
``skill/<id>/accuracy``, ``level_up/<id>/level``) at the record's optimizer step. Trackers that keep
files write them under ``HOME/logs/<tracker>/<run>``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from realm.errors import SetupError

log = logging.getLogger("realm.trainer")

INSTALL = "pip install -e '.[trackers]'"
PROJECT = "realm-of-training"  # the project of trackers that keep no local folder (W&B, Comet, MLflow ...)
PREFIX = {"step": "train"}  # a record's kind -> its numbers' prefix, where they differ
NOT_PLOTTED = {"kind", "step", "time", "quest", "version", "skill"}


def check_trackers(names: Iterable[str]) -> None:
    """Every name in ``train.log_with`` is a tracker accelerate knows and whose package is installed;
    else one ``SetupError`` line saying which and what to install."""
    names = list(names)
    if not names:
        return
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers
    from accelerate.utils import LoggerType

    known = sorted(LOGGER_TYPE_TO_CLASS)
    available = {str(tracker) for tracker in get_available_trackers()}
    for name in names:
        if name not in LOGGER_TYPE_TO_CLASS:
            raise SetupError(f"train.log_with: no tracker {name!r}; known: {', '.join(known)}")
        if name in LoggerType.list() and name not in available:  # a registered custom class is its own package
            hint = INSTALL if name == "tensorboard" else f"pip install {name}"
            raise SetupError(f"train.log_with: {name} is not installed; `{hint}` installs it, or drop it from the list")


def run_name(run_id: str) -> str:
    """One name per trainer start, sorting by time: ``20261206-203105-<run id>``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{run_id}"


def numbers(record: dict) -> dict[str, float]:
    """A metrics-log record's plottable numbers, named ``<kind>/<field>``; pairs (a suite's
    ``skills``, ``files``) become ``<kind>/<field>/<name>``. Text, None and booleans are left out."""
    prefix = PREFIX.get(record.get("kind"), record.get("kind", "metrics"))
    if isinstance(record.get("skill"), str):  # one curve per skill: skill/bin/accuracy, level_up/bin/level
        prefix = f"{prefix}/{record['skill']}"
    out: dict[str, float] = {}
    for key, value in record.items():
        if key in NOT_PLOTTED:
            continue
        if _is_number(value):
            out[f"{prefix}/{key}"] = float(value)
        elif isinstance(value, list | tuple):
            for pair in value:
                if isinstance(pair, list | tuple) and len(pair) == 2 and _is_number(pair[1]):
                    out[f"{prefix}/{key}/{pair[0]}"] = float(pair[1])
    return out


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Trackers:
    """The started trackers of one run. A tracker that raises while logging is reported once
    through ``on_failure(text)`` and tried again at the next record: training never stops for it."""

    def __init__(self, names: Iterable[str], logs: Path, run: str, on_failure: Callable[[str], None]) -> None:
        from accelerate.tracking import LOGGER_TYPE_TO_CLASS

        self.run = run
        self.on_failure = on_failure
        self.trackers = []
        self._failed: set[str] = set()
        for name in dict.fromkeys(names):
            kind = LOGGER_TYPE_TO_CLASS[name]
            try:
                tracker = kind(run, logs / name) if kind.requires_logging_directory else kind(PROJECT)
                tracker.start()
            except Exception as exc:  # an account, a folder: the start fails before any step is trained
                self.close()
                raise SetupError(f"train.log_with: tracker {name} could not start: {exc}") from exc
            self.trackers.append(tracker)
            log.info("tracker %s: run %s", name, run)

    def log(self, record: dict) -> None:
        values, step = numbers(record), record.get("step")
        if not values:
            return
        for tracker in self.trackers:
            try:
                tracker.log(values, step=step if isinstance(step, int) else None)
            except Exception as exc:  # a tracker's disk, network or account: its problem, never training's
                self._fail(tracker.name, "logging", exc)

    def close(self) -> None:
        for tracker in self.trackers:
            try:
                tracker.finish()
            except Exception as exc:
                self._fail(tracker.name, "closing", exc)
        self.trackers = []

    def _fail(self, name: str, doing: str, exc: Exception) -> None:
        if name in self._failed:
            return
        self._failed.add(name)
        log.warning("tracker %s failed %s", name, doing, exc_info=exc)
        self.on_failure(
            f"tracker {name} failed {doing} ({exc}); training goes on, and its later failures are not reported"
        )


class NoTrackers:
    """``train.log_with: []``: nothing to log to."""

    def log(self, record: dict) -> None:
        pass

    def close(self) -> None:
        pass
