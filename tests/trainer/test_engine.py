"""The engine: packing keeps every example's loss, steps match the padded reference, OOM halves
the micro-batch without changing the step, the schedule, and the training state round trip."""

from __future__ import annotations

import itertools
import random

import msgspec
import numpy as np
import pytest
import torch
from conftest import fast_config

from realm.config import TrainConfig
from realm.model.chatml import IGNORE_INDEX, EncodedExample
from trainer.data import collate
from trainer.engine import Engine, lr_schedule
from trainer.packing import GROUP_COST_TOKENS, pack, plan_groups, plan_rows

MAX_LENGTH = 64


def _chats(n: int, seed: int = 0) -> list[list[dict]]:
    rng = random.Random(seed)
    words = ["apple", "river", "stone", "cloud", "ember", "frost", "grove", "haven"]
    chats = []
    for _ in range(n):
        prompt = " ".join(rng.choice(words) for _ in range(rng.randint(1, 8)))
        chats.append([{"role": "user", "content": prompt}, {"role": "assistant", "content": prompt[::-1]}])
    return chats


def _raw_text(engine: Engine, n: int) -> list[EncodedExample]:
    """Raw-text examples: loss on every token, the case where a boundary leak would show."""
    out = []
    for i in range(n):
        ids = engine.tokenizer("the grove by the river " * (4 * i + 1), add_special_tokens=False)["input_ids"]
        out.append(EncodedExample(ids, list(ids)))
    return out


@pytest.fixture(scope="module")
def engine():
    return Engine(fast_config(max_length=MAX_LENGTH, threads=1))


def _group_cost(lengths: list[int], groups: list[list[int]]) -> int:
    return sum(len(group) * max(lengths[i] for i in group) + GROUP_COST_TOKENS for group in groups)


@pytest.mark.parametrize("seed", range(6))
def test_attention_groups_are_the_cheapest_split_of_the_sorted_lengths(seed):
    rng = random.Random(seed)
    lengths = [rng.randint(1, 300) for _ in range(rng.randint(1, 9))]
    groups = plan_groups(lengths)

    assert sorted(i for group in groups for i in group) == list(range(len(lengths)))
    flat = [lengths[i] for group in groups for i in group]
    assert flat == sorted(flat)  # contiguous runs of the sorted lengths
    ordered = sorted(lengths)
    best = min(  # every way to cut the sorted lengths into runs
        _group_cost(ordered, [list(range(a, b)) for a, b in zip((0, *cuts), (*cuts, len(ordered)))])
        for k in range(len(ordered))
        for cuts in itertools.combinations(range(1, len(ordered)), k)
    )
    assert _group_cost(lengths, groups) == best


def test_equal_lengths_share_a_group_and_far_apart_ones_do_not():
    assert plan_groups([50, 50, 50]) == [[0, 1, 2]]
    assert plan_groups([300, 10, 10]) == [[1, 2], [0]]


def test_grouped_layout_pads_each_slot_after_its_example():
    examples = [
        EncodedExample([5, 6, 7], [-100, 6, 7]),
        EncodedExample([8, 9], [8, 9]),
        EncodedExample([4] * 40, [4] * 40),
    ]
    packed = pack(examples, MAX_LENGTH, grouped=True)

    assert packed.cu_seqlens.tolist() == [0, 3, 6, 46]  # the short two share width 3, the long one alone
    assert packed.input_ids[0, :6].tolist() == [8, 9, 0, 5, 6, 7]
    assert packed.labels[0, :6].tolist() == [IGNORE_INDEX, 9, IGNORE_INDEX, IGNORE_INDEX, 6, 7]
    assert packed.position_ids[0, :6].tolist() == [0, 1, 2, 0, 1, 2]
    assert packed.example_ids[0, :6].tolist() == [1, 1, 1, 0, 0, 0]
    assert packed.rows == 2 and packed.tokens == 45 and packed.target_tokens == 1 + 2 + 39


def test_rows_are_filled_first_fit_decreasing():
    rows = plan_rows([60, 10, 30, 50, 4, 64], 64)
    assert sorted(i for row in rows for i in row) == list(range(6))
    assert all(sum([60, 10, 30, 50, 4, 64][i] for i in row) <= 64 for row in rows)
    assert len(rows) == 4  # 64 | 60+4 | 50+10 | 30


@pytest.mark.parametrize("grouped", [True, False], ids=["grouped-slots", "end-to-end"])
def test_packed_per_example_losses_equal_each_example_alone(engine, grouped, monkeypatch):
    monkeypatch.setattr(engine, "grouped", grouped)
    examples = engine.encode(_chats(12)) + _raw_text(engine, 5)
    assert any(len(ex.input_ids) >= MAX_LENGTH for ex in examples), "include an example cut at max_length"
    packed = pack(examples, MAX_LENGTH, grouped=grouped)
    assert packed.rows < len(examples)  # several examples share a row (an attention group when grouped)
    if grouped:
        assert packed.input_ids.shape[1] > packed.tokens  # some pads, and they must change nothing

    packed_losses = engine.example_losses(examples)

    alone = []
    with torch.no_grad():
        for ex in examples:
            ids = torch.tensor([ex.input_ids[:MAX_LENGTH]])
            labels = torch.tensor(ex.labels[:MAX_LENGTH])
            logits = engine.model(input_ids=ids, use_cache=False).logits[0, :-1]
            alone.append(
                torch.nn.functional.cross_entropy(logits, labels[1:], ignore_index=IGNORE_INDEX, reduction="sum").item()
            )
    for got, want in zip(packed_losses, alone):
        assert got == pytest.approx(want, rel=1e-5, abs=1e-5)


def test_the_last_layer_mlp_runs_on_target_rows_only_and_generation_is_untouched(engine):
    examples = engine.encode(_chats(6, seed=1))
    seen = []
    mlp = engine.model.model.layers[-1].mlp
    handle = mlp.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[1]))
    try:
        engine.example_losses(examples)
        targets = pack(examples, MAX_LENGTH).target_tokens
        assert engine.targets_only and seen == [targets]
        seen.clear()
        ids = torch.tensor([examples[0].input_ids])
        with torch.no_grad():
            engine.model(input_ids=ids, use_cache=False)  # no target_rows: the stock layer, every row
        assert seen == [ids.shape[1]]
    finally:
        handle.remove()


def test_a_packed_step_equals_a_padded_step_through_stock_attention():
    config = fast_config(max_length=MAX_LENGTH, threads=1, warmup_steps=1, batch_size=4, grad_accum=2)
    packed_engine = Engine(config)
    reference = Engine(config)
    reference.model.set_attn_implementation("sdpa")
    # plain SGD: the weights then move by exactly the gradient (Adam's first step is ~lr * sign(g),
    # which turns rounding noise in near-zero gradients into full-size differences)
    for engine in (packed_engine, reference):
        _use_sgd(engine)
    batch = packed_engine.encode(_chats(8, seed=3))

    result = packed_engine.train_step(batch)

    # the reference: right-padded micro-batches, HF's own causal+padding mask, summed token loss
    targets = sum(sum(1 for label in ex.labels[1:] if label != IGNORE_INDEX) for ex in batch)
    total = 0.0
    for start in range(0, len(batch), 4):
        inputs = collate(batch[start : start + 4], reference.pad_id)
        labels = inputs.pop("labels")
        logits = reference.model(**inputs, use_cache=False).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
        )
        (loss / targets).backward()
        total += loss.item()
    norm = torch.nn.utils.clip_grad_norm_(reference.model.parameters(), config.train.max_grad_norm)
    reference.optimizer.step()

    assert result.loss == pytest.approx(total / targets, rel=1e-5)
    assert result.grad_norm == pytest.approx(float(norm), rel=1e-4)
    for mine, theirs in zip(packed_engine.model.parameters(), reference.model.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)


def _use_sgd(engine: Engine) -> None:
    engine.optimizer = torch.optim.SGD(engine.model.parameters(), lr=1.0)
    engine.scheduler = torch.optim.lr_scheduler.LambdaLR(engine.optimizer, lambda step: 1.0)


class _OutOfMemoryAbove:
    """Raises torch's real OutOfMemoryError from the model's forward when a micro-batch holds more
    than ``limit`` tokens: the boundary where a CUDA allocation would fail. (No GPU here, so the
    exception is injected; the recovery path around it is the engine's real one.)"""

    def __init__(self, model: torch.nn.Module, limit: int) -> None:
        self.limit = limit
        self.raised = 0
        self.handle = model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        tokens = kwargs["input_ids"].numel()
        if module.training and tokens > self.limit:
            self.raised += 1
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate for {tokens} tokens")


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_step():
    config = fast_config(max_length=MAX_LENGTH, threads=1, batch_size=8, grad_accum=1, warmup_steps=1)
    engines = []
    for _ in range(2):
        engines.append(Engine(config))
        _use_sgd(engines[-1])  # weights move by exactly the gradient: see the packed-step test
    hook = _OutOfMemoryAbove(engines[0].model, limit=8 * 20)  # 8 examples (~25 tokens) do not fit
    batch = engines[0].encode(_chats(8, seed=5))

    first = engines[0].train_step(batch)
    second = engines[0].train_step(batch)
    batch_sizes = [first.micro_batch, second.micro_batch]
    reference = [engines[1].train_step(batch), engines[1].train_step(batch)]

    assert hook.raised >= 1 and first.oom_retries >= 1 and second.oom_retries == 0
    assert batch_sizes[0] < 8 and batch_sizes[1] == batch_sizes[0]  # stays halved
    assert [first.loss, second.loss] == pytest.approx([r.loss for r in reference], rel=1e-5)
    assert [first.grad_norm, second.grad_norm] == pytest.approx([r.grad_norm for r in reference], rel=1e-4)
    for mine, theirs in zip(engines[0].model.parameters(), engines[1].model.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)


def test_warmup_then_constant_and_optional_cosine():
    constant = lr_schedule(TrainConfig(warmup_steps=4))
    assert [constant(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert constant(10_000) == 1.0
    cosine = lr_schedule(TrainConfig(warmup_steps=2, schedule="cosine", cosine_steps=10, min_lr_ratio=0.1))
    assert cosine(1) == 1.0 and cosine(2) == 1.0
    assert cosine(7) == pytest.approx(0.55)
    assert cosine(12) == pytest.approx(0.1) and cosine(100) == pytest.approx(0.1)


def test_training_state_round_trip_restores_rng_and_progress(tmp_path):
    config = fast_config(max_length=MAX_LENGTH, threads=1)
    engine = Engine(config)
    batch = engine.encode(_chats(4))
    engine.train_step(batch)
    engine.progress = {"quests": {"q.jsonl": 3}, "active": "q.jsonl"}
    engine.micro_batch = 2
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    engine.save(tmp_path)
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))

    restored = Engine(config, checkpoint=tmp_path)
    assert restored.step == 1 and restored.micro_batch == 2
    assert restored.progress == {"quests": {"q.jsonl": 3}, "active": "q.jsonl"}
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    a, b = engine.train_step(batch), restored.train_step(batch)
    assert a.loss == pytest.approx(b.loss, abs=1e-6)


def test_a_restart_takes_lr_and_weight_decay_from_the_config_not_the_checkpoint(tmp_path):
    config = fast_config(max_length=MAX_LENGTH, threads=1, lr=1e-3, warmup_steps=2)
    engine = Engine(config)
    batch = engine.encode(_chats(4))
    for _ in range(3):
        engine.train_step(batch)
    engine.save(tmp_path)

    same = Engine(config, checkpoint=tmp_path)
    assert [g["lr"] for g in same.optimizer.param_groups] == [g["lr"] for g in engine.optimizer.param_groups]
    edited = msgspec.structs.replace(config, train=msgspec.structs.replace(config.train, lr=4e-4, weight_decay=0.05))
    restarted = Engine(edited, checkpoint=tmp_path)
    assert all(g["lr"] == pytest.approx(4e-4) and g["weight_decay"] == 0.05 for g in restarted.optimizer.param_groups)
    assert restarted.train_step(batch).lr == pytest.approx(4e-4)


def test_step_flops_count_the_decoder_per_token_the_head_per_target_and_attention(engine):
    ex = EncodedExample([1] * 10, [IGNORE_INDEX] * 6 + [1] * 4)  # 10 tokens, 4 of them targets
    layers, width = 4, 128
    model = engine.unwrapped
    head = model.get_output_embeddings().weight.numel()
    assert model.get_input_embeddings().weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()  # tied
    body = engine.parameters - head  # the embedding is a lookup; tied, its weights are the head's
    assert engine.step_flops([ex]) == pytest.approx(6 * body * 10 + 6 * head * 4 + 6 * layers * width * 100)


def test_a_left_padded_batch_generates_what_each_prompt_generates_alone(engine):
    """Eval rounds generate frozen, preview and probe prompts of different lengths together:
    the engine's attention must honour the padding, or every short prompt answers wrongly."""
    from realm.model.greedy import generate

    prompts = [[{"role": "user", "content": "①"}], [{"role": "user", "content": "①⓪①① + ⓪①①⓪ = (columns) " * 3}],
               [{"role": "user", "content": "reverse apple"}]]  # fmt: skip
    together = generate(engine.unwrapped, engine.tokenizer, prompts, max_new_tokens=12, batch_size=8)
    alone = [generate(engine.unwrapped, engine.tokenizer, [p], max_new_tokens=12, batch_size=1)[0] for p in prompts]
    assert together == alone
