"""DIO-nano and the model loader: real tokenizer files, real tiny models, no network."""

from __future__ import annotations

import json

import pytest
import torch

from realm.config import ModelConfig
from realm.model.chatml import CHATML_TEMPLATE, encode_chat, render_chatml, text_ids
from realm.model.loading import (
    ASSETS,
    DIO_NANO,
    ModelLoadError,
    count_parameters,
    dio_nano_config,
    ensure_chatml,
    load_model,
    load_tokenizer,
    resolve_device,
    resolve_dtype,
)
from realm.skills.bin import SYMBOLS
from trainer import tokenizer_build
from trainer.data import collate

# The tail of Qwen3's template: it wraps the last assistant turn in <think> tags.
QWEN3_STYLE_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(DIO_NANO)


@pytest.fixture(scope="module")
def nano():
    return load_model(ModelConfig(device="cpu"), seed=0)


def _save_tokenizer_with_template(tokenizer, folder, template):
    tokenizer.save_pretrained(folder)
    # Put the template where a hub tokenizer keeps it (tokenizer_config.json or chat_template.jinja)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["chat_template"] = template
    config_file.write_text(json.dumps(config), encoding="utf-8")


# --- the tokenizer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Hello, DIO! The quest begins.",
        "①⓪①① + ⓪①①⓪ = ①⓪⓪⓪①",
        '{"answers": ["BANANA"]}',
        "emoji 🐉🔥🧩 and CJK 日本語の文章, 中文",
        "tabs\tand\r\nnewlines\n\n  spaces   ",
        "<think>hmm</think>",
    ],
)
def test_builtin_tokenizer_round_trips(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_builtin_tokenizer_shape(tokenizer):
    assert len(tokenizer) == tokenizer_build.VOCAB_SIZE == 1024
    for token in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"):
        ids = tokenizer(token, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, token
        assert tokenizer.convert_ids_to_tokens(ids[0]) == token
    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.eos_token == "<|im_end|>"
    # circled bits are one token each, so binary arithmetic sees every digit; so are the symbol
    # languages' glyphs, whatever stands beside them
    for digit in "⓪①":
        assert len(tokenizer(digit, add_special_tokens=False)["input_ids"]) == 1
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    assert count(SYMBOLS) == len(SYMBOLS) and count(f"NOT {SYMBOLS}=") == count("NOT ") + len(SYMBOLS) + 1
    # <think> is an ordinary added token (as in Qwen3): decoding keeps it, skip_special drops ChatML
    ids = tokenizer("<|im_start|><think>x</think><|im_end|>", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<think>x</think>"


def test_builtin_chat_template_is_plain_chatml(tokenizer):
    assert "<think>" not in tokenizer.chat_template
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2="},
        {"role": "assistant", "content": "4"},
    ]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2=<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n<|im_start|>assistant\n"
    )


def test_tokenizer_build_is_deterministic_and_matches_shipped_files(tmp_path):
    written = tokenizer_build.build(tmp_path / "dio-nano")
    names = sorted(path.name for path in written)
    shipped = sorted(path.name for path in (ASSETS / "dio-nano").iterdir())
    assert names == shipped
    for name in names:
        assert (tmp_path / "dio-nano" / name).read_bytes() == (ASSETS / "dio-nano" / name).read_bytes(), name
    assert sum(path.stat().st_size for path in written) < 1_000_000


# --- chat templates ------------------------------------------------------------------------------


def test_qwen3_style_template_is_replaced(tokenizer, tmp_path):
    _save_tokenizer_with_template(tokenizer, tmp_path, QWEN3_STYLE_TEMPLATE)
    loaded = load_tokenizer(str(tmp_path))
    assert loaded.chat_template == CHATML_TEMPLATE
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert loaded.apply_chat_template(messages, tokenize=False) == render_chatml(messages)


def test_equivalent_chatml_template_is_kept(tokenizer):
    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tokenizer = load_tokenizer(DIO_NANO)  # a private copy: the template is changed below
    tokenizer.chat_template = template
    assert ensure_chatml(tokenizer) is False
    assert tokenizer.chat_template == template


def test_other_or_missing_templates_become_chatml():
    tokenizer = load_tokenizer(DIO_NANO)
    tokenizer.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    assert ensure_chatml(tokenizer) is True
    assert tokenizer.chat_template == CHATML_TEMPLATE
    # ChatML that adds a default system prompt when there is none (Qwen2.5 does): replaced too,
    # since training writes no such prompt
    tokenizer.chat_template = (
        "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are helpful.<|im_end|>\n{% endif %}"
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    assert ensure_chatml(tokenizer) is True
    tokenizer.chat_template = None
    assert ensure_chatml(tokenizer) is True
    assert tokenizer.chat_template == CHATML_TEMPLATE


# --- the model -----------------------------------------------------------------------------------


def test_dio_nano_config_is_tiny_qwen3():
    config = dio_nano_config(1024)
    assert config.model_type == "qwen3"
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (128, 4, 4)
    assert (config.num_key_value_heads, config.head_dim, config.intermediate_size) == (2, 32, 384)
    assert config.tie_word_embeddings and not config.attention_bias
    assert config.rope_parameters["rope_theta"] == 10000.0


def test_builtin_model_forward_gives_finite_loss(nano):
    model, tokenizer = nano
    assert 500_000 < count_parameters(model) < 1_500_000
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    assert model.config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    chats = [
        [{"role": "user", "content": "①⓪ + ⓪① ="}, {"role": "assistant", "content": "⓪①①"}],
        [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "Hello, traveller."}],
    ]
    batch = collate([encode_chat(tokenizer, chat, 64) for chat in chats], tokenizer.pad_token_id)
    with torch.no_grad():
        loss = model(**batch).loss
    assert torch.isfinite(loss)
    assert 4.0 < loss.item() < 9.0  # about ln(1024) = 6.9 for fresh weights


def test_builtin_init_depends_only_on_seed():
    state = torch.random.get_rng_state()
    a, _ = load_model(ModelConfig(device="cpu"), seed=7)
    b, _ = load_model(ModelConfig(device="cpu"), seed=7)
    c, _ = load_model(ModelConfig(device="cpu"), seed=8)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    wa, wb, wc = (m.get_input_embeddings().weight for m in (a, b, c))
    assert torch.equal(wa, wb)
    assert not torch.equal(wa, wc)


def test_saved_model_loads_back_through_the_hf_path(nano, tmp_path):
    model, tokenizer = nano
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tokenizer = load_model(ModelConfig(name=str(tmp_path), device="cpu"))
    assert type(loaded) is type(model)
    assert len(loaded_tokenizer) == len(tokenizer)
    assert loaded_tokenizer.chat_template == tokenizer.chat_template
    ids = torch.tensor([tokenizer("①⓪①① + ⓪①①⓪ = ", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, loaded(input_ids=ids).logits, atol=1e-6)
    # as a checkpoint of the built-in, too
    restored, _ = load_model(ModelConfig(device="cpu"), checkpoint=tmp_path)
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids).logits, restored(input_ids=ids).logits, atol=1e-6)


def test_loading_and_long_texts_write_nothing_to_the_terminal(nano, tmp_path, capfd):
    """A CLI's output and the daemons' logs are ours: no library progress bar, no library warning
    for a text past the tokenizer's own model_max_length (train.max_length is the limit)."""
    import transformers

    model, tokenizer = nano
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    transformers.utils.logging.enable_progress_bar()  # as a fresh process has it
    capfd.readouterr()
    _, loaded_tokenizer = load_model(ModelConfig(name=str(tmp_path), device="cpu"))
    assert len(text_ids(loaded_tokenizer, "word " * 3000)) > loaded_tokenizer.model_max_length
    assert capfd.readouterr() == ("", "")


def test_checkpoint_without_tokenizer_uses_the_configured_one(nano, tmp_path):
    model, _ = nano
    model.save_pretrained(tmp_path)
    loaded, tokenizer = load_model(ModelConfig(device="cpu"), checkpoint=tmp_path)
    assert len(tokenizer) == 1024
    assert count_parameters(loaded) == count_parameters(model)


# --- errors that say what to do ------------------------------------------------------------------


def test_missing_path_is_a_clear_error(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError, match="no such folder") as caught:
        load_model(ModelConfig(name=str(missing), device="cpu"))
    assert str(missing) in str(caught.value)
    assert DIO_NANO in str(caught.value)


def test_folder_that_is_not_a_model_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelLoadError, match="not a model folder"):
        load_model(ModelConfig(name=str(tmp_path), device="cpu"))
    with pytest.raises(ModelLoadError, match="not a model folder"):
        load_model(ModelConfig(device="cpu"), checkpoint=tmp_path)


def test_unknown_builtin_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="unknown built-in model 'builtin:xyz'") as caught:
        load_model(ModelConfig(name="builtin:xyz", device="cpu"))
    assert DIO_NANO in str(caught.value)
    with pytest.raises(ModelLoadError, match="unknown built-in"):
        load_tokenizer("builtin:xyz")


def test_uncached_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="not in the Hugging Face cache") as caught:
        load_model(ModelConfig(name="realm-test/does-not-exist", device="cpu"))
    assert "hf download realm-test/does-not-exist" in str(caught.value)


def test_tokenizer_too_big_for_the_model_is_a_clear_error(tmp_path):
    small = load_model(ModelConfig(device="cpu"))[0]
    small.resize_token_embeddings(512)
    small.save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="1024 tokens but the model has only 512"):
        load_model(ModelConfig(name=str(tmp_path), tokenizer=DIO_NANO, device="cpu"))


def test_device_and_dtype():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_dtype("auto", torch.device("cpu")) is torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16
    with pytest.raises(ModelLoadError, match="unknown device"):
        resolve_device("tpu-ish")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            resolve_device("cuda")


# --- it learns -----------------------------------------------------------------------------------


def test_dio_nano_learns_a_small_chat_dataset():
    model, tokenizer = load_model(ModelConfig(device="cpu"), seed=0)
    chats = [
        [{"role": "user", "content": f"{a}+{b}="}, {"role": "assistant", "content": str(a + b)}]
        for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (9, 1), (2, 5), (4, 4), (6, 3)]
    ]
    batch = collate([encode_chat(tokenizer, chat, 64) for chat in chats], tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    # Steps this small are framework overhead, not arithmetic: one thread is as fast, and it does
    # not collapse when other processes compete for the cores (two OpenMP threads do).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(100):
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first / 2, (first, last)
