"""The quest DIO makes for itself when the queue is empty, so the game never idles.

A placeholder until skills supply idle quests: small additions, exact and learnable.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from realm.files import atomic_write


def idle_examples(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    pairs = [(a, b) for a in range(50) for b in range(50)]
    # distinct pairs where there are enough: validation reports exact duplicates
    chosen = rng.sample(pairs, n) if n <= len(pairs) else [rng.choice(pairs) for _ in range(n)]
    return [
        {"messages": [{"role": "user", "content": f"{a}+{b}="}, {"role": "assistant", "content": str(a + b)}]}
        for a, b in chosen
    ]


def write_idle_quest(folder: Path, n: int, seed: int) -> Path:
    """Write an idle quest atomically into ``folder`` and return its path."""
    text = "".join(json.dumps(ex) + "\n" for ex in idle_examples(n, seed))
    return atomic_write(folder / f"idle-{seed:08d}.jsonl", text)
