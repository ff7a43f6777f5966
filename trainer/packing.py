"""Packing: many short examples in one sequence, with no attention across them.

Position ids restart at 0 for every example, and the attention runs within each example
(``cu_seqlens``), so an example sees exactly what it would see alone.

The CPU layout (``grouped=True``): the examples are sorted by length and cut into groups of
similar length (``plan_groups``); inside a group every example gets a slot as wide as the
group's longest, its own tokens first and a few pads after. A group is then a rectangular
(examples, width) block of the sequence, so a layer's attention is one causal SDPA call per
group on a *view* of the packed queries, keys and values: no gather, no scatter, no dense mask,
and no token pair across examples is computed. A pad comes after its example's tokens, so
causal attention never lets a real token see it; its label is ignored. The MLPs and projections
run on the packed tokens plus those few pads (the grouping trades pads against SDPA calls).

Why not a block-diagonal mask: on CPU SDPA with a mask still computes every token pair of the
row and materialises a dense mask; why not a gather per group: its backward zero-fills and
accumulates full-size gradients once per group and layer, which cost more than the pads.

On CUDA with ``flash_attn`` installed (``grouped=False``) the examples are laid end to end with no
pads and HF's ``flash_attention_2`` runs its varlen kernel on the same ``cu_seq_lens``.

The packed labels are the examples' own (unshifted, like HF's); the first position of every
example is masked (it is never a target anyway), so the last token of one example never learns
to predict the next one's first token.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F

from realm.model.chatml import IGNORE_INDEX, EncodedExample

ATTENTION = "realm_per_example"


class PackedBatch(NamedTuple):
    """The packed rows laid end to end as one sequence of shape (1, tokens)."""

    input_ids: torch.Tensor
    labels: torch.Tensor  # IGNORE_INDEX on every example's first token, on pads (and wherever the example had it)
    position_ids: torch.Tensor  # restarting at 0 for every example's slot
    example_ids: torch.Tensor  # which input example each token (or pad) belongs to
    cu_seqlens: torch.Tensor  # int32 start offsets of the examples' slots, then the total
    max_seqlen: int
    rows: int  # attention groups (grouped) or max_length rows the plan filled (not grouped)
    tokens: int  # real tokens, pads not counted
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


GROUP_COST_TOKENS = 24  # an extra group's SDPA calls cost about as much as this many pads


def plan_groups(lengths: Sequence[int]) -> list[list[int]]:
    """Example indices per attention group, shortest examples first: the split of the sorted
    lengths that minimises padded tokens plus ``GROUP_COST_TOKENS`` per group (exact, by
    dynamic programming over the cut points)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cost of grouping the j shortest examples
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        width = lengths[order[j - 1]]  # the longest of any group that ends at j
        for i in range(j):
            cost = best[i] + (j - i) * width + GROUP_COST_TOKENS
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups: list[list[int]] = []
    j = n
    while j > 0:
        groups.append(order[cut[j] : j])
        j = cut[j]
    return groups[::-1]


def pack(examples: Sequence[EncodedExample], max_length: int, grouped: bool = True) -> PackedBatch:
    """``examples`` (longer than ``max_length`` ones are cut) in one sequence of shape (1, tokens).

    ``grouped``: slots padded to their group's width (``plan_groups``, the CPU attention's layout);
    otherwise no pads at all, examples in first-fit-decreasing row order (for varlen kernels).
    """
    if not examples:
        raise ValueError("pack needs at least one example")
    lengths = [min(len(example.input_ids), max_length) for example in examples]
    plan = plan_groups(lengths) if grouped else plan_rows(lengths, max_length)
    input_ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    owners: list[int] = []
    offsets = [0]
    for group in plan:
        width = max(lengths[index] for index in group)
        for index in group:
            n = lengths[index]
            slot = width if grouped else n
            pads = slot - n
            input_ids += examples[index].input_ids[:n] + [0] * pads  # a pad's id never matters
            labels += [IGNORE_INDEX] + list(examples[index].labels[1:n]) + [IGNORE_INDEX] * pads
            positions += range(slot)
            owners += [index] * slot
            offsets.append(offsets[-1] + slot)
    label_tensor = torch.tensor([labels], dtype=torch.long)
    return PackedBatch(
        input_ids=torch.tensor([input_ids], dtype=torch.long),
        labels=label_tensor,
        position_ids=torch.tensor([positions], dtype=torch.long),
        example_ids=torch.tensor([owners], dtype=torch.long),
        cu_seqlens=torch.tensor(offsets, dtype=torch.int32),
        max_seqlen=max(lengths),
        rows=len(plan),
        tokens=sum(lengths),
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
    gqa = query.shape[1] != key.shape[1]  # SDPA shares each key/value head itself: no repeated copies
    cu_seqlens = kwargs.get("cu_seq_lens_q")
    if cu_seqlens is None:
        out = F.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=attention_mask,
            is_causal=attention_mask is None and query.shape[2] > 1,
            dropout_p=dropout,
            scale=scaling,
            enable_gqa=gqa,
        )
        return out.transpose(1, 2).contiguous(), None
    batch, heads, seq, dim = query.shape
    sizes, shapes = _slot_groups(cu_seqlens)
    # (batch, heads, seq, dim) -> (heads, batch * seq, dim); a view when batch is 1 (the packed case).
    # split (not slicing or indexing): its backward is one cat, with no zero-filled full-size gradients
    parts = [t.transpose(0, 1).reshape(t.shape[1], batch * seq, dim).split(sizes, dim=1) for t in (query, key, value)]
    pieces = []
    for q, k, v, (examples, width) in zip(*parts, shapes):
        # one group: (heads, examples * width, dim) viewed as (examples, heads, width, dim)
        q, k, v = (t.unflatten(1, (examples, width)).transpose(0, 1) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout, scale=scaling, enable_gqa=gqa)
        pieces.append(out.transpose(1, 2).reshape(examples * width, heads, dim))
    out = torch.cat(pieces, dim=0) if len(pieces) > 1 else pieces[0]
    return out.reshape(batch, seq, heads, dim), None


_groups_cache: dict = {}


def _slot_groups(cu_seqlens: torch.Tensor) -> tuple[list[int], list[tuple[int, int]]]:
    """Runs of equally wide slots: their sizes in tokens and their (examples, width) shapes.

    The same for every layer of a forward pass, so it is worked out once per ``cu_seqlens``."""
    key = (cu_seqlens.data_ptr(), cu_seqlens.numel(), cu_seqlens.device)
    cached = _groups_cache.get(key)
    if cached is not None and torch.equal(cached[0], cu_seqlens):
        return cached[1]
    bounds = cu_seqlens.tolist()
    shapes: list[list[int]] = []
    for start, end in zip(bounds[:-1], bounds[1:]):
        width = end - start
        if shapes and shapes[-1][1] == width:
            shapes[-1][0] += 1
        else:
            shapes.append([1, width])
    plan = ([n * width for n, width in shapes], [(n, width) for n, width in shapes])
    _groups_cache.clear()
    _groups_cache[key] = (cu_seqlens.clone(), plan)
    return plan


def _mask(*args, attention_mask: torch.Tensor | None = None, **kwargs) -> torch.Tensor | None:
    """Packed training passes no padding mask: its segments are the mask, so there is none to
    build. A left-padded batch (generation for an eval round) does pass one, and gets SDPA's
    mask: without it every prompt would attend to its padding and answer wrongly."""
    if attention_mask is None:
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def register() -> str:
    """Make ``ATTENTION`` a valid ``attn_implementation`` for HF models; return its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(ATTENTION, per_example_attention)
    AttentionMaskInterface.register(ATTENTION, _mask)
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
    return {
        "cu_seq_lens_q": cu,
        "cu_seq_lens_k": cu,
        "max_length_q": batch.max_seqlen,
        "max_length_k": batch.max_seqlen,
    }
