"""Loading DIO: the model and its tokenizer, from a checkpoint, a local folder, an HF id or the
built-in DIO-nano.

``builtin:dio-nano`` is a tiny Qwen3-architecture model (under a million parameters) with the
byte-level tokenizer shipped in ``assets/dio-nano``; it starts from random weights and trains
on a laptop CPU. Anything else goes through ``from_pretrained``: a local folder written by
``save_pretrained`` and a Hugging Face id take the same path. Every tokenizer comes back with a
plain ChatML chat template (the one training writes) and a pad token.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from realm.errors import SetupError
from realm.model.chatml import CHATML_TEMPLATE, render_chatml
from realm.resources import shipped

DIO_NANO = "builtin:dio-nano"
BUILTIN_PREFIX = "builtin:"
ASSETS = shipped("assets")
BUILTINS = (DIO_NANO,)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")

# Conversations whose rendering tells whether a chat template is plain ChatML: with and
# without a system message (some templates add a default one), with whitespace a template
# might strip, and with assistant turns in the middle and at the end (Qwen3 treats them apart).
_PROBES = [
    [
        {"role": "system", "content": " S "},
        {"role": "user", "content": "\nU\n"},
        {"role": "assistant", "content": " A "},
        {"role": "user", "content": "V"},
    ],
    [
        {"role": "user", "content": "U"},
        {"role": "assistant", "content": "\nA\n"},
    ],
]


class ModelLoadError(SetupError, ValueError):
    """The model or tokenizer cannot be loaded; the message says what to do."""


def dio_nano_config(vocab_size: int, **overrides) -> transformers.Qwen3Config:
    """DIO-nano: a tiny Qwen3 (hidden 128, 4 layers, 4 heads / 2 KV heads, tied embeddings)."""
    settings = dict(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        hidden_act="silu",
        max_position_embeddings=2048,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        rms_norm_eps=1e-6,
        initializer_range=0.02,
        tie_word_embeddings=True,
        attention_bias=False,
        attention_dropout=0.0,
        use_sliding_window=False,
    )
    settings.update(overrides)
    return transformers.Qwen3Config(**settings)


# --- tokenizer -----------------------------------------------------------------------------------


def tokenizer_name(model_cfg) -> str:
    """The tokenizer the trainer loads for ``model_cfg`` when it starts without a checkpoint."""
    return model_cfg.tokenizer or model_cfg.name


def load_tokenizer(spec: str) -> PreTrainedTokenizerBase:
    """``builtin:dio-nano``, a local folder or an HF id; with a ChatML template and a pad token."""
    if spec.startswith(BUILTIN_PREFIX):
        _check_builtin(spec)
        tokenizer = AutoTokenizer.from_pretrained(ASSETS / "dio-nano")
    else:
        tokenizer = _from_pretrained(AutoTokenizer, spec, what="tokenizer")
    ensure_chatml(tokenizer)
    _ensure_pad(tokenizer, spec)
    return tokenizer


def ensure_chatml(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Put the plain ChatML template on ``tokenizer`` unless it already renders exactly that.

    Qwen3's template injects ``<think>`` blocks into assistant turns, other families use other
    formats; training writes plain ChatML (``chatml.encode_chat``), so chat must read the
    same. Returns True when the template was replaced. (Tool-calling parts of a replaced
    template are lost with it.)
    """
    template = tokenizer.chat_template
    if isinstance(template, dict):  # several named templates: the default is the one chat uses
        template = template.get("default")
    if template and "<think>" not in template and _renders_chatml(tokenizer):
        return False
    tokenizer.chat_template = CHATML_TEMPLATE
    return True


def _renders_chatml(tokenizer: PreTrainedTokenizerBase) -> bool:
    try:
        for probe in _PROBES:
            for generation in (False, True):
                rendered = tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=generation)
                if rendered != render_chatml(probe, add_generation_prompt=generation):
                    return False
    except Exception:  # a template that raises on this conversation is not plain ChatML either
        return False
    return True


def _ensure_pad(tokenizer: PreTrainedTokenizerBase, spec: str) -> None:
    if tokenizer.pad_token is not None:
        return
    vocab = tokenizer.get_vocab()
    for candidate in ("<|endoftext|>", tokenizer.eos_token, tokenizer.unk_token):
        if candidate is not None and candidate in vocab:
            tokenizer.pad_token = candidate
            return
    raise ModelLoadError(f"{spec}: the tokenizer has no pad, eos or unk token to pad batches with")


# --- device and dtype ----------------------------------------------------------------------------


def resolve_device(spec: str) -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ModelLoadError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"model.device {spec!r} asked for, but CUDA is not available here: set model.device: cpu or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"device {spec!r} asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    return device


def resolve_dtype(spec: str, device: torch.device) -> torch.dtype:
    """``auto``: bfloat16 on a CUDA device that supports it, float32 otherwise."""
    if spec == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return DTYPES[spec]
    except KeyError:
        raise ModelLoadError(f"unknown dtype {spec!r}: use auto, {', '.join(DTYPES)}") from None


# --- the model -----------------------------------------------------------------------------------


def load_model(model_cfg, *, checkpoint: Path | None = None, seed: int = 0):
    """``(model, tokenizer)`` for ``model_cfg`` (a ``realm.config.ModelConfig``), on its device.

    With ``checkpoint`` (a ``save_pretrained`` folder), the weights come from there, and so does
    the tokenizer when the folder holds one. Otherwise ``builtin:dio-nano`` starts from random
    weights drawn under ``seed`` (without touching the global RNG), and any other name is
    loaded with ``from_pretrained``.
    """
    transformers.utils.logging.disable_progress_bar()  # no terminal: the trainer's and oracle's logs, a CLI's one line
    device = resolve_device(model_cfg.device)
    dtype = resolve_dtype(model_cfg.dtype, device)
    name = model_cfg.name
    tokenizer_spec = tokenizer_name(model_cfg)

    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        _check_model_folder(checkpoint, str(checkpoint))
        if _has_tokenizer(checkpoint):
            tokenizer_spec = str(checkpoint)
        tokenizer = load_tokenizer(tokenizer_spec)
        model = _from_pretrained(AutoModelForCausalLM, str(checkpoint), what="model", dtype=dtype)
    elif name.startswith(BUILTIN_PREFIX):
        _check_builtin(name)
        tokenizer = load_tokenizer(tokenizer_spec)
        config = dio_nano_config(
            len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(config)
        model = model.to(dtype=dtype)
    else:
        if _looks_local(name):
            _check_model_folder(Path(name).expanduser(), name)
        tokenizer = load_tokenizer(tokenizer_spec)
        model = _from_pretrained(AutoModelForCausalLM, name, what="model", dtype=dtype)

    embeddings = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > embeddings:
        raise ModelLoadError(
            f"the tokenizer ({tokenizer_spec}) has {len(tokenizer)} tokens but the model has only {embeddings} "
            "embeddings: use the tokenizer the model was trained with (leave model.tokenizer unset)"
        )
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.to(device), tokenizer


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


# --- loading helpers -----------------------------------------------------------------------------


def _check_builtin(spec: str) -> None:
    if spec not in BUILTINS:
        raise ModelLoadError(
            f"unknown built-in model {spec!r}: the built-in is {DIO_NANO}; "
            "for anything else give an HF id (Qwen/Qwen3-0.6B) or a local folder"
        )


def _looks_local(spec: str) -> bool:
    """A spec that can only be a path (an HF id is ``name`` or ``owner/name``)."""
    return (
        os.path.isabs(os.path.expanduser(spec))
        or spec.startswith((".", "~"))
        or "\\" in spec
        or spec.count("/") > 1
        or Path(spec).exists()
    )


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in TOKENIZER_FILES)


def _check_model_folder(folder: Path, spec: str) -> None:
    if not folder.exists():
        raise ModelLoadError(_no_such_folder(spec))
    if not folder.is_dir():
        raise ModelLoadError(f"{spec}: is a file, not a model folder; give the folder written by save_pretrained")
    if not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"{spec}: not a model folder (no config.json); give a folder written by save_pretrained, "
            f"an HF id or {DIO_NANO}"
        )


def _no_such_folder(spec: str) -> str:
    return f"{spec}: no such folder; give a folder written by save_pretrained, an HF id or {DIO_NANO}"


def _hub_offline() -> bool:
    import huggingface_hub.constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return huggingface_hub.constants.HF_HUB_OFFLINE or env.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _from_pretrained(loader, spec: str, *, what: str, **kwargs):
    """``loader.from_pretrained(spec)`` for a local folder or an HF id, with errors that say what to do.

    The local files (the folder, or the HF cache for an id) are tried first, so a cached model
    loads without touching the network; only a cache miss goes online, and not in offline mode.
    """
    if _looks_local(spec):
        folder = Path(spec).expanduser()
        if not folder.exists():
            raise ModelLoadError(_no_such_folder(spec))
        if what == "tokenizer" and folder.is_dir() and not _has_tokenizer(folder):
            raise ModelLoadError(
                f"{spec}: no tokenizer files in this folder (tokenizer.json / tokenizer_config.json); "
                "set model.tokenizer to the tokenizer to use"
            )
        spec = str(folder)
    try:
        return loader.from_pretrained(spec, local_files_only=True, **kwargs)
    except OSError as exc:
        if _looks_local(spec):
            raise ModelLoadError(f"{spec}: cannot load the {what}: {_first_line(exc)}") from None
        if _hub_offline():
            raise ModelLoadError(
                f"{spec}: not a local folder and not in the Hugging Face cache, and offline mode is on "
                f"(HF_HUB_OFFLINE): download it first (`hf download {spec}`) or point model.name at a local folder"
            ) from None
    except ValueError as exc:  # e.g. a config.json of a model type this transformers does not know
        raise ModelLoadError(f"{spec}: cannot load the {what}: {_first_line(exc)}") from None
    try:
        return loader.from_pretrained(spec, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"{spec}: not a local folder, and the Hugging Face hub could not provide it ({_first_line(exc)}); "
            f"check the id and the network, download it on a connected machine (`hf download {spec}`), "
            f"or give a local folder"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
