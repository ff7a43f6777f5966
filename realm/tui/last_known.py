"""The last known state of a data root, read from the files its trainer writes, for the TUI to
show (marked "last known") until the trainer answers a snapshot.

What is read, and where from: the newest step and the smoothed train loss from the tail of
``logs/metrics.jsonl``; quests won from the files in ``quests/done``; checkpoints and their
suite scores from the ledger, and achievements, milestones, gold spent and the newest journal
lines from the chronicle's tables, all in ``vault/realm.db`` (opened read-only).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import NamedTuple

import msgspec

from realm.game.milestones import RECENT_MILESTONES
from realm.home import Home
from realm.metrics_history import METRICS_FILE, rotated_files
from realm.protocol import (
    Achievement,
    HeroState,
    LogLine,
    Milestone,
    RealmState,
    SkillEvalPoint,
    SkillsState,
    SkillState,
    VaultState,
)
from realm.skills.history import SkillStore
from realm.state import EMA_WEIGHT, LOG_LINES, SKILL_HISTORY
from realm.vault.ledger import Ledger

TAIL_BYTES = 256 * 1024  # of the metrics log: a few thousand steps, enough for the smoothed loss


class LastKnown(NamedTuple):
    state: RealmState
    time: float  # when the newest of it was written (Unix seconds)


def skill_mix(config) -> tuple[str, ...]:
    """The skills a trainer with ``config`` trains, in the mix's order (none with skills off)."""
    return tuple(s for s, w in config.skills.weights().items() if w > 0) if config.skills.enabled else ()


def read_last_known(root: Path, skills: tuple[str, ...] = ()) -> LastKnown | None:
    """The data root's last known state, or None when it has no history (a new game).
    ``skills``: the config's mix, in its order (the first is the one behind ACC)."""
    home = Home(root)
    steps = _step_records(home.logs / METRICS_FILE)
    if not home.db.exists() and not steps:
        return None
    hero = HeroState(
        steps=steps[-1]["step"] if steps else 0,
        loss_ema=_ema([r["loss"] for r in steps]),
        quests_completed=_quests_won(home.done),
    )
    state = RealmState(hero=hero)
    times = [steps[-1].get("time", 0.0)] if steps else []
    if home.db.exists():
        state, db_time = _from_db(home.db, state, skills)
        times.append(db_time)
    return LastKnown(state, max(times, default=0.0))


def _step_records(path: Path) -> list[dict]:
    for file in reversed(rotated_files(path)):  # the newest file with a step in it
        with file.open("rb") as f:
            start = max(0, f.seek(0, 2) - TAIL_BYTES)
            f.seek(start)
            lines = f.read().decode("utf-8", errors="replace").splitlines()[1 if start else 0 :]  # a cut first line
        records = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line
            if isinstance(record, dict) and record.get("kind") == "step" and "loss" in record:
                records.append(record)
        if records:
            return records
    return []


def _ema(losses: list[float]) -> float | None:
    """The reducer's smoothed loss (ATK's), over the losses read."""
    ema = None
    for loss in losses:
        ema = loss if ema is None else (1 - EMA_WEIGHT) * ema + EMA_WEIGHT * loss
    return ema


def _quests_won(done: Path) -> int:
    if not done.is_dir():
        return 0
    return sum(
        1 for p in done.iterdir() if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".reason.txt")
    )


def _from_db(path: Path, state: RealmState, skill_ids: tuple[str, ...]) -> tuple[RealmState, float]:
    ledger = Ledger(path)
    try:
        checkpoints = tuple(ledger.present())
    finally:
        ledger.close()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        achievements = tuple(Achievement(*r) for r in _rows(db, "SELECT id, name, time, step FROM achievements"))
        milestones = _rows(
            db, "SELECT kind, text, time, step FROM milestones ORDER BY id DESC LIMIT ?", RECENT_MILESTONES
        )
        count = _rows(db, "SELECT COUNT(*) FROM milestones")
        spent = _rows(db, "SELECT COALESCE(SUM(price), 0) FROM purchases")
        journal = _rows(db, "SELECT time, kind, text FROM journal ORDER BY id DESC LIMIT ?", LOG_LINES)
    finally:
        db.close()
    store = SkillStore(path, readonly=True)
    try:
        skills = tuple(_skill(store, skill_id) for skill_id in skill_ids)
    finally:
        store.close()
    scored = [c.suite for c in checkpoints if c.suite is not None]
    hero = msgspec.structs.replace(
        state.hero,
        suite=scored[-1] if scored else None,
        milestones=count[0][0] if count else 0,
        gold_spent=spent[0][0] if spent else 0,
    )
    state = msgspec.structs.replace(
        state,
        hero=hero,
        vault=VaultState(checkpoints=checkpoints),
        achievements=tuple(sorted(achievements, key=lambda a: a.time)),
        milestones=tuple(Milestone(*r) for r in reversed(milestones)),
        skills=SkillsState(active=skill_ids[0] if skill_ids else "", skills=skills),
        log=tuple(
            LogLine(time=t, level="warning" if kind == "notice" else "info", text=text)
            for t, kind, text in reversed(journal)
        ),
    )
    newest = [row[0] for row in journal[:1]] + [c.time for c in checkpoints[-1:]]
    return state, max(newest, default=0.0)


def _skill(store: SkillStore, skill_id: str) -> SkillState:
    """A skill's level and its rounds' accuracies, read through the trainer's skill store."""
    try:
        level, _ = store.level(skill_id)
        current = store.rounds_at(skill_id, level)
        history = store.history(skill_id, limit=SKILL_HISTORY)
    except sqlite3.OperationalError:  # tables an older trainer never made
        return SkillState(id=skill_id)
    points = tuple(
        SkillEvalPoint(level=r.level, step=r.step, accuracy=r.accuracy, probe=r.probe, probe_items=r.probe_items)
        for r in history
    )
    return SkillState(id=skill_id, level=level, accuracy=current[-1].accuracy if current else None, history=points)


def _rows(db: sqlite3.Connection, sql: str, *params) -> list[tuple]:
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # a table an older trainer never made
        return []
