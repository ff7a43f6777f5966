"""The metrics log on disk: ``logs/metrics.jsonl`` and its rotated files, and the size rule that rotates them.

The trainer appends one JSON line per step (and per validation); past ``max_bytes`` the file is
renamed to ``metrics.jsonl.1`` (older ones shift to ``.2`` ... ``.N``, the oldest beyond ``keep``
is deleted), the same rule Python's ``RotatingFileHandler`` applies to ``trainer.log``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


def rotated_files(path: Path) -> list[Path]:
    """``path`` and its rotated files that exist, oldest first (``.N`` ... ``.1``, then ``path``)."""
    numbered = []
    for sibling in path.parent.glob(path.name + ".*"):
        suffix = sibling.name[len(path.name) + 1 :]
        if suffix.isdigit():
            numbered.append((int(suffix), sibling))
    files = [p for _, p in sorted(numbered, reverse=True)]
    return files + [path] if path.exists() else files


def rotate(path: Path, keep: int) -> None:
    """Shift ``path`` to ``path.1`` (``.1`` to ``.2`` ...), keeping at most ``keep`` rotated files."""
    if keep < 1:
        path.unlink(missing_ok=True)
        return
    for n in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{n + 1}"))
    if path.exists():
        os.replace(path, path.with_name(f"{path.name}.1"))


def read_records(path: Path, on_bad_line: Callable[[Path, int], None] = lambda p, n: None) -> Iterator[dict]:
    """Every record of the metrics log at ``path`` and its rotated files, oldest first. A line that
    is not a JSON object (a torn write, a stray edit) is skipped, and ``on_bad_line(file, line_no)`` hears it."""
    for file in rotated_files(path):
        with file.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if isinstance(record, dict):
                    yield record
                else:
                    on_bad_line(file, number)
