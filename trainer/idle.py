"""The quest DIO makes for itself when the queue is empty, so the game never idles.

A placeholder until skills supply idle quests: small additions, exact and learnable.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from realm.files import atomic_write
from realm.home import Home
from trainer import lineage


def idle_examples(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    pairs = [(a, b) for a in range(50) for b in range(50)]
    # distinct pairs where there are enough: validation reports exact duplicates
    chosen = rng.sample(pairs, n) if n <= len(pairs) else [rng.choice(pairs) for _ in range(n)]
    return [
        {"messages": [{"role": "user", "content": f"{a}+{b}="}, {"role": "assistant", "content": str(a + b)}]}
        for a, b in chosen
    ]


def idle_quest(n: int, seed: int) -> tuple[str, str]:
    """The placeholder idle quest for ``seed``: its file name and its JSONL text."""
    return f"idle-{seed:08d}.jsonl", "".join(json.dumps(ex) + "\n" for ex in idle_examples(n, seed))


def queue_idle_quest(home: Home, n: int, seed: int) -> Path:
    """Queue the placeholder idle quest at low priority, with its lineage record."""
    name, text = idle_quest(n, seed)
    meta = {"kind": "idle", "source": "idle", "generator": "placeholder", "seed": seed, "examples": n}
    return lineage.write_quest(home, home.queued("low"), name, text, meta)


def write_idle_quest(folder: Path, n: int, seed: int) -> Path:
    """The placeholder idle quest as a plain file in ``folder`` (a validation set, say)."""
    name, text = idle_quest(n, seed)
    return atomic_write(folder / name, text)
