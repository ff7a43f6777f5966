"""Encoded examples in, training tensors out: batching."""

from __future__ import annotations

import torch

from realm.model.chatml import IGNORE_INDEX, EncodedExample


def collate(examples: list[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad into ``input_ids``, ``attention_mask`` and ``labels`` (IGNORE_INDEX on pads)."""
    if not examples:
        raise ValueError("collate needs at least one example")
    width = max(len(example.input_ids) for example in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
