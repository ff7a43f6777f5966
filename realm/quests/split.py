"""A quest's held-out split: de-duplicated first, then chosen by content hash.

Two examples are the same example when they match after whitespace and case are normalised,
so a held-out example can never be trained through a copy of itself. The held-out sample is
the examples whose normalised content hashes lowest: the same lines for the same file on every
restart and every re-add, wherever they sit in the file. A quest with fewer than
``MIN_FOR_HELD_OUT`` distinct examples is too small to spare any and gets no held-out check.
"""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

MIN_FOR_HELD_OUT = 20  # distinct examples a quest needs before it gives up any to a held-out check
HELD_OUT_SHARE = 10  # at most one in this many distinct examples is held out


class Split(NamedTuple):
    train: list  # examples to train on (every copy of a trained example, under duplicates: keep)
    held_out: list  # one copy of each held-out example: never trained
    distinct: int  # examples left after de-duplication
    exact_duplicates: int  # copies identical to an earlier example
    near_duplicates: int  # copies that differ from an earlier example only in whitespace or case

    def summary(self) -> str:
        """One line for the player: what was folded and what is held out."""
        parts = []
        folded = self.exact_duplicates + self.near_duplicates
        if folded:
            parts.append(
                f"{folded} duplicate(s) folded ({self.exact_duplicates} exact, {self.near_duplicates} "
                "differing only in whitespace or case)"
            )
        if self.held_out:
            parts.append(f"{len(self.held_out)} of {self.distinct} distinct examples held out for the quest's val loss")
        else:
            parts.append(f"no held-out check: {self.distinct} distinct example(s), under {MIN_FOR_HELD_OUT}")
        return "; ".join(parts)


def exact_key(example) -> str:
    return json.dumps(example, ensure_ascii=False, sort_keys=True)


def normal_key(example) -> str:
    """The example with every run of whitespace made one space and every letter folded to lower case."""
    if isinstance(example, str):
        return " ".join(example.split()).casefold()
    return json.dumps([[m["role"], " ".join(m["content"].split()).casefold()] for m in example], ensure_ascii=False)


def content_hash(example) -> str:
    return hashlib.sha256(normal_key(example).encode("utf-8")).hexdigest()


def split(examples: list, *, max_held_out: int, keep_duplicates: bool, salt: str = "") -> Split:
    """De-duplicate ``examples``, then hold out up to ``max_held_out`` of them by content hash.

    ``keep_duplicates``: a trained example keeps every copy (each copy is a step's worth of
    weight, as the user wrote it); otherwise one copy is trained. A held-out example's copies
    are never trained either way. ``salt`` goes into the hash: "" for a person's file (the same
    lines on every restart and re-add); the quest's name for the game's own quests, which draw
    from one small problem space again and again and would otherwise never train the same few.
    """
    groups: dict[str, list] = {}
    exact_seen: set[str] = set()
    exact = near = 0
    for example in examples:
        key, exact_k = normal_key(example), exact_key(example)
        if key in groups:
            if exact_k in exact_seen:
                exact += 1
            else:
                near += 1
        exact_seen.add(exact_k)
        groups.setdefault(key, []).append(example)
    n_held = min(max_held_out, len(groups) // HELD_OUT_SHARE) if len(groups) >= MIN_FOR_HELD_OUT else 0
    by_hash = sorted(groups, key=lambda key: hashlib.sha256((salt + key).encode("utf-8")).hexdigest())
    held_keys = set(by_hash[:n_held])
    train, held_out = [], []
    for key, copies in groups.items():
        if key in held_keys:
            held_out.append(copies[0])
        else:
            train.extend(copies if keep_duplicates else copies[:1])
    return Split(train, held_out, len(groups), exact, near)
