"""The probe's confidence band: pooled rounds, a Wilson interval, and the probe size kept in SQLite."""

from __future__ import annotations

import sqlite3

import pytest

from realm.protocol import SkillEvalPoint
from realm.skills.confidence import band_text, probe_band, wilson_interval
from realm.skills.history import EvalRow, SkillStore


def test_the_wilson_interval_matches_the_textbook_values():
    # 60 % of 120: the standard 95 % Wilson interval is 51.1 % to 68.3 %
    low, high = wilson_interval(72, 120)
    assert low == pytest.approx(0.5106, abs=1e-4) and high == pytest.approx(0.6832, abs=1e-4)
    # all right or all wrong still leaves room on the other side, unlike p +- 1.96 sd
    assert wilson_interval(40, 40)[0] == pytest.approx(0.9124, abs=1e-4)
    assert wilson_interval(0, 40) == (0.0, pytest.approx(0.0876, abs=1e-4))


def test_the_band_pools_the_last_rounds_at_the_level_and_narrows_with_items():
    points = [
        SkillEvalPoint(level=1, step=50, accuracy=0.2, probe=0.9, probe_items=40),  # an older level
        SkillEvalPoint(level=2, step=100, accuracy=0.6, probe=0.5, probe_items=40),
        SkillEvalPoint(level=3, step=100, accuracy=0.0),  # the preview of the next level: no probe
        SkillEvalPoint(level=2, step=150, accuracy=0.6, probe=0.6, probe_items=40),
        SkillEvalPoint(level=2, step=200, accuracy=0.8, probe=0.7, probe_items=40),
        SkillEvalPoint(level=2, step=250, accuracy=0.8, probe=0.8, probe_items=40),
    ]
    band = probe_band(points, level=2, rounds=3)
    assert (band.items, band.rounds) == (120, 3)
    assert band.accuracy == pytest.approx(0.7)  # 24 + 28 + 32 of 120: the oldest level-2 round is out
    one = probe_band(points, level=2, rounds=1)
    assert one.accuracy == pytest.approx(0.8) and one.high - one.low > band.high - band.low
    assert band_text(band) == "probe 70% (61-77%, 120 items in 3 rounds)"
    assert probe_band(points, level=3) is None  # no probe at that level
    assert probe_band([SkillEvalPoint(level=2, step=1, accuracy=0.5, probe=0.5)], level=2) is None  # size unknown


def old_vault(tmp_path, sql: str):
    """A vault written before the probe's size was kept: skill_evals without probe_items, then ``sql``."""
    db = tmp_path / "realm.db"
    old = sqlite3.connect(db)
    old.executescript(
        "CREATE TABLE skill_evals (id INTEGER PRIMARY KEY AUTOINCREMENT, skill TEXT NOT NULL, level INTEGER NOT NULL,"
        " at_level INTEGER NOT NULL, step INTEGER NOT NULL, time REAL NOT NULL, accuracy REAL NOT NULL, probe REAL,"
        " strata TEXT NOT NULL DEFAULT '{}', items TEXT NOT NULL DEFAULT '[]');" + sql
    )
    old.commit()
    old.close()
    return db


def test_the_store_keeps_the_probe_size_and_opens_a_vault_written_before_it(tmp_path):
    db = old_vault(
        tmp_path,
        "INSERT INTO skill_evals (skill, level, at_level, step, time, accuracy, probe) VALUES ('bin', 1, 1, 5, 0, 0.4, 0.5);",
    )
    store = SkillStore(db)
    store.record(EvalRow("bin", 1, 1, 10, 0.0, 0.6, 0.75, {}, [], 40))
    rows = store.rounds_at("bin", 1)
    store.close()
    assert [(r.step, r.probe_items) for r in rows] == [(5, 0), (10, 40)]
    band = probe_band(rows, level=1)
    assert (band.items, band.rounds, band.accuracy) == (40, 1, 0.75)  # the old round's size is unknown: left out


def test_a_read_only_store_reads_an_older_vault_without_changing_it(tmp_path):
    db = old_vault(
        tmp_path,
        "CREATE TABLE skill_levels (skill TEXT PRIMARY KEY, level INTEGER, since_step INTEGER, time REAL);"
        "INSERT INTO skill_levels VALUES ('bin', 2, 40, 0);"
        "INSERT INTO skill_evals (skill, level, at_level, step, time, accuracy, probe) VALUES ('bin', 2, 2, 50, 0, 0.4, 0.5);",
    )
    before = db.read_bytes()
    reader = SkillStore(db, readonly=True)
    assert reader.level("bin")[0] == 2
    assert [(r.step, r.probe, r.probe_items) for r in reader.history("bin")] == [(50, 0.5, 0)]
    reader.close()
    assert db.read_bytes() == before  # no column added, no table made: the trainer migrates its own vault
