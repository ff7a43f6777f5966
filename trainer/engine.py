"""The training engine: one model, one optimizer, one step at a time.

The daemon decides *what* to train and *when*; the engine only knows how: encode a quest's
examples, take an optimizer step over a batch, measure validation loss, and save or restore
everything a resume needs (weights, optimizer, scheduler, step, RNG).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import random
import statistics
import time
from pathlib import Path
from typing import NamedTuple

import msgspec
import numpy as np
import torch

from realm.config import ConfigError, RealmConfig
from realm.model import lora
from realm.model.chatml import IGNORE_INDEX, EncodedExample, encode_chat
from realm.model.loading import count_parameters, load_model, resolve_device
from realm.vault import merge
from trainer import chunked_loss, memory, target_rows
from trainer.packing import (
    ATTENTION,
    PackedBatch,
    attention_kwargs,
    flash_attention_available,
    pack,
    register,
    shifted_targets,
)
from trainer.quest_plan import shuffled
from trainer.telemetry import FlopCount

log = logging.getLogger("realm.trainer")

TRAINING_STATE = "training_state.pt"
FUSED_ADAMW_DEVICES = ("cpu", "cuda")


class StepResult(NamedTuple):
    loss: float
    lr: float
    grad_norm: float
    tokens: int  # real (non-pad) tokens seen
    examples: int
    seconds: float
    flops: float = 0.0  # estimated model FLOPs of the step (6N per token + attention)
    micro_batch: int = 0  # examples per micro-batch the step ran with
    oom_retries: int = 0  # times the step hit out-of-memory and halved its micro-batch
    skipped: bool = False  # no update (weights, optimizer, lr, step unchanged): see nonfinite
    nonfinite: bool = False  # skipped because the loss (or, without loss scaling, the gradients) was inf/nan
    loss_scale: float = 0.0  # fp16: the loss scale after the step (0 without loss scaling)


class Engine:
    def __init__(self, config: RealmConfig, checkpoint: Path | None = None) -> None:
        self.config = config
        train = config.train
        if train.threads:
            torch.set_num_threads(train.threads)
        self.accelerator = make_accelerator(config)
        self.precision = resolve_precision(train.precision, resolve_device(config.model.device))
        torch.manual_seed(train.seed)
        self.model, self.tokenizer, self.adapter_base = _load(config, self.precision, checkpoint)
        self.attention = choose_attention(self.model)
        self.grouped = self.attention == ATTENTION  # pads to group widths: our CPU attention's layout
        if train.gradient_checkpointing:
            enable_checkpointing(self.model)
        self.targets_only = target_rows.install(self.model)  # the last layer's MLP only where there is a target
        self.chunked = chunked_loss.install(self.model)  # the LM head and loss a chunk of rows at a time
        self.model = _with_adapters(self.model, train.lora, checkpoint)
        self.device = next(self.model.parameters()).device
        # one process only: ranks that settled apart would not run the same arithmetic
        one_process = self.accelerator.num_processes == 1
        native_bf16 = train.precision == "auto" and self.device.type == "cpu" and cpu_native_bf16()
        self.precision_trial = PrecisionTrial() if native_bf16 and one_process else None
        self.memory = memory.for_engine(self.model, train, self.precision)
        log.info("memory estimate for a full-length micro-batch: %s", self.memory.line())
        _check_fits(self.memory, self.device, train)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None
        self.parameters = count_parameters(self.model)
        self.flops = FlopCount(self.model, train.max_length)
        self.step = 0
        self.micro_batch = train.batch_size  # halved on out-of-memory, for the rest of the run
        self.progress: dict | None = None  # the daemon's data position, restored from a checkpoint
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],  # with LoRA: the adapters alone
            lr=train.lr,
            weight_decay=train.weight_decay,
            fused=self.device.type in FUSED_ADAMW_DEVICES or None,  # one kernel per tensor, not ~10 ops
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_schedule(train))
        self.model, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
        if checkpoint is not None and (checkpoint / TRAINING_STATE).exists():
            # a switch between LoRA and a full fine-tune trains other parameters: a new optimizer
            same_kind = lora.is_adapter(checkpoint) == (train.lora is not None)
            self._restore(checkpoint / TRAINING_STATE, optimizer=same_kind)

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    @property
    def is_main(self) -> bool:
        """Only the main process publishes and writes files."""
        return self.accelerator.is_main_process

    @property
    def unwrapped(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def encode(self, examples: list[list[dict]]) -> list[EncodedExample]:
        max_length = self.config.train.max_length
        return [encode_chat(self.tokenizer, messages, max_length) for messages in examples]

    def steps_for(self, n_examples: int) -> int:
        per_step = self.config.train.batch_size * self.config.train.grad_accum
        return math.ceil(n_examples / per_step)

    def batches(self, examples: list[EncodedExample], order_seed: str) -> list[list[EncodedExample]]:
        """The quest's examples shuffled (deterministically) into optimizer-step groups."""
        order = shuffled(examples, order_seed)
        per_step = self.config.train.batch_size * self.config.train.grad_accum
        return [order[start : start + per_step] for start in range(0, len(order), per_step)]

    # ------------------------------------------------------------------ training

    def train_step(self, batch: list[EncodedExample]) -> StepResult:
        """One optimizer step over ``batch``: packed micro-batches, gradients accumulated.

        On out-of-memory the step's gradients are dropped, the micro-batch is halved (the
        optimizer step still covers the whole ``batch``: more micro-batches accumulate) and
        the step starts over; ``oom_retries`` says how often that happened.
        """
        started = time.perf_counter()
        if self.precision_trial is not None:
            self.precision = self.precision_trial.next()
        self.model.train()
        mine = self._my_share(batch)
        retries = 0
        while True:
            try:
                total_loss, target_tokens = self._accumulate(mine or batch[:1], contributes=bool(mine))
                break
            except torch.OutOfMemoryError:
                self.optimizer.zero_grad(set_to_none=True)
                _free_memory(self.device)
                if self.micro_batch == 1 or self.accelerator.num_processes > 1:
                    raise  # several processes: a redo on one rank alone would break the collectives' order
                self.micro_batch = max(1, self.micro_batch // 2)
                retries += 1
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip (and report) the true gradient norm
        grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), self.config.train.max_grad_norm)
        lr = self.optimizer.param_groups[0]["lr"]  # what this step uses (a restart or the Armory may set it)
        # fp16's scaler expects inf gradients now and then (it skips and lowers the scale); an
        # inf/nan loss, or inf/nan gradients without a scaler, would poison the weights
        nonfinite = not math.isfinite(total_loss) or (self.scaler is None and not math.isfinite(float(grad_norm)))
        skipped = self._optimizer_step(nonfinite)
        if not skipped:
            self.scheduler.step()
            self.step += 1
        self.optimizer.zero_grad(set_to_none=True)
        tokens = sum(min(len(ex.input_ids), self.config.train.max_length) for ex in batch)
        seconds = time.perf_counter() - started
        if self.precision_trial is not None:
            self._settle_precision(seconds / max(tokens, 1))
        return StepResult(
            loss=total_loss / target_tokens,
            lr=lr,
            grad_norm=float(grad_norm),
            tokens=tokens,
            examples=len(batch),
            seconds=seconds,
            flops=self.step_flops(batch),
            micro_batch=self.micro_batch,
            oom_retries=retries,
            skipped=skipped,
            nonfinite=nonfinite,
            loss_scale=self.scaler.get_scale() if self.scaler is not None else 0.0,
        )

    def _optimizer_step(self, nonfinite: bool) -> bool:
        """Update the weights; True when the step was skipped: a non-finite loss or gradients, or
        fp16 loss scaling that found inf/nan gradients (the scaler then lowers the scale, so the
        next step fits)."""
        if self.scaler is None:
            if not nonfinite:
                self.optimizer.step()
            return nonfinite
        if nonfinite:
            self.scaler.update()  # the gradients were unscaled: the scaler must close the step
            return True
        scale = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return self.scaler.get_scale() < scale

    def _settle_precision(self, seconds_per_token: float) -> None:
        """Record a trial step; once the trial has its steps, keep the faster precision."""
        trial = self.precision_trial
        choice = trial.record(self.precision, seconds_per_token)
        if choice is None:
            # between trial steps (an eval, a save) the arithmetic is fp32's, not the last step's
            self.precision = "fp32"
            return
        self.precision, self.precision_trial = choice, None
        log.info("CPU precision: %s (%s)", choice, trial.verdict())

    def _autocast(self):
        """Mixed precision for forward passes: bf16 or fp16 autocast; fp32 runs as it is."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    def _my_share(self, batch: list[EncodedExample]) -> list[EncodedExample]:
        """This process's examples of the step (all of them on one process)."""
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        return batch[rank::world] if world > 1 else batch

    def _accumulate(self, examples: list[EncodedExample], contributes: bool = True) -> tuple[float, int]:
        """Forward and backward over ``examples`` in packed micro-batches; (summed loss, targets).

        The loss is summed over target tokens and divided by the step's target count (across
        all processes), so every token weighs the same however the step is split. A process
        whose share of a small step is empty still runs a backward (of another example, weighted
        0: ``contributes`` False), because DDP's gradient all-reduce needs every process.
        """
        micro = self.micro_batch
        chunks = [examples[i : i + micro] for i in range(0, len(examples), micro)] or [[]]
        packed = [self._pack(chunk) if chunk else None for chunk in chunks]
        local_targets = sum(p.target_tokens for p in packed if p is not None) if contributes else 0
        target_tokens = self._global_sum(local_targets) or 1
        scale = self.accelerator.num_processes / target_tokens  # DDP averages gradients over processes
        scale = scale if contributes else 0.0
        total_loss = 0.0
        for index, batch in enumerate(packed):
            if batch is None:
                continue
            last = index == len(packed) - 1
            context = contextlib.nullcontext() if last else self.accelerator.no_sync(self.model)
            with context:
                loss = self._summed_loss(batch)
                weighted = loss * scale
                self.accelerator.backward(self.scaler.scale(weighted) if self.scaler is not None else weighted)
            total_loss += loss.item() if contributes else 0.0
        return self._global_sum(total_loss), target_tokens

    def _global_sum(self, value: float) -> float:
        if self.accelerator.num_processes == 1:
            return value
        tensor = torch.tensor([float(value)], device=self.device)
        return float(self.accelerator.reduce(tensor, reduction="sum").item())

    @torch.no_grad()
    def evaluate(self, examples: list[EncodedExample]) -> float:
        """Mean loss per target token over ``examples``.

        Evaluation runs on this process alone (the leader), so it uses the bare model: a DDP
        forward would sync buffers with processes that are not evaluating.
        """
        self.model.eval()
        micro = self.micro_batch
        total, count = 0.0, 0
        for start in range(0, len(examples), micro):
            batch = self._pack(examples[start : start + micro])
            total += self._summed_loss(batch, self.unwrapped).item()
            count += batch.target_tokens
        return total / max(count, 1)

    @torch.no_grad()
    def example_losses(self, examples: list[EncodedExample]) -> list[float]:
        """Each example's summed loss, from one packed forward (the packing test compares it)."""
        self.model.eval()
        batch = self._pack(examples)
        token_losses, targets = self._token_losses(batch, self.unwrapped)
        owners = batch.example_ids[0][targets].to(self.device)
        per_example = torch.zeros(len(examples), device=self.device, dtype=token_losses.dtype)
        return per_example.index_add_(0, owners, token_losses).tolist()

    def _pack(self, examples: list[EncodedExample]) -> PackedBatch:
        """Grouped slots for our per-example attention; no pads at all for a varlen kernel."""
        return pack(examples, self.config.train.max_length, grouped=self.grouped)

    def _summed_loss(self, batch: PackedBatch, model: torch.nn.Module | None = None) -> torch.Tensor:
        """Cross-entropy summed over target tokens, so accumulation weights every token alike."""
        token_losses, _ = self._token_losses(batch, model)
        return token_losses.sum()

    def _token_losses(
        self, batch: PackedBatch, model: torch.nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-target-token losses (through ``model``, default the training one); the LM head
        runs only where there is a target."""
        targets = shifted_targets(batch.labels)[0]
        keep = (targets != IGNORE_INDEX).nonzero().squeeze(1)
        rows = keep.to(self.device)
        wanted = targets[keep].to(self.device)
        inputs = dict(
            input_ids=batch.input_ids.to(self.device),
            position_ids=batch.position_ids.to(self.device),
            use_cache=False,
            **attention_kwargs(batch, self.device),
        )
        if self.targets_only:  # the last layer returns just the target rows
            inputs[target_rows.ROWS_KWARG] = rows
        model = self.model if model is None else model
        with self._autocast():
            if self.chunked:
                return model(**inputs, loss_targets=wanted, rows=rows), keep
            logits = model(**inputs, logits_to_keep=0 if self.targets_only else rows).logits[0].float()
        return torch.nn.functional.cross_entropy(logits, wanted, reduction="none"), keep

    def step_flops(self, batch: list[EncodedExample]) -> float:
        return self.flops.step(batch)

    # ------------------------------------------------------------------ checkpoints

    def weights_finite(self) -> bool:
        """No inf or nan in any weight: what a checkpoint must hold."""
        return all(bool(torch.isfinite(p).all()) for p in self.unwrapped.parameters())

    def sidecar_fields(self) -> dict:
        """What a checkpoint's sidecar says of its kind: adapters, and the base they apply to."""
        if self.adapter_base is None:
            return {"adapter": False}
        return {"adapter": True, **self.adapter_base}

    def save(self, folder: Path) -> None:
        """Weights, tokenizer and the training state (optimizer, scheduler, RNG, data position)."""
        self.unwrapped.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        torch.save(
            {
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": _rng_state(),
                "micro_batch": self.micro_batch,
                "progress": self.progress,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            },
            folder / TRAINING_STATE,
        )

    def _restore(self, path: Path, optimizer: bool = True) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.step = int(state["step"])
        if optimizer:
            self.optimizer.load_state_dict(state["optimizer"])
        else:
            log.info("train.lora changed since %s: the optimizer starts afresh", path.parent.name)
        self.scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        self.micro_batch = int(state.get("micro_batch") or self.micro_batch)
        self.progress = state.get("progress")
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.use_optimizer_settings(self.config.train)  # the config file wins over the saved groups

    def use_optimizer_settings(self, train) -> None:
        """Put ``train.lr`` (under the schedule's factor at the current step) and
        ``train.weight_decay`` into the optimizer: after a restore, whose saved groups hold the
        old run's values, and for a live change from the Armory. The schedule (warmup, constant
        or cosine) is rebuilt from ``train`` and read at the step the run is at, so a new schedule
        continues from where training is, not from its start. Unchanged values leave the groups
        bit-identical."""
        scheduler = self.scheduler
        scheduler.base_lrs = [train.lr for _ in scheduler.base_lrs]
        scheduler.lr_lambdas = [lr_schedule(train) for _ in scheduler.lr_lambdas]
        for index, group in enumerate(self.optimizer.param_groups):
            group["initial_lr"] = train.lr
            group["weight_decay"] = train.weight_decay
            group["lr"] = train.lr * scheduler.lr_lambdas[index](scheduler.last_epoch)

    def use_batch_size(self, old, train) -> None:
        """A live ``train.batch_size``: the micro-batch follows it (but stays at an out-of-memory
        halving's size if that is smaller) and the memory estimate is redone."""
        halved = self.micro_batch < old.batch_size
        self.micro_batch = min(self.micro_batch, train.batch_size) if halved else train.batch_size
        self.memory = memory.for_engine(self.unwrapped, train, self.precision)

    def refusal(self, train) -> str:
        """Why ``train``'s settings would not fit this device's memory (the start-up check), or ""."""
        if self.device.type != "cuda":
            return ""
        card = torch.cuda.get_device_properties(self.device)
        need = memory.for_engine(self.unwrapped, train, self.precision)
        return memory.refusal(need, card.total_memory, card.name, train)


def lr_schedule(train):
    """Linear warmup, then constant (continual training) or cosine down to ``min_lr_ratio``."""
    warmup = max(1, train.warmup_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if train.schedule == "cosine":
            progress = min(1.0, (step - warmup) / max(1, train.cosine_steps))
            return train.min_lr_ratio + (1 - train.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0

    return factor


def make_accelerator(config: RealmConfig):
    """accelerate for the process group (one process, or ``accelerate launch`` over several)."""
    from accelerate import Accelerator

    device = resolve_device(config.model.device)
    # precision is train.precision's alone: a launcher's --mixed_precision would scale the loss twice
    return Accelerator(cpu=device.type == "cpu", device_placement=False, mixed_precision="no")


PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16}


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo: bf16 dot products in hardware
CPU_TRIAL_STEPS = 20  # steps alternating fp32 and bf16 before auto settles on a native-bf16 CPU
CPU_BF16_STEP_GAIN = 1.1  # bf16's steps this much faster than fp32's before auto keeps it


def resolve_precision(spec: str, device: torch.device) -> str:
    """``train.precision`` on ``device``: auto is bf16 on a GPU that has it, fp16 (with loss
    scaling) on one that has not, and fp32 on CPU; where the CPU has native bf16 the engine then
    tries both on its first steps (``PrecisionTrial``). Emulated bf16 autocast is slower than fp32
    (bench/cpu_bf16.py)."""
    bf16_ok = device.type != "cuda" or torch.cuda.is_bf16_supported()
    if spec == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if bf16_ok else "fp16"
    if spec == "bf16" and not bf16_ok:
        raise ConfigError(
            f"train.precision: bf16 asked for, but {torch.cuda.get_device_name(device)} has no bfloat16; use fp16 or auto"
        )
    return spec


def cpu_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX); unknown (not Linux) is no."""
    try:
        flags = set(cpuinfo.read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return False
    return any(flag in flags for flag in CPU_BF16_FLAGS)


class PrecisionTrial:
    """auto on a CPU with native bf16: the first ``steps`` training steps alternate fp32 and bf16
    autocast (float32 master weights either way, so the run loses nothing), and the precision whose
    steps took less time per token stays, bf16 only when at least ``gain`` times faster. Real steps
    on the run's own data decide because no cheaper proxy agreed with them: on a 2-core AVX512-BF16
    EPYC, bf16 matmuls ran 2.2x fp32's and DIO-nano's step on dense 128-token chats 1.13-1.19x,
    while its steps on BIN and SY quests ran 0.85x (the backward pass is slower in bf16 there)."""

    def __init__(self, steps: int = CPU_TRIAL_STEPS, gain: float = CPU_BF16_STEP_GAIN) -> None:
        self.steps, self.gain = steps, gain
        self.seconds: dict[str, list[float]] = {"fp32": [], "bf16": []}

    def next(self) -> str:
        """The precision of the next trial step: fp32 first, then each in turn."""
        return "bf16" if len(self.seconds["bf16"]) < len(self.seconds["fp32"]) else "fp32"

    def record(self, precision: str, seconds_per_token: float) -> str | None:
        """One step's time; the chosen precision once every trial step has run, else None."""
        self.seconds[precision].append(seconds_per_token)
        if sum(map(len, self.seconds.values())) < self.steps:
            return None
        return "bf16" if self.speedup() >= self.gain else "fp32"

    def speedup(self) -> float:
        """bf16's speed over fp32's: medians per token (the median passes over each one's first,
        warm-up step)."""
        return statistics.median(self.seconds["fp32"]) / statistics.median(self.seconds["bf16"])

    def verdict(self) -> str:
        return (
            f"bf16 autocast ran this run's first {self.steps} steps at {self.speedup():.2f}x fp32's "
            f"speed per token; it is kept at {self.gain:.2f}x or more"
        )


def _weights_config(config: RealmConfig, precision: str):
    """Float32 master weights unless ``model.dtype`` says otherwise (pure bf16 weights halve
    weight, gradient and optimizer memory but lose small updates); fp16 autocast needs float32
    master weights for its loss scaler, so an explicit float16 cannot train with loss scaling."""
    if precision == "fp16" and config.model.dtype == "float16":
        raise ConfigError(
            "train.precision fp16 keeps float32 master weights (autocast runs in fp16, the loss is "
            "scaled): set model.dtype to auto or float32, not float16"
        )
    if config.model.dtype == "auto":  # autocast computes in bf16/fp16 over float32 master weights
        return msgspec.structs.replace(config.model, dtype="float32")
    return config.model


def _load(config: RealmConfig, precision: str, checkpoint: Path | None):
    """(model, tokenizer, adapter base): the model to train, with an adapter checkpoint's base
    loaded as its sidecar names it. The adapter base is what the sidecars of LoRA checkpoints
    record (None for a full fine-tune)."""
    weights = _weights_config(config, precision)
    seed = config.train.seed
    if lora.is_adapter(checkpoint):
        name, base_checkpoint, seed = merge.base_of(checkpoint)
        model, tokenizer = load_model(
            msgspec.structs.replace(weights, name=name), checkpoint=base_checkpoint, seed=seed
        )
        base = {"base_model": name, "base_checkpoint": str(base_checkpoint) if base_checkpoint else None}
    else:
        model, tokenizer = load_model(weights, checkpoint=checkpoint, seed=seed)
        base = {"base_model": config.model.name, "base_checkpoint": str(checkpoint) if checkpoint else None}
    return model, tokenizer, {**base, "base_seed": seed} if config.train.lora is not None else None


def _with_adapters(model: torch.nn.Module, settings, checkpoint: Path | None) -> torch.nn.Module:
    """New adapters, or an adapter checkpoint's to train on; without ``train.lora`` an adapter
    checkpoint is merged and the whole model trains."""
    if lora.is_adapter(checkpoint):
        if settings is None:
            log.info("train.lora is off: merging %s's adapters and training the whole model", checkpoint.name)
            return lora.merged(model, checkpoint).requires_grad_(True)  # peft froze the base
        return lora.load(model, checkpoint, trainable=True)
    if settings is None:
        return model
    model = lora.attach(model, settings)
    trainable = lora.trainable_parameters(model)
    log.info("LoRA r=%d on %s: %s trainable parameters", settings.r, ", ".join(settings.targets), f"{trainable:,}")
    return model


def _check_fits(need: memory.Estimate, device: torch.device, train) -> None:
    """On a GPU, refuse before the first step a run that cannot fit, saying what to change."""
    if device.type != "cuda":
        return
    card = torch.cuda.get_device_properties(device)
    refused = memory.refusal(need, card.total_memory, card.name, train)
    if refused:
        raise ConfigError(refused)


def enable_checkpointing(model: torch.nn.Module) -> None:
    """Recompute each layer's activations in the backward instead of keeping them."""
    enable = getattr(model, "activation_checkpointing_enable", None)  # transformers 5's name
    if enable is not None:
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def choose_attention(model: torch.nn.Module) -> str:
    """FlashAttention's varlen kernel on CUDA when installed, else attention per example."""
    device = next(model.parameters()).device
    name = "flash_attention_2" if flash_attention_available(device) else register()
    model.set_attn_implementation(name)
    return name


def _free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _rng_state() -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": numpy_state}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(state["python"])
    if "numpy" in state:  # kept as plain values and a tensor, so the file loads with weights_only
        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
