"""A quest's training order, cut into optimizer steps as it is trained.

The examples' order is fixed when the quest starts: one shuffled pass per epoch (each pass
its own shuffle), then the held-out examples' pass when ``train.val_after`` is ``train``.
The cut into steps is not: each step takes the next ``batch_size * grad_accum`` examples of
the current pass, so a live batch-size change applies from the next step, and the quest's
position is counted in examples, which mean the same under any batch size.
"""

from __future__ import annotations

import math
import random


def shuffled(examples: list, seed: str) -> list:
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    return [examples[i] for i in order]


class QuestPlan:
    """``passes``: lists of examples in training order; ``held_out``: whether the last pass is the
    held-out examples' (trained after their last validation)."""

    def __init__(self, passes: list[list], held_out: bool = False, done: int = 0, per_step: int = 1) -> None:
        self.held_out = held_out and bool(passes and passes[-1])
        self.passes = [p for p in passes if p]
        self.epochs = len(self.passes) - (1 if self.held_out else 0)
        self.done = min(done, self.examples)  # examples trained, before a restart too
        self.steps_done = math.ceil(self.done / per_step)  # optimizer steps of this quest so far
        self.trained_epoch = self.epoch

    @property
    def examples(self) -> int:
        return sum(len(p) for p in self.passes)

    @property
    def finished(self) -> bool:
        return self.done >= self.examples

    def _position(self) -> tuple[int, int]:
        """(pass index, examples of it trained)."""
        left = self.done
        for index, examples in enumerate(self.passes):
            if left < len(examples):
                return index, left
            left -= len(examples)
        return len(self.passes), 0

    @property
    def epoch(self) -> int:
        """The epoch (1-based) the next step trains; the held-out pass counts as the last epoch."""
        return min(self._position()[0] + 1, max(1, self.epochs))

    @property
    def in_held_out(self) -> bool:
        """The held-out pass is being or has been trained: their loss no longer tells anything."""
        return self.held_out and self._position()[0] >= len(self.passes) - 1

    def at_held_out_start(self) -> bool:
        index, offset = self._position()
        return self.held_out and index == len(self.passes) - 1 and offset == 0

    def next_batch(self, per_step: int) -> list:
        """The next step's examples (never across two passes); ``advance`` once trained."""
        index, offset = self._position()
        return self.passes[index][offset : offset + per_step]

    def advance(self, n: int) -> None:
        """``n`` examples of the next batch were trained; ``trained_epoch`` is the epoch they were of."""
        self.trained_epoch = self.epoch
        self.done += n
        self.steps_done += 1

    def steps_left(self, per_step: int) -> int:
        index, offset = self._position()
        if index >= len(self.passes):
            return 0
        rest = [len(self.passes[index]) - offset] + [len(p) for p in self.passes[index + 1 :]]
        return sum(math.ceil(n / per_step) for n in rest)

    def total_steps(self, per_step: int) -> int:
        """Steps taken by this run plus those left at ``per_step``: the honest total for now."""
        return self.steps_done + self.steps_left(per_step)
