"""Packing: many short examples in full ``max_length`` rows, with no attention across them.

Each row holds whole examples back to back (first-fit decreasing); position ids restart at 0
for every example, and the attention runs within each example (``cu_seqlens``), so an example sees
exactly what it would see alone. The rows are then laid end to end as one sequence: a row's
pad tail is never computed.

Why per-example attention and not a block mask: on CPU a block-diagonal mask through SDPA
still computes every token pair of the row, so it gains nothing over padding; here examples of
similar length are gathered into small right-padded batches, one causal SDPA call each (the
varlen idea: only pairs inside an example are computed), and the MLPs and projections run on
the packed tokens with no padding at all.
On CUDA with ``flash_attn`` installed, HF's ``flash_attention_2`` takes the same boundaries as
``cu_seq_lens`` and runs its varlen kernel.

The packed labels are the examples' own (unshifted, like HF's); the first position of every
example is masked (it is never a target anyway), so the last token of one example never learns to predict the next one's
first token.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F

from trainer.data import IGNORE_INDEX, EncodedExample

ATTENTION = "realm_per_example"


class PackedBatch(NamedTuple):
    """The packed rows laid end to end as one sequence of shape (1, tokens)."""

    input_ids: torch.Tensor
    labels: torch.Tensor  # IGNORE_INDEX on every example's first token (and wherever the example had it)
    position_ids: torch.Tensor  # restarting at 0 for every example
    example_ids: torch.Tensor  # which input example each token belongs to
    cu_seqlens: torch.Tensor  # int32 start offsets of the examples, then the total
    max_seqlen: int
    rows: int  # max_length rows the plan filled
    tokens: int  # real tokens (all of them: pad tails are never computed)
    target_tokens: int  # tokens that carry a loss


def plan_rows(lengths: Sequence[int], max_length: int) -> list[list[int]]:
    """Example indices per row: first-fit decreasing, so rows come out nearly full."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    room: list[int] = []
    for index in order:
        need = min(lengths[index], max_length)
        for row, free in enumerate(room):
            if need <= free:
                rows[row].append(index)
                room[row] -= need
                break
        else:
            rows.append([index])
            room.append(max_length - need)
    return rows


def pack(examples: Sequence[EncodedExample], max_length: int) -> PackedBatch:
    """``examples`` (longer than ``max_length`` ones are cut) packed into rows, rows laid end to end.

    A row's pad tail is left out rather than computed: with attention per example the model
    sees each example exactly as it would alone, so the rows need no common width.
    """
    if not examples:
        raise ValueError("pack needs at least one example")
    lengths = [min(len(example.input_ids), max_length) for example in examples]
    plan = plan_rows(lengths, max_length)
    order = [index for row in plan for index in row]
    input_ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    owners: list[int] = []
    offsets = [0]
    for index in order:
        n = lengths[index]
        input_ids += examples[index].input_ids[:n]
        labels += [IGNORE_INDEX] + list(examples[index].labels[1:n])  # no target across a boundary
        positions += range(n)
        owners += [index] * n
        offsets.append(offsets[-1] + n)
    label_tensor = torch.tensor([labels], dtype=torch.long)
    return PackedBatch(
        input_ids=torch.tensor([input_ids], dtype=torch.long),
        labels=label_tensor,
        position_ids=torch.tensor([positions], dtype=torch.long),
        example_ids=torch.tensor([owners], dtype=torch.long),
        cu_seqlens=torch.tensor(offsets, dtype=torch.int32),
        max_seqlen=max(lengths),
        rows=len(plan),
        tokens=len(input_ids),
        target_tokens=int((label_tensor != IGNORE_INDEX).sum()),
    )


def shifted_targets(labels: torch.Tensor) -> torch.Tensor:
    """Labels as next-token targets per position (the last position has none)."""
    targets = torch.full_like(labels, IGNORE_INDEX)
    targets[:, :-1] = labels[:, 1:]
    return targets


# --- the attention -------------------------------------------------------------------------------


def per_example_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Causal attention within every example named by ``cu_seq_lens_q``, never across them.

    Shapes follow HF's attention interface: ``query`` is (batch, heads, seq, dim), ``key`` and
    ``value`` may have fewer (grouped) heads; the output is (batch, seq, heads, dim). Without
    ``cu_seq_lens_q`` (generation, evaluation of unpacked batches) it is plain causal SDPA.
    """
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    cu_seqlens = kwargs.get("cu_seq_lens_q")
    if cu_seqlens is None:
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, is_causal=attention_mask is None and query.shape[2] > 1,
            dropout_p=dropout, scale=scaling,
        )
        return out.transpose(1, 2).contiguous(), None
    batch, heads, seq, dim = query.shape
    # (batch, heads, seq, dim) -> (heads, batch * seq, dim): the examples are slices of the flat rows
    flat = [t.transpose(0, 1).reshape(heads, batch * seq, dim) for t in (query, key, value)]
    groups, inverse = _attention_plan(cu_seqlens)
    pieces = []
    for gather, valid in groups:
        # examples of similar length, right-padded to the longest of them, in one causal SDPA
        # call: a real query only sees keys at or before it, so the pads never enter its attention
        q, k, v = (t[:, gather].transpose(0, 1) for t in flat)  # (examples, heads, longest, dim)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout, scale=scaling)
        pieces.append(out.transpose(1, 2)[valid])  # (tokens, heads, dim)
    out = torch.cat(pieces, dim=0)[inverse]  # back in packed order
    return out.reshape(batch, seq, heads, dim), None


PADDING_SLACK = 1.25  # a group's padded size may exceed its real tokens by this factor
_plan_cache: dict = {}


def _attention_plan(cu_seqlens: torch.Tensor):
    """Examples grouped by length (each group one SDPA call) and the permutation back to packed
    order. The same for every layer of a forward pass, so it is built once and cached."""
    key = (cu_seqlens.data_ptr(), cu_seqlens.numel(), cu_seqlens.device)
    cached = _plan_cache.get(key)
    if cached is not None and torch.equal(cached[0], cu_seqlens):
        return cached[1]
    bounds = cu_seqlens.tolist()
    spans = sorted(zip(bounds[:-1], bounds[1:]), key=lambda span: span[1] - span[0])
    groups: list[list[tuple[int, int]]] = []
    for span in spans:  # ascending length: the newest span is the group's longest
        group = groups[-1] if groups else None
        n = span[1] - span[0]
        if group is not None and n * (len(group) + 1) <= PADDING_SLACK * (sum(e - s for s, e in group) + n):
            group.append(span)
        else:
            groups.append([span])
    device = cu_seqlens.device
    plan_groups, order = [], []
    for group in groups:
        longest = group[-1][1] - group[-1][0]
        steps = torch.arange(longest, device=device)
        starts = torch.tensor([s for s, _ in group], device=device)
        lengths = torch.tensor([e - s for s, e in group], device=device)
        valid = steps[None, :] < lengths[:, None]
        gather = torch.where(valid, starts[:, None] + steps[None, :], torch.zeros_like(steps)[None, :])
        plan_groups.append((gather, valid))
        order += [position for s, e in group for position in range(s, e)]
    inverse = torch.empty(len(order), dtype=torch.long, device=device)
    inverse[torch.tensor(order, device=device)] = torch.arange(len(order), device=device)
    _plan_cache.clear()
    _plan_cache[key] = (cu_seqlens.clone(), (plan_groups, inverse))
    return plan_groups, inverse


def _no_mask(*args, **kwargs) -> None:
    """The per-example attention needs no mask tensor: the segments are the mask."""
    return None


def register() -> str:
    """Make ``ATTENTION`` a valid ``attn_implementation`` for HF models; return its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(ATTENTION, per_example_attention)
    AttentionMaskInterface.register(ATTENTION, _no_mask)
    return ATTENTION


def flash_attention_available(device: torch.device) -> bool:
    if device.type != "cuda":
        return False
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return False
    return True


def attention_kwargs(batch: PackedBatch, device: torch.device) -> dict:
    """The varlen boundaries, as HF's flash-attention kwargs (our CPU path reads the same)."""
    cu = batch.cu_seqlens.to(device)
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": batch.max_seqlen, "max_length_k": batch.max_seqlen}
