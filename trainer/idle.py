"""The quest DIO makes for itself when the queue is empty, so the game never idles.

A placeholder until skills supply idle quests: small additions, exact and learnable.
"""

from __future__ import annotations

import json
import random
from pathlib import Path


def idle_examples(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    examples = []
    for _ in range(n):
        a, b = rng.randint(0, 49), rng.randint(0, 49)
        examples.append(
            {"messages": [{"role": "user", "content": f"{a}+{b}="}, {"role": "assistant", "content": str(a + b)}]}
        )
    return examples


def write_idle_quest(folder: Path, n: int, seed: int) -> Path:
    """Write an idle quest atomically into ``folder`` and return its path."""
    path = folder / f"idle-{seed:08d}.jsonl"
    tmp = folder / f".{path.name}.tmp"
    tmp.write_text("".join(json.dumps(ex) + "\n" for ex in idle_examples(n, seed)), encoding="utf-8")
    tmp.replace(path)
    return path
