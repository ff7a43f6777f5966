"""Where each quest came from: ``quests/lineage/NAME.meta.json``, written with the quest.

Whoever writes a quest decides its ``source`` once, in this record: ``idle`` and ``correction``
for the quests the trainer makes for itself, ``generated`` for one drawn from a skill on request,
``inbox`` for a file that came in through the inbox or ``realm quest add``. A quest without a
record came in through the inbox. Everything that shows or acts on a quest's source reads it here.
"""

from __future__ import annotations

import json
from pathlib import Path

from realm.files import atomic_write
from realm.home import Home
from realm.protocol import GAME_SOURCES

SOURCES = ("inbox", "idle", "correction", "generated")
OWN_SOURCES = GAME_SOURCES  # the game's own quests: not worth a line or a checkpoint each
SKILL_SOURCES = (*GAME_SOURCES, "generated")  # drawn from a skill: every answer passed its grader


def meta_path(home: Home, name: str) -> Path:
    return home.lineage / f"{name}.meta.json"


def read(home: Home, name: str) -> dict:
    """Quest ``name``'s record; {} when it has none (or an unreadable one)."""
    try:
        meta = json.loads(meta_path(home, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def source(home: Home, name: str) -> str:
    found = read(home, name).get("source")
    return found if found in SOURCES else "inbox"


def title(home: Home, name: str) -> str:
    """The title the trainer gave a quest it made; "" for the player's (their file name says it)."""
    found = read(home, name).get("title")
    return found if isinstance(found, str) else ""


def record(home: Home, name: str, meta: dict) -> Path:
    """Write quest ``name``'s record (private: an original file name may be someone's secret)."""
    home.lineage.mkdir(parents=True, exist_ok=True)
    text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
    return atomic_write(meta_path(home, name), text, private=True)


def write_quest(home: Home, folder: Path, name: str, text: str, meta: dict) -> Path:
    """A quest the trainer made, into ``folder``: its record first, so the quest is never seen
    without it. ``meta["source"]`` says which kind of quest it is."""
    record(home, name, meta)
    return atomic_write(folder / name, text)
