"""The loss without full-vocabulary logits for every row at once.

A 0.6B model with a 151,936-token vocabulary turns 16 examples of 2,048 tokens into up to
33k target rows: their logits alone are 20 GB in float32, and autograd would keep them for the
backward. Here the LM head and the cross-entropy run on chunks of rows under activation
checkpointing: only one chunk's logits exist at a time, in the forward and again in the
backward, which recomputes them. The losses are the same as the stock path's (each row's
cross-entropy does not depend on the others).

A chunk holds ``CHUNK_ELEMENTS`` logits, so a small vocabulary (DIO-nano's 1,022) never chunks
and pays nothing. ``install`` gives the causal-LM module a ``loss_targets`` keyword: called
with it, its forward returns the per-row losses instead of logits. It is the module's own
forward (as DDP needs: its gradient hooks are prepared by the wrapped module's call), and any
other call (generation, the oracle, ``save_pretrained``) takes the stock path.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

from trainer import target_rows

CHUNK_ELEMENTS = 1 << 26  # logits per chunk: 256 MB in float32


def install(model: torch.nn.Module) -> bool:
    """Add the ``loss_targets`` path to ``model`` (a causal LM with ``.model`` and ``.lm_head``);
    False where it has not that shape."""
    base, head = getattr(model, "model", None), getattr(model, "lm_head", None)
    if base is None or not isinstance(head, torch.nn.Linear):
        return False
    stock = model.forward

    def forward(*args, loss_targets: torch.Tensor | None = None, rows: torch.Tensor | None = None, **kwargs):
        if loss_targets is None:
            return stock(*args, **kwargs)
        hidden = base(*args, **kwargs).last_hidden_state[0]
        if target_rows.ROWS_KWARG not in kwargs:  # the last layer kept every row: take the targets'
            hidden = hidden[rows]
        return row_losses(hidden, head.weight, loss_targets)

    model.forward = forward
    return True


def chunk_rows(vocabulary: int) -> int:
    return max(1, CHUNK_ELEMENTS // max(vocabulary, 1))


def row_losses(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each row of ``hidden`` (rows x width) against ``targets``, through the
    LM head ``weight`` (vocabulary x width), one chunk of rows at a time."""
    size = chunk_rows(weight.shape[0])
    if hidden.shape[0] <= size:
        return _chunk_losses(hidden, weight, targets)
    pieces = [
        checkpoint(
            _chunk_losses, hidden[start : start + size], weight, targets[start : start + size], use_reentrant=False
        )
        for start in range(0, hidden.shape[0], size)
    ]
    return torch.cat(pieces)


def _chunk_losses(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = torch.nn.functional.linear(hidden, weight).float()
    return torch.nn.functional.cross_entropy(logits, targets, reduction="none")
