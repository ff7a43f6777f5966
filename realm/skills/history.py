"""Skill progress in SQLite (``vault/realm.db``, tables ``skill_*``): levels, every eval round,
and lineage counts. The trainer reads it back at start-up, so progress survives restarts.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import msgspec

_SCHEMA = """
CREATE TABLE IF NOT EXISTS skill_levels (
    skill       TEXT PRIMARY KEY,
    level       INTEGER NOT NULL,
    since_step  INTEGER NOT NULL,
    time        REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS skill_evals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    skill       TEXT NOT NULL,
    level       INTEGER NOT NULL,      -- the level whose eval set was scored
    at_level    INTEGER NOT NULL,      -- the skill's level when the round ran
    step        INTEGER NOT NULL,
    time        REAL NOT NULL,
    accuracy    REAL NOT NULL,
    probe       REAL,                  -- fresh-probe accuracy (current level only)
    strata      TEXT NOT NULL DEFAULT '{}',   -- probe accuracy per stratum, JSON
    items       TEXT NOT NULL DEFAULT '[]',   -- the graded eval items, JSON
    probe_items INTEGER NOT NULL DEFAULT 0    -- how many fresh-probe items ``probe`` is the share of
);
CREATE INDEX IF NOT EXISTS skill_evals_by_skill ON skill_evals (skill, level, id);
CREATE TABLE IF NOT EXISTS skill_lineage (
    generator   TEXT NOT NULL,         -- e.g. "bin@1.0.0", "self_correction"
    validator   TEXT NOT NULL,         -- "" for generated counts; else the validator's name
    count       INTEGER NOT NULL,
    PRIMARY KEY (generator, validator)
);
"""


class EvalRow(msgspec.Struct, frozen=True):
    skill: str
    level: int
    at_level: int
    step: int
    time: float
    accuracy: float
    probe: float | None
    strata: dict[str, float]
    items: list[dict]
    probe_items: int = 0  # the fresh probe's size (0: no probe, or a round recorded before it was kept)


class SkillStore:
    """The trainer's skill tables. ``readonly``: a reader beside a running trainer (the TUI's last
    known state) that creates and migrates nothing; a table an older trainer never made raises
    ``sqlite3.OperationalError``."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        if readonly:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(skill_evals)")}
        self._probe_items = "probe_items" if "probe_items" in columns or not readonly else "0"
        if "probe_items" not in columns and not readonly:  # a vault written before the probe's size was kept
            self._db.execute("ALTER TABLE skill_evals ADD COLUMN probe_items INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ levels

    def level(self, skill: str) -> tuple[int, int]:
        """(level, the step it was reached at); (1, 0) for a skill never seen."""
        row = self._db.execute("SELECT level, since_step FROM skill_levels WHERE skill = ?", (skill,)).fetchone()
        return (int(row[0]), int(row[1])) if row else (1, 0)

    def set_level(self, skill: str, level: int, step: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO skill_levels (skill, level, since_step, time) VALUES (?, ?, ?, ?)",
            (skill, level, step, time.time()),
        )

    # ------------------------------------------------------------------ evals

    def record(self, row: EvalRow) -> None:
        self._db.execute(
            "INSERT INTO skill_evals (skill, level, at_level, step, time, accuracy, probe, strata, items, probe_items)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.skill,
                row.level,
                row.at_level,
                row.step,
                row.time,
                row.accuracy,
                row.probe,
                json.dumps(row.strata),
                json.dumps(row.items, ensure_ascii=False),
                row.probe_items,
            ),
        )

    def rounds_at(self, skill: str, level: int) -> list[EvalRow]:
        """Rounds that scored ``level`` while the skill was at ``level``, oldest first."""
        return self._rows("WHERE skill = ? AND level = ? AND at_level = ? ORDER BY id", (skill, level, level))

    def history(self, skill: str, limit: int = 60) -> list[EvalRow]:
        rows = self._rows("WHERE skill = ? ORDER BY id DESC LIMIT ?", (skill, limit))
        return rows[::-1]

    def _rows(self, where: str, args: tuple) -> list[EvalRow]:
        cursor = self._db.execute(
            "SELECT skill, level, at_level, step, time, accuracy, probe, strata, items, "
            f"{self._probe_items} FROM skill_evals " + where,
            args,
        )
        return [
            EvalRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), json.loads(r[8]), r[9])
            for r in cursor.fetchall()
        ]

    # ------------------------------------------------------------------ lineage

    def count(self, generator: str, validator: str, n: int) -> None:
        if n:
            self._db.execute(
                "INSERT INTO skill_lineage (generator, validator, count) VALUES (?, ?, ?)"
                " ON CONFLICT (generator, validator) DO UPDATE SET count = count + excluded.count",
                (generator, validator, n),
            )

    def lineage(self) -> list[tuple[str, str, int]]:
        rows = self._db.execute("SELECT generator, validator, count FROM skill_lineage ORDER BY generator, validator")
        return [(g, v, int(c)) for g, v, c in rows.fetchall()]
