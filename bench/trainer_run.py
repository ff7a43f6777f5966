"""Shared by the learning benchmarks: run the real trainer headless for a while, and read when it began."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_trainer(home: Path, config: Path | None, minutes: float, max_steps: int | None = None) -> float:
    """``realm trainer`` from scratch in ``home`` for ``minutes`` (or until ``max_steps``), stopped with SIGTERM;
    the wall seconds it ran."""
    command = [sys.executable, "-m", "realm.cli", "trainer", "--home", str(home)]
    if config:
        command += ["--config", str(config)]
    if max_steps:
        command += ["--max-steps", str(max_steps)]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        process.wait(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=300)
    return time.monotonic() - started


def training_start(steps: list[dict]) -> float:
    """The wall-clock time the first optimizer step began (metrics ``step`` records, oldest first)."""
    return steps[0]["time"] - steps[0].get("seconds", 0.0) if steps else 0.0
