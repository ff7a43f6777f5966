"""Batched greedy generation for skill evals: left-padded prompts, the model's KV cache, and a
stop at ``<|im_end|>``.

Prompts are tokenized exactly as training tokenizes a chat (``chatml.encode_chat``: piece
by piece), followed by the ``<|im_start|>assistant\\n`` header, so DIO sees at eval time the
same token boundaries it was trained on.
"""

from __future__ import annotations

import functools
import inspect

import torch

from realm.model.chatml import IM_END, IM_START, Example, encode_chat, text_ids


def prompt_ids(tokenizer, messages: Example) -> list[int]:
    """Token ids of ``messages`` rendered as ChatML plus the assistant header."""
    ids = encode_chat(tokenizer, messages, max_length=1 << 30).input_ids if messages else []
    start = tokenizer(IM_START, add_special_tokens=False)["input_ids"]
    return ids + start + text_ids(tokenizer, "assistant\n")


def stop_id(tokenizer) -> int:
    """The token that ends an answer: ``<|im_end|>`` when it is one token, else EOS."""
    ids = tokenizer(IM_END, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else tokenizer.eos_token_id


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[Example],
    max_new_tokens: int = 64,
    batch_size: int = 32,
) -> list[str]:
    """Greedy completions of ``prompts`` (each a list of messages), in order."""
    stop = stop_id(tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    encoded = [prompt_ids(tokenizer, messages) for messages in prompts]
    # longest first keeps padding low within a batch; the order is restored at the end
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    results: list[str] = [""] * len(encoded)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        # Token-by-token decoding is a stream of tiny ops: extra threads only add sync cost,
        # and on a loaded CPU two threads measured 12-20x slower than one.
        torch.set_num_threads(1)
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            outputs = _greedy(model, [encoded[i] for i in chunk], max_new_tokens, stop, pad_id, device)
            for index, ids in zip(chunk, outputs):
                results[index] = tokenizer.decode(ids, skip_special_tokens=False)
    finally:
        torch.set_num_threads(threads)
        model.train(was_training)
    return results


def _greedy(model, batch: list[list[int]], max_new_tokens: int, stop_id: int, pad_id: int, device) -> list[list[int]]:
    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):  # left padding: every prompt ends at the last column
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention[row, width - len(ids) :] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    cache_kw = cache_keyword(type(model))
    out = model(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True, logits_to_keep=1)
    past = cache_of(out)
    next_ids = out.logits[:, -1].argmax(-1)
    produced: list[list[int]] = [[] for _ in batch]
    done = torch.zeros(len(batch), dtype=torch.bool, device=device)
    last_pos = positions[:, -1]
    for step in range(max_new_tokens):
        for row in range(len(batch)):
            if not done[row]:
                token = int(next_ids[row])
                if token == stop_id:
                    done[row] = True
                else:
                    produced[row].append(token)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        attention = torch.cat([attention, torch.ones((len(batch), 1), dtype=torch.long, device=device)], dim=1)
        last_pos = last_pos + 1
        out = model(
            input_ids=next_ids.unsqueeze(-1),
            attention_mask=attention,
            position_ids=last_pos.unsqueeze(-1),
            use_cache=True,
            **{cache_kw: past},
        )
        past = cache_of(out)
        next_ids = out.logits[:, -1].argmax(-1)
    return produced


@functools.cache
def cache_keyword(model_type: type) -> str:
    """transformers 5.x names the KV cache ``cache`` (the old ``past_key_values`` warns, then goes).
    The class's forward is read, not the instance's: the trainer's loss wraps the instance's."""
    params = inspect.signature(model_type.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_of(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values
