"""Seconds from `realm play` to the first frame, to the trainer connected, and to the first step.

Runs the real command in a pseudo-terminal (80x24), reads what it draws, then quits with `q`
and times the shutdown (which saves a checkpoint). Baseline for scale: the time to import
textual and torch in a bare interpreter, measured in the same run.

    python bench/first_frame.py [--runs 3]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]")


def _spawn(home: str) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm-256color"
        os.execvp(sys.executable, [sys.executable, "-m", "realm.cli", "play", "--home", home])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    return pid, fd


def _read_until(fd: int, patterns: dict[str, bytes], started: float, timeout: float) -> dict[str, float]:
    seen: dict[str, float] = {}
    buffer = b""
    deadline = time.monotonic() + timeout
    while len(seen) < len(patterns) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        buffer = (buffer + ANSI.sub(b"", chunk))[-200_000:]
        for name, pattern in patterns.items():
            if name not in seen and re.search(pattern, buffer):
                seen[name] = time.monotonic() - started
    return seen


def one_run() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home:
        started = time.monotonic()
        pid, fd = _spawn(home)
        marks = _read_until(
            fd,
            {"first frame": rb"Hero", "trainer connected": rb"connected", "first step": rb"XP [1-9]"},
            started,
            timeout=120,
        )
        os.write(fd, b"q")
        quit_at = time.monotonic()
        _drain_until_exit(fd, pid)
        marks["quit to exit (checkpoint saved)"] = time.monotonic() - quit_at
        return marks


def _drain_until_exit(fd: int, pid: int) -> None:
    while True:
        try:
            if select.select([fd], [], [], 0.1)[0]:
                os.read(fd, 65536)
        except OSError:
            pass
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished:
            return


def import_baseline() -> float:
    code = "import textual.app, torch, transformers"
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run() for _ in range(args.runs)]
    baseline = import_baseline()
    print(f"{'milestone':34} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name in runs[0]:
        values = [run[name] for run in runs if name in run]
        print(f"{name:34} {statistics.median(values):9.2f} {min(values):7.2f} {max(values):7.2f}")
    print(f"{'baseline: import textual+torch+hf':34} {baseline:9.2f}")


if __name__ == "__main__":
    main()
