"""Checkpoint saves, retention, a full disk, and auto-promote.

A full disk shows up in many shapes: ``OSError`` ENOSPC from our own writes, ``RuntimeError``
from torch.save's C++ stream, ``sqlite3.OperationalError`` from the ledger. So a failed write is
classified by its error code where it has one (ENOSPC, EDQUOT, SQLITE_FULL) and otherwise by the
free space left: less than a checkpoint needs means full.
Before a save, too little free space makes retention free what it may; a save that fails on a
full disk anyway is retried once after retention, and then raises ``DiskFull`` with the reason.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from realm.config import RealmConfig
from realm.errors import RealmError
from realm.protocol import CheckpointInfo, CheckpointsPruned, ErrorReply, Notice
from realm.vault.champion import board
from realm.vault.checkpoints import TEMP_PREFIX, complete_checkpoints, parse_step, read_sidecar, write_checkpoint
from realm.vault.merge import adapter_bases
from realm.vault.retention import prune
from realm.vault.service import VaultService, served_step

MB = 2**20
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)  # a quota is full while the disk still shows free space
HEADROOM = 1 * MB  # beyond the checkpoint: the metrics lines and journal rows written meanwhile
BYTES_PER_PARAMETER = 12  # before the first save: fp32 weights and Adam's two fp32 moments
# Test hook: seconds to sleep inside a checkpoint save (weights written, not yet published), so
# a test can SIGKILL the trainer mid-save deterministically. Unset in normal use.
SAVE_PAUSE_ENV = "REALM_TEST_SAVE_PAUSE_S"


def _full_by_code(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL_ERRNOS
    return isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode == sqlite3.SQLITE_FULL


class DiskFull(RealmError):
    """A checkpoint could not be saved, even after retention freed what it may. ``watch``: the disk
    was short of space when the save failed, so space coming back ends the pause."""

    def __init__(self, reason: str, watch: bool) -> None:
        super().__init__(reason)
        self.watch = watch


class Checkpointer:
    """Saves the engine into the vault, records it in the ledger, and applies retention."""

    def __init__(self, folder: Path, ledger, engine, emit, *, config: Callable[[], RealmConfig],
                 in_use: Callable[[], tuple[int, ...]]) -> None:  # fmt: skip
        self.folder = folder
        self._short = False  # the last failed attempt met a disk short of space
        self.ledger = ledger
        self.engine = engine
        self.emit = emit
        self.config = config  # the live config: the Armory may change retention between saves
        self.in_use = in_use  # steps an oracle eval round still reads, and the one the oracle serves

    # ------------------------------------------------------------------ free space

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.folder).free

    def needed_bytes(self) -> int:
        """Free space the next save needs: the newest checkpoint's size (an estimate before the
        first one) and some headroom, or ``vault.min_free_mb`` when that is more."""
        newest = (complete_checkpoints(self.folder) or [None])[-1]
        size = _folder_bytes(newest) if newest else self.engine.parameters * BYTES_PER_PARAMETER
        return max(size + HEADROOM, self.config().vault.min_free_mb * MB)

    def room_for_save(self) -> bool:
        return self.free_bytes() >= self.needed_bytes()

    def disk_full(self, exc: BaseException) -> bool:
        """Whether the write that raised ``exc`` met a full disk. The codes count even when the
        space is back by now: a ledger row refused after the weights filled the disk frees them again."""
        return _full_by_code(exc) or not self.room_for_save()

    def space(self) -> str:
        free, needed = self.free_bytes() / MB, self.needed_bytes() / MB
        return f"{free:.1f} MB free in {self.folder}, a checkpoint needs {needed:.1f} MB"

    def reason(self, what: str, exc: BaseException, freed: list[str], watch: bool) -> str:
        """The one line a user reads: what failed, how full the disk is, what to do. ``watch``: the
        free space shows when it ends; not so for a disk full by the error alone (a quota, no inodes)."""
        then = "training resumes by itself (or run `realm resume`)" if watch else "then run `realm resume`"
        return (
            f"disk full: {what} ({first_line(exc)}); {self.space()}; retention freed {len(freed)} "
            f"checkpoint(s). Free some space there: {then}"
        )

    # ------------------------------------------------------------------ save and retention

    def save(self, sidecar: dict) -> CheckpointInfo:
        """Write the checkpoint and record it; ``DiskFull`` when a full disk refused it even
        after retention made room."""
        freed = self.make_room()
        outcome = self._attempt(sidecar)
        if isinstance(outcome, Exception) and (more := self.prune(everything_allowed=True)):
            freed += more
            outcome = self._attempt(sidecar)
        if isinstance(outcome, Exception):
            what = f"checkpoint at step {self.engine.step} not saved"
            raise DiskFull(self.reason(what, outcome, freed, self._short), self._short) from outcome
        return outcome

    def make_room(self) -> list[str]:
        """Before a save: with less free space than it needs, retention frees what it may."""
        return [] if self.room_for_save() else self.prune(everything_allowed=True)

    def prune(self, everything_allowed: bool = False) -> list[str]:
        """Retention (keep_last, keep_best, pinned); on a full disk only the latest, the champion
        and the pinned ones are kept. Returns the names deleted, and says so on the bus."""
        config = self.config()
        ranked = [row.checkpoint.step for row in board(self.ledger, config.champion) if row.rank]  # [0]: the champion
        removed = prune(self.ledger, config.vault, ranked=ranked, in_use=self.in_use(),
                        everything_allowed=everything_allowed, bases=adapter_bases(self.folder))  # fmt: skip
        if removed:
            steps = tuple(parse_step(name) for name in removed)
            self.emit(CheckpointsPruned(steps=steps, reason="disk full" if everything_allowed else "retention"))
        return removed

    def _attempt(self, sidecar: dict) -> CheckpointInfo | Exception:
        """The saved checkpoint, or the error of a write a full disk refused (others raise)."""
        self._short = False
        try:
            return self._write_and_record(sidecar)
        except Exception as exc:
            if not self.disk_full(exc):
                raise
            self._short = self._short or not self.room_for_save()  # when nothing was discarded
            return exc

    def _write_and_record(self, sidecar: dict) -> CheckpointInfo:
        folder = self._write(sidecar)
        try:
            return self.ledger.record(folder, read_sidecar(folder))
        except BaseException:
            self._note_space()
            _discard(folder)  # an unrecorded checkpoint: the retry writes it again
            raise

    def _note_space(self) -> None:
        """Before a failed save's files are discarded: whether the disk is short of space. After
        the discard it may show room again though the save filled it."""
        self._short = not self.room_for_save()

    def _write(self, sidecar: dict) -> Path:
        def save(folder: Path) -> None:
            self.engine.save(folder)
            pause = os.environ.get(SAVE_PAUSE_ENV)
            if pause:
                time.sleep(float(pause))

        sidecar = {**sidecar, **self.engine.sidecar_fields()}  # an adapter checkpoint names its base
        return write_checkpoint(self.folder, self.engine.step, datetime.now(), save, sidecar, self._note_space)


class AutoPromoter:
    """The deployment orchestrator: with ``oracle.auto_promote``, send each new champion that
    beats the served checkpoint by ``champion.margin`` on the current suite."""

    def __init__(
        self, home: Path, ledger, vault: Callable[[], VaultService], emit, *, config: Callable[[], RealmConfig]
    ) -> None:
        self.home = home  # the data root
        self.ledger = ledger
        self.vault = vault
        self.emit = emit
        self.config = config  # the live config
        self._champion_step: int | None = None  # the last champion looked at

    def after_save(self) -> None:
        config = self.config()
        if not config.oracle.auto_promote:
            return
        rows = board(self.ledger, config.champion)
        if not rows or rows[0].rank != 1 or rows[0].checkpoint.step == self._champion_step:
            return
        best = rows[0]
        self._champion_step = best.checkpoint.step
        scores = {row.checkpoint.step: row.score for row in rows if row.rank}
        margin = config.champion.margin
        service = self.vault()

        def send() -> None:
            serving, _ = served_step(config, self.home)
            if serving == best.checkpoint.step:
                return
            served = scores.get(serving) if serving is not None else None
            if served is not None and best.score - served < margin:
                text = (
                    f"auto-promote: champion {best.checkpoint.name} beats the served checkpoint {serving} by "
                    f"{best.score - served:.3f}, under champion.margin {margin:g}; still serving {serving}"
                )
                self.emit(Notice(level="info", text=text))
                return
            reply = service.promote(str(best.checkpoint.step))
            level = "warning" if isinstance(reply, ErrorReply) else "info"
            self.emit(Notice(level=level, text=f"auto-promote {best.checkpoint.name}: {reply.message}"))

        threading.Thread(target=send, name="realm-auto-promote", daemon=True).start()


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())


def _discard(folder: Path) -> None:
    """Out of sight in one rename (a kill leaves a temp folder start-up clears), then deleted."""
    hidden = folder.with_name(TEMP_PREFIX + folder.name)
    os.replace(folder, hidden)
    shutil.rmtree(hidden, ignore_errors=True)


def first_line(exc: BaseException) -> str:
    """An error in one short line: C++ errors from torch span many."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
