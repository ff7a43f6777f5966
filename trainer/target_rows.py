"""The last decoder layer's MLP only where there is a target.

A position's output after the last layer feeds nothing but its own logits, and the engine only
computes logits where there is a target (``logits_to_keep``). Every layer's keys and values are
needed at every position (later positions attend to them), so the last layer's attention still
runs on all of them; but its residual add, post-attention norm and MLP are row-wise, so on a
position without a target they are work whose result is thrown away. With ``target_rows`` the
last layer keeps only those rows after its attention: the loss and every gradient are the same
(the skipped rows had none), and the MLP, the largest block of the layer, runs on the targets
alone (about a third of the tokens of a chat whose answer is its last third).

This replaces the forward of one layer *instance* (no new modules, so weights and checkpoints are
untouched) and falls back to the stock forward whenever ``target_rows`` is not given
(generation, the Oracle, anything else calling the model).
"""

from __future__ import annotations

import torch

ROWS_KWARG = "target_rows"
_PARTS = ("input_layernorm", "self_attn", "post_attention_layernorm", "mlp")


def install(model: torch.nn.Module) -> bool:
    """Give ``model``'s last decoder layer the ``target_rows`` path; False where the layer is not
    the usual pre-norm (norm, attention, residual, norm, MLP, residual) block."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    if not layers:
        return False
    last = layers[-1]
    if not all(hasattr(last, part) for part in _PARTS):
        return False
    stock = last.forward

    def forward(hidden_states: torch.Tensor, *args, target_rows: torch.Tensor | None = None, **kwargs):
        if target_rows is None or args:
            return stock(hidden_states, *args, **kwargs)
        return _targets_only(last, hidden_states, target_rows, kwargs)

    last.forward = forward
    return True


def _targets_only(
    layer: torch.nn.Module, hidden_states: torch.Tensor, rows: torch.Tensor, kwargs: dict
) -> torch.Tensor:
    """The stock pre-norm block, with the rows cut to ``rows`` right after the attention."""
    attended, _ = layer.self_attn(hidden_states=layer.input_layernorm(hidden_states), **kwargs)
    hidden_states = hidden_states[:, rows] + attended[:, rows]
    return hidden_states + layer.mlp(layer.post_attention_layernorm(hidden_states))
