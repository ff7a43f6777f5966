"""Will it fit? Peak training memory estimated from the model's shape and the settings.

Before the first step on a GPU the trainer compares this with the card and refuses, saying
what to change, when it cannot fit. The parts (bytes):

* weights, gradients: parameters x the master weights' size (4 for float32, 2 for bf16);
* optimizer: AdamW's two moments, in the weights' dtype; with LoRA, gradients and moments
  exist for the adapters' parameters alone (the base is frozen);
* activations: what the backward keeps per token of a micro-batch. Without checkpointing a
  pre-norm decoder layer keeps about 34 bytes per hidden unit per token in 16-bit autocast
  (Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models", with
  an attention kernel that keeps no score matrix), twice that in float32; with checkpointing
  each layer keeps its 16-bit input and one layer at a time is recomputed in full;
* logits: the loss's chunk of rows (``trainer.chunked_loss``), kept twice (forward and grad).

It is an estimate: allocator fragmentation and the CUDA context add to it, hence the headroom.
"""

from __future__ import annotations

from typing import NamedTuple

from trainer.chunked_loss import CHUNK_ELEMENTS

ACTIVATION_BYTES = 34  # per hidden unit per token per layer, 16-bit autocast, no checkpointing
HEADROOM = 0.90  # the share of the card's memory a run may plan to use
GIB = 2**30


class Estimate(NamedTuple):
    weights: int
    gradients: int
    optimizer: int
    activations: int
    logits: int

    @property
    def total(self) -> int:
        return sum(self)

    def line(self) -> str:
        parts = ", ".join(f"{name} {value / GIB:.1f}" for name, value in zip(self._fields, self))
        return f"{self.total / GIB:.1f} GiB ({parts})"


def estimate(parameters: int, layers: int, hidden: int, vocabulary: int, *, tokens: int, master_bytes: int,
             autocast_16bit: bool, checkpointing: bool, trainable: int | None = None) -> Estimate:  # fmt: skip
    """Peak bytes of one training step over a micro-batch of ``tokens`` tokens; ``trainable``
    parameters (default: all of them) have gradients and optimizer state."""
    weights = parameters * master_bytes
    trained = (parameters if trainable is None else trainable) * master_bytes
    per_layer_token = ACTIVATION_BYTES * hidden * (1 if autocast_16bit else 2)
    if checkpointing:
        activations = tokens * hidden * 2 * layers + tokens * per_layer_token
    else:
        activations = tokens * per_layer_token * layers
    logits = 2 * 4 * min(CHUNK_ELEMENTS, tokens * vocabulary)
    return Estimate(weights, trained, 2 * trained, activations, logits)


def for_engine(model, train, precision: str) -> Estimate:
    """The estimate for ``model`` under ``train`` settings (the worst micro-batch: full length)."""
    config = model.config
    master = next(model.parameters()).element_size()
    return estimate(
        sum(p.numel() for p in model.parameters()),
        config.num_hidden_layers,
        config.hidden_size,
        config.vocab_size,
        tokens=train.batch_size * train.max_length,
        master_bytes=master,
        autocast_16bit=precision in ("bf16", "fp16"),
        checkpointing=train.gradient_checkpointing,
        trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
    )


def refusal(need: Estimate, card_bytes: int, card: str, train) -> str:
    """What to tell the user when ``need`` does not fit the card, or "" when it fits."""
    if need.total <= card_bytes * HEADROOM:
        return ""
    hints = []
    if not train.gradient_checkpointing:
        hints.append("train.gradient_checkpointing: true")
    hints.append(
        f"a smaller train.batch_size (now {train.batch_size}; raise train.grad_accum to keep the effective batch)"
    )
    hints.append(f"a shorter train.max_length (now {train.max_length})")
    if train.lora is None:
        hints.append("train.lora: {r: 16} (adapters: gradients and optimizer state for a small share of the weights)")
    hints.append("model.dtype: bfloat16 (pure bf16 weights and optimizer: half the memory, less precise updates)")
    return (
        f"training needs about {need.line()}, over {HEADROOM:.0%} of {card} ({card_bytes / GIB:.1f} GiB); "
        f"try: " + "; ".join(hints)
    )
