"""Writes that failed (the metrics log, the journal) and the pause a full disk causes.

A failed write is noted by whichever thread made it; the training thread settles it between
steps. On a full disk retention makes room first; if the waiting writes still fail, or a save
would not fit, training pauses with the reason until a checkpoint fits again. Anything else is
a warning, said once per file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from realm.protocol import BattleChanged, Notice
from trainer.checkpointer import Checkpointer, first_line

log = logging.getLogger("realm.trainer")


class DiskWatch:
    def __init__(self, checkpointer: Checkpointer, controls, emit, flush: Callable[[], bool]) -> None:
        self.checkpointer = checkpointer
        self.controls = controls
        self.emit = emit
        self.flush = flush  # retry the waiting writes: True when they are all in
        self._failed: dict[str, Exception] = {}  # metrics or journal: what failed last, by any thread
        self._warned: set[str] = set()
        self.paused = False  # paused by a full disk: resumes by itself once a save fits
        self.save_owed = False  # a full disk refused a checkpoint: saved first on resuming

    def note_failed_write(self, what: str, exc: Exception) -> None:
        """A metrics or journal write failed (on any thread); the training thread settles it."""
        self._failed[what] = exc

    def settle(self) -> None:
        """Retry the waiting writes; on a full disk retention makes room first, and if the
        writes still fail, or a save would not fit, training pauses. Anything else is a warning."""
        if not self._failed:
            return
        failed, self._failed = self._failed, {}
        if self.checkpointer.room_for_save() and self.flush():
            return  # the space came back, or the cause went away
        what, exc = next(iter(failed.items()))
        if not self.checkpointer.disk_full(exc):
            self._warn(what, exc)
            return
        freed = self.checkpointer.prune(everything_allowed=True)
        if self.flush() and self.checkpointer.room_for_save():
            return
        watch = not self.checkpointer.room_for_save()
        self.pause(self.checkpointer.reason(f"could not write the {what}", exc, freed, watch), watch)

    def _warn(self, what: str, exc: Exception) -> None:
        if what in self._warned:
            return
        self._warned.add(what)
        text = (
            f"could not write the {what} ({first_line(exc)}); what it missed waits in memory and is retried "
            "with the next write"
        )
        log.warning(text)
        self.emit(Notice(level="warning", text=text))

    def pause(self, reason: str, watch: bool) -> None:
        """Pause for a full disk; ``watch``: the disk is short of space, so space coming back
        ends the pause."""
        log.error(reason)
        self.emit(Notice(level="error", text=reason))
        if self.controls.stop.is_set():
            return
        # a pause the user asked for stays theirs to end, and so does one the free space cannot
        # show the end of (a full quota)
        if watch and not self.controls.pause.is_set():
            self.paused = True
        self.controls.pause.set()  # before the status: a resume sent on seeing it must find the flag set
        self.emit(BattleChanged(status="paused", reason=reason))

    def resume_if_room(self) -> None:
        """A disk-full pause ends by itself once a checkpoint fits and the waiting writes are in."""
        if not self.paused or not self.checkpointer.room_for_save() or not self.flush():
            return
        self.paused = False
        self._failed.clear()
        text = f"disk has room again ({self.checkpointer.space()}): training resumes"
        log.info(text)
        self.emit(Notice(level="info", text=text))
        self.controls.pause.clear()

    def owed_save_due(self) -> bool:
        """After a disk-full pause, whether the checkpoint the full disk refused is due now,
        before training on."""
        if self.save_owed and not self.controls.pause.is_set() and not self.controls.stop.is_set():
            self.save_owed = False
            return True
        return False
