"""Memory for a real model: the chunked loss, gradient checkpointing, float32 master weights
under bf16, and the estimate that refuses a run that cannot fit the card."""

from __future__ import annotations

import torch
from conftest import fast_config, write_chat_quest
from transformers import AutoModelForCausalLM, Qwen3Config

from realm.config import TrainConfig
from trainer import chunked_loss, memory
from trainer.engine import Engine

GIB = 2**30


def _chats(tmp_path, n: int = 16) -> list[list[dict]]:
    import json

    path = write_chat_quest(tmp_path / "q.jsonl", n)
    return [json.loads(line)["messages"] for line in path.read_text().splitlines()]


def _losses_and_grads(engine: Engine, batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
    engine.model.zero_grad(set_to_none=True)
    losses, _ = engine._token_losses(batch)
    losses.sum().backward()
    return losses.detach(), [p.grad.clone() for p in engine.model.parameters()]


def test_the_chunked_loss_equals_the_stock_loss_and_its_gradients(tmp_path, monkeypatch):
    engine = Engine(fast_config())
    engine.model.train()
    batch = engine._pack(engine.encode(_chats(tmp_path)))
    assert engine.chunked
    engine.chunked = False
    stock, stock_grads = _losses_and_grads(engine, batch)
    engine.chunked = True
    monkeypatch.setattr(chunked_loss, "CHUNK_ELEMENTS", engine.model.config.vocab_size * 7)  # 7 rows a chunk
    assert len(stock) > 7 * 10
    chunked, chunked_grads = _losses_and_grads(engine, batch)
    assert torch.equal(stock, chunked)
    for a, b in zip(stock_grads, chunked_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_gradient_checkpointing_trains_the_same_steps(tmp_path):
    chats = _chats(tmp_path, 32)
    runs = []
    for checkpointing in (False, True):
        engine = Engine(fast_config(gradient_checkpointing=checkpointing))
        batches = engine.batches(engine.encode(chats), order_seed="s")
        runs.append(([engine.train_step(b).loss for b in batches], next(engine.unwrapped.parameters()).detach()))
    (plain_losses, plain_weights), (checkpointed_losses, checkpointed_weights) = runs
    assert plain_losses == __import__("pytest").approx(checkpointed_losses, rel=1e-4)
    torch.testing.assert_close(plain_weights, checkpointed_weights, rtol=1e-4, atol=1e-6)


def test_bf16_autocast_keeps_float32_master_weights():
    engine = Engine(fast_config(precision="bf16"))
    assert engine.precision == "bf16"
    assert {p.dtype for p in engine.model.parameters()} == {torch.float32}


def _qwen3_06b():
    """Qwen3-0.6B's real shape on the meta device: its parameter count, no weights."""
    config = Qwen3Config(
        vocab_size=151_936,
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        tie_word_embeddings=True,
    )
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def test_qwen3_06b_at_2048_tokens_fits_24_gb_with_checkpointing_and_is_refused_without():
    model = _qwen3_06b()
    parameters = sum(p.numel() for p in model.parameters())
    assert 590e6 < parameters < 610e6
    fits = TrainConfig(batch_size=8, grad_accum=2, max_length=2048, gradient_checkpointing=True)
    need = memory.for_engine(model, fits, "bf16")
    assert memory.refusal(need, 24 * GIB, "RTX 3090", fits) == ""
    assert need.weights == parameters * 4 and need.optimizer == 2 * need.weights  # float32 master weights
    too_much = TrainConfig(batch_size=16, max_length=2048)
    refused = memory.refusal(memory.for_engine(model, too_much, "bf16"), 24 * GIB, "RTX 3090", too_much)
    assert refused.startswith("training needs about ") and "over 90% of RTX 3090 (24.0 GiB)" in refused
    assert "train.gradient_checkpointing: true" in refused and "train.batch_size (now 16" in refused


def test_the_logits_part_is_one_chunk_however_many_rows():
    small = memory.estimate(1000, 2, 64, 1022, tokens=4096, master_bytes=4, autocast_16bit=False, checkpointing=False)
    large = memory.estimate(
        1000, 2, 64, 151_936, tokens=32_768, master_bytes=4, autocast_16bit=True, checkpointing=True
    )
    assert small.logits == 2 * 4 * 4096 * 1022  # below one chunk: every row's logits
    assert large.logits == 2 * 4 * chunked_loss.CHUNK_ELEMENTS


def test_generation_under_the_chunked_loss_passes_the_cache_by_its_current_name(tmp_path):
    """The chunked loss wraps the model's forward; eval rounds still pass the KV cache under the
    name the model class takes, not the deprecated one (which warns, then goes)."""
    import warnings

    from realm.model.greedy import generate

    engine = Engine(fast_config())
    assert engine.chunked
    prompts = [[{"role": "user", "content": "1+1="}]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        [answer] = generate(engine.unwrapped, engine.tokenizer, prompts, max_new_tokens=4)
    assert isinstance(answer, str)
