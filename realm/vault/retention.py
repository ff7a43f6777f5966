"""Retention: which checkpoints a save may delete, and deleting them.

Kept, always: the latest (the resume point), the last ``keep_last``, the best ``keep_best``
by ``best_metric`` (``score``: the champion board's order), the champion and every pinned step. When only one checkpoint exists it is
the latest, so the only one is never deleted either. A checkpoint in use (an oracle eval round
reading it, or the one the oracle serves) is kept too, except when the disk is full. Everything
else may go.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from realm.protocol import CheckpointInfo
from realm.vault.checkpoints import TEMP_PREFIX, parse_step

DOOMED_PREFIX = TEMP_PREFIX + "del-"  # a checkpoint folder renamed out of sight, its delete under way


def keep_set(
    present: list[CheckpointInfo],
    *,
    keep_last: int,
    keep_best: int,
    best_metric: str,
    pinned: tuple[int, ...] = (),
    champion: int | None = None,
    ranked: list[int] = (),
) -> set[int]:
    """The steps retention must keep among ``present``; ``ranked``: the champion board's steps, best first."""
    by_step = sorted(present, key=lambda c: c.step)
    keep = {c.step for c in by_step[-max(1, keep_last) :]}
    if best_metric == "score":
        best = list(ranked)
    else:
        scored = sorted(
            (c for c in by_step if getattr(c, best_metric) is not None),
            key=lambda c: (getattr(c, best_metric), -c.step),
        )
        best = [c.step for c in scored]
    keep |= set(best[:keep_best]) & {c.step for c in by_step}
    keep |= set(pinned) & {c.step for c in by_step}
    if champion is not None:
        keep.add(champion)
    return keep


def prune(
    ledger,
    settings,
    *,
    ranked: list[int] = (),
    in_use: tuple[int, ...] = (),
    everything_allowed: bool = False,
    bases: tuple[int, ...] = (),
) -> list[str]:
    """Delete the checkpoints retention does not keep; return their names.

    ``ranked``: the champion board's steps, best first (its first is the champion).
    ``in_use``: steps something still reads (kept now, retention's again later).
    ``everything_allowed`` (a full disk) keeps only what must never go: the latest, the
    champion, the pinned ones and ``bases`` (full checkpoints that adapter checkpoints were
    started on); a reader of a deleted one falls back on its own.
    """
    present = ledger.present()
    champion = ranked[0] if ranked else None
    if everything_allowed:
        keep = keep_set(
            present,
            keep_last=1,
            keep_best=0,
            best_metric=settings.best_metric,
            pinned=(*settings.pinned, *bases),
            champion=champion,
        )
    else:
        keep = keep_set(
            present,
            keep_last=settings.keep_last,
            keep_best=settings.keep_best,
            best_metric=settings.best_metric,
            pinned=(*settings.pinned, *in_use, *bases),
            champion=champion,
            ranked=ranked,
        )
    removed = []
    for info in present:
        if info.step not in keep:
            delete_checkpoint_folder(ledger, info.step, ledger.path_of(info.step))
            removed.append(info.name)
    return removed


def delete_checkpoint_folder(ledger, step: int, folder: Path | None) -> None:
    """Rename out of sight (one atomic step), delete the files, mark the row, drop the folder.

    The files go before the row is marked: on a full disk the ledger needs the room they free.
    A kill at any point leaves the folder untouched or a ``DOOMED_PREFIX`` folder, which
    ``finish_interrupted_deletes`` completes at the next start."""
    doomed = None
    if folder is not None and folder.exists():
        doomed = folder.with_name(DOOMED_PREFIX + folder.name)
        os.replace(folder, doomed)
        _empty(doomed)
    ledger.mark_deleted(step)
    if doomed is not None:
        shutil.rmtree(doomed, ignore_errors=True)


def _empty(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def finish_interrupted_deletes(ledger, checkpoints_dir: Path) -> list[str]:
    """Complete the deletes a kill interrupted: the row marked deleted, the folder gone; return
    the checkpoint names. Run it before ``remove_partials``, which would only drop the files."""
    if not checkpoints_dir.is_dir():
        return []
    finished = []
    for doomed in sorted(checkpoints_dir.glob(DOOMED_PREFIX + "*")):
        name = doomed.name.removeprefix(DOOMED_PREFIX)
        step = parse_step(name)
        if step is not None and ledger.path_of(step) in (None, doomed.with_name(name)):
            ledger.mark_deleted(step)
            finished.append(name)
        shutil.rmtree(doomed, ignore_errors=True)
    return finished
