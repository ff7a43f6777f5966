"""The checkpoint ledger: stats at save time, in SQLite (WAL), reconciled with the folders.

The folders are the truth for what exists; the ledger is the index with the stats. At
start-up ``reconcile`` registers folders the ledger lacks (from their sidecars) and marks
rows whose folder is gone as missing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

from realm.protocol import CheckpointInfo, SuiteScore
from realm.vault.checkpoints import complete_checkpoints, read_sidecar

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    step        INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    path        TEXT NOT NULL,
    time        REAL NOT NULL,
    train_loss  REAL,
    val_loss    REAL,
    quest       TEXT,
    sha256      TEXT,
    status      TEXT NOT NULL DEFAULT 'present'
);
CREATE TABLE IF NOT EXISTS suite_scores (
    step        INTEGER NOT NULL,
    version     TEXT NOT NULL,
    time        REAL NOT NULL,
    score       TEXT NOT NULL,   -- the SuiteScore, JSON
    PRIMARY KEY (step, version)
);
"""


class Ledger:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def record(self, folder: Path, sidecar: dict) -> CheckpointInfo:
        info = _info_from_sidecar(sidecar)
        self._db.execute(
            "INSERT OR REPLACE INTO checkpoints"
            " (step, name, path, time, train_loss, val_loss, quest, sha256, status)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'present')",
            (
                info.step,
                info.name,
                str(folder),
                info.time,
                info.train_loss,
                info.val_loss,
                info.quest,
                sidecar.get("sha256"),
            ),
        )
        return info

    def present(self) -> list[CheckpointInfo]:
        rows = self._db.execute(
            "SELECT step, name, time, train_loss, val_loss, quest FROM checkpoints"
            " WHERE status = 'present' ORDER BY step"
        ).fetchall()
        return self._with_scores([CheckpointInfo(*row) for row in rows])

    # --- suite scores: one row per (checkpoint, suite version), written once --------------

    def record_score(self, step: int, score: SuiteScore, when: float) -> bool:
        """Store a checkpoint's suite score; False (and nothing changes) when it already has one on that version."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO suite_scores (step, version, time, score) VALUES (?, ?, ?, ?)",
            (step, score.version, when, msgspec.json.encode(score).decode()),
        )
        return cursor.rowcount == 1

    def score_of(self, step: int, version: str) -> SuiteScore | None:
        row = self._db.execute(
            "SELECT score FROM suite_scores WHERE step = ? AND version = ?", (step, version)
        ).fetchone()
        return _score(row[0]) if row else None

    def scores(self, step: int) -> list[SuiteScore]:
        """Every suite score of a checkpoint, oldest first."""
        rows = self._db.execute("SELECT score FROM suite_scores WHERE step = ? ORDER BY time", (step,)).fetchall()
        return [_score(row[0]) for row in rows]

    def _with_scores(self, infos: list[CheckpointInfo]) -> list[CheckpointInfo]:
        """Each checkpoint with its newest suite score."""
        newest: dict[int, SuiteScore] = {}
        for step, text in self._db.execute("SELECT step, score FROM suite_scores ORDER BY time"):
            newest[step] = _score(text)
        return [msgspec.structs.replace(info, suite=newest.get(info.step)) for info in infos]

    def path_of(self, step: int) -> Path | None:
        row = self._db.execute("SELECT path FROM checkpoints WHERE step = ? AND status = 'present'", (step,)).fetchone()
        return Path(row[0]) if row else None

    # --- queries ------------------------------------------------------------------------

    def latest(self) -> CheckpointInfo | None:
        present = self.present()
        return present[-1] if present else None

    def best(self, metric: str = "val_loss", n: int = 1) -> list[CheckpointInfo]:
        """The ``n`` present checkpoints with the lowest ``metric`` (val_loss or train_loss)."""
        if metric not in _METRICS:
            raise ValueError(f"unknown metric {metric!r}: use {' or '.join(_METRICS)}")
        rows = self._db.execute(
            f"SELECT step, name, time, train_loss, val_loss, quest FROM checkpoints"
            f" WHERE status = 'present' AND {metric} IS NOT NULL ORDER BY {metric}, step DESC LIMIT ?",
            (n,),
        ).fetchall()
        return [CheckpointInfo(*row) for row in rows]

    def list_checkpoints(self, include_missing: bool = False) -> list[tuple[CheckpointInfo, str]]:
        """Every row as (info, status), oldest step first."""
        where = "" if include_missing else " WHERE status = 'present'"
        rows = self._db.execute(
            "SELECT step, name, time, train_loss, val_loss, quest, status FROM checkpoints" + where + " ORDER BY step"
        ).fetchall()
        infos = self._with_scores([CheckpointInfo(*row[:6]) for row in rows])
        return [(info, row[6]) for info, row in zip(infos, rows)]

    def mark_deleted(self, step: int) -> None:
        """The folder was deleted on purpose (``realm vault delete``): keep the row, stats and all."""
        self._db.execute("UPDATE checkpoints SET status = 'deleted' WHERE step = ?", (step,))

    def reconcile(self, checkpoints_dir: Path) -> tuple[int, int]:
        """Register orphan folders, mark vanished ones; return (registered, marked_missing)."""
        on_disk = {
            int(sidecar["step"]): (folder, sidecar)
            for folder in complete_checkpoints(checkpoints_dir)
            if (sidecar := read_sidecar(folder)) is not None
        }
        known = dict(self._db.execute("SELECT step, path FROM checkpoints WHERE status = 'present'").fetchall())
        registered = 0
        for step, (folder, sidecar) in on_disk.items():
            if known.get(step) != str(folder):
                self.record(folder, sidecar)
                registered += 1
        missing = [step for step in known if step not in on_disk]
        self._db.executemany("UPDATE checkpoints SET status = 'missing' WHERE step = ?", [(s,) for s in missing])
        return registered, len(missing)


_METRICS = ("val_loss", "train_loss")


def _score(text: str) -> SuiteScore:
    return msgspec.json.decode(text, type=SuiteScore)


def _info_from_sidecar(sidecar: dict) -> CheckpointInfo:
    return CheckpointInfo(
        step=int(sidecar["step"]),
        name=str(sidecar["name"]),
        time=float(sidecar.get("time", 0.0)),
        train_loss=sidecar.get("train_loss"),
        val_loss=sidecar.get("val_loss"),
        quest=sidecar.get("quest"),
    )
