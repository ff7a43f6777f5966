"""Shared by the learning benchmarks: run the real trainer headless for a while, and read when it began."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class _Stopped(Exception):
    """The benchmark itself was told to stop (SIGTERM)."""


def _stop(signum, frame):
    raise _Stopped


def run_trainer(home: Path, config: Path | None, minutes: float, max_steps: int | None = None) -> float:
    """``realm trainer`` in ``home`` (from scratch, or on from what the home holds) for ``minutes`` (or
    until ``max_steps``), stopped with SIGTERM; the wall seconds it ran. A benchmark stopped early (SIGTERM,
    Ctrl-C) stops the trainer the same way and reports what ran, rather than leaving it training.
    The trainer's output goes to ``trainer.log`` beside ``home``; a trainer that fails stops the
    benchmark with the log's last line, rather than leaving a run of 0 steps to explain."""
    command = [sys.executable, "-m", "realm.cli", "trainer", "--home", str(home)]
    if config:
        command += ["--config", str(config)]
    if max_steps:
        command += ["--max-steps", str(max_steps)]
    log = home.parent / "trainer.log"
    started = time.monotonic()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=output, stderr=subprocess.STDOUT
        )
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            with contextlib.suppress(subprocess.TimeoutExpired, _Stopped, KeyboardInterrupt):
                process.wait(timeout=minutes * 60)
        finally:
            signal.signal(signal.SIGTERM, previous)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=300)
    if process.returncode not in (0, -signal.SIGTERM):
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines() or ["(no output)"]
        raise SystemExit(f"the trainer exited with code {process.returncode}: {lines[-1]} (all of it: {log})")
    return time.monotonic() - started


def training_start(steps: list[dict]) -> float:
    """The wall-clock time the first optimizer step began (metrics ``step`` records, oldest first)."""
    return steps[0]["time"] - steps[0].get("seconds", 0.0) if steps else 0.0
