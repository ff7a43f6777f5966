"""Checkpoint folders: canonical names, atomic writes, discovery.

A checkpoint is written into a hidden temp folder beside its final place, every file is
fsynced, then one rename publishes it; a crash leaves either the old set of checkpoints or the
new one, plus at worst a temp folder that ``remove_partials`` clears at start-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from realm.files import atomic_write

SIDECAR = ".ledger.json"
TEMP_PREFIX = ".tmp-"
_NAME = re.compile(r"^checkpoint-(\d+)-(\d{8})-(\d{4})$")


def canonical_name(step: int, when: datetime) -> str:
    return f"checkpoint-{step}-{when:%Y%m%d}-{when:%H%M}"


def parse_step(name: str) -> int | None:
    match = _NAME.match(name)
    return int(match.group(1)) if match else None


def fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def weights_sha256(folder: Path) -> str:
    """One digest over every weights file (sorted by name), for the ledger."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def write_checkpoint(
    checkpoints_dir: Path,
    step: int,
    when: datetime,
    save: Callable[[Path], None],
    sidecar: dict,
    before_discard: Callable[[], None] = lambda: None,
) -> Path:
    """Run ``save(tmp_folder)``, add the sidecar, and publish the folder atomically. On a failure
    the half-written folder is removed, after ``before_discard()`` (to look at the disk as the
    failure left it)."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    name = canonical_name(step, when)
    final = checkpoints_dir / name
    tmp = checkpoints_dir / f"{TEMP_PREFIX}{name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        save(tmp)
        sidecar = {**sidecar, "step": step, "name": name, "sha256": weights_sha256(tmp)}
        atomic_write(tmp / SIDECAR, json.dumps(sidecar, indent=2, sort_keys=True))
        fsync_tree(tmp)
        if final.exists():  # the same step saved twice within a minute: keep the newer one
            shutil.rmtree(final)
        os.rename(tmp, final)
        fsync_dir(checkpoints_dir)
    except BaseException:
        before_discard()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_sidecar(folder: Path) -> dict | None:
    try:
        return json.loads((folder / SIDECAR).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def complete_checkpoints(checkpoints_dir: Path) -> list[Path]:
    """Published checkpoint folders (canonical name and a readable sidecar), oldest step first."""
    if not checkpoints_dir.is_dir():
        return []
    found = [
        path
        for path in checkpoints_dir.iterdir()
        if path.is_dir() and parse_step(path.name) is not None and read_sidecar(path) is not None
    ]
    return sorted(found, key=lambda path: (parse_step(path.name), path.name))


def remove_partials(checkpoints_dir: Path) -> list[Path]:
    """Delete temp folders left by a save that never finished; return what was removed."""
    if not checkpoints_dir.is_dir():
        return []
    partials = [path for path in checkpoints_dir.iterdir() if path.name.startswith(TEMP_PREFIX)]
    for path in partials:
        shutil.rmtree(path, ignore_errors=True)
    return partials
