"""Retention: which checkpoints a save may delete, and deleting them.

Kept, always: the latest (the resume point), the last ``keep_last``, the best ``keep_best``
by ``best_metric`` (``score``: the champion board's order), the champion and every pinned step. When only one checkpoint exists it is
the latest, so the only one is never deleted either. A checkpoint in use (an oracle eval round
reading it) is kept too, except when the disk is full. Everything else may go.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from realm.protocol import CheckpointInfo
from realm.vault.checkpoints import TEMP_PREFIX


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
    keep = {c.step for c in by_step[-max(1, keep_last):]}
    if best_metric == "score":
        best = list(ranked)
    else:
        scored = sorted((c for c in by_step if getattr(c, best_metric) is not None), key=lambda c: (getattr(c, best_metric), -c.step))
        best = [c.step for c in scored]
    keep |= set(best[:keep_best]) & {c.step for c in by_step}
    keep |= set(pinned) & {c.step for c in by_step}
    if champion is not None:
        keep.add(champion)
    return keep


def prune(
    ledger, settings, *, ranked: list[int] = (), in_use: tuple[int, ...] = (), everything_allowed: bool = False
) -> list[str]:
    """Delete the checkpoints retention does not keep; return their names.

    ``ranked``: the champion board's steps, best first (its first is the champion).
    ``in_use``: steps something still reads (kept now, retention's again later).
    ``everything_allowed`` (a full disk) keeps only what must never go: the latest, the
    champion and the pinned ones; a reader of a deleted one falls back on its own.
    """
    present = ledger.present()
    champion = ranked[0] if ranked else None
    if everything_allowed:
        keep = keep_set(present, keep_last=1, keep_best=0, best_metric=settings.best_metric,
                        pinned=settings.pinned, champion=champion)
    else:
        keep = keep_set(present, keep_last=settings.keep_last, keep_best=settings.keep_best,
                        best_metric=settings.best_metric, pinned=(*settings.pinned, *in_use), champion=champion,
                        ranked=ranked)
    removed = []
    for info in present:
        if info.step in keep:
            continue
        path = ledger.path_of(info.step)
        if path is not None:
            _remove(Path(path))
        ledger.mark_deleted(info.step)
        removed.append(info.name)
    return removed


def _remove(folder: Path) -> None:
    """Rename out of sight first (one atomic step), then delete: a crash leaves a temp folder."""
    if not folder.exists():
        return
    doomed = folder.with_name(TEMP_PREFIX + "del-" + folder.name)
    os.replace(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
