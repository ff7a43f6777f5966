"""The training engine: one model, one optimizer, one step at a time.

The daemon decides *what* to train and *when*; the engine only knows how: encode a quest's
examples, take an optimizer step over a batch, measure validation loss, and save or restore
everything a resume needs (weights, optimizer, scheduler, step, RNG).
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import NamedTuple

import torch
import transformers

from realm.config import RealmConfig
from trainer.data import EncodedExample, collate, encode_chat
from trainer.model import count_parameters, load_model

TRAINING_STATE = "training_state.pt"


class StepResult(NamedTuple):
    loss: float
    lr: float
    grad_norm: float
    tokens: int  # non-pad tokens seen
    examples: int
    seconds: float


class Engine:
    def __init__(self, config: RealmConfig, checkpoint: Path | None = None) -> None:
        self.config = config
        train = config.train
        transformers.utils.logging.disable_progress_bar()  # the daemon's log is not a terminal
        if train.threads:
            torch.set_num_threads(train.threads)
        torch.manual_seed(train.seed)
        self.model, self.tokenizer = load_model(config.model, checkpoint=checkpoint, seed=train.seed)
        self.device = next(self.model.parameters()).device
        self.parameters = count_parameters(self.model)
        self.step = 0
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=train.lr,
            weight_decay=train.weight_decay,
            foreach=self.device.type == "cpu" or None,
            fused=self.device.type == "cuda" or None,
        )
        warmup = max(1, train.warmup_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min(1.0, (step + 1) / warmup)  # warmup, then constant
        )
        if checkpoint is not None and (checkpoint / TRAINING_STATE).exists():
            self._restore(checkpoint / TRAINING_STATE)

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id

    def encode(self, examples: list[list[dict]]) -> list[EncodedExample]:
        max_length = self.config.train.max_length
        return [encode_chat(self.tokenizer, messages, max_length) for messages in examples]

    def steps_for(self, n_examples: int) -> int:
        per_step = self.config.train.batch_size * self.config.train.grad_accum
        return math.ceil(n_examples / per_step)

    def batches(self, examples: list[EncodedExample], order_seed: str) -> list[list[EncodedExample]]:
        """The quest's examples shuffled (deterministically) into optimizer-step groups."""
        order = list(range(len(examples)))
        random.Random(order_seed).shuffle(order)
        per_step = self.config.train.batch_size * self.config.train.grad_accum
        return [[examples[i] for i in order[start : start + per_step]] for start in range(0, len(order), per_step)]

    def train_step(self, batch: list[EncodedExample]) -> StepResult:
        started = time.perf_counter()
        self.model.train()
        micro = self.config.train.batch_size
        chunks = [batch[i : i + micro] for i in range(0, len(batch), micro)]
        target_tokens = sum(_loss_tokens(ex) for ex in batch) or 1
        total_loss = 0.0
        for chunk in chunks:
            inputs = self._to_device(collate(chunk, self.pad_id))
            loss = self._summed_loss(inputs)
            (loss / target_tokens).backward()
            total_loss += loss.item()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.max_grad_norm)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return StepResult(
            loss=total_loss / target_tokens,
            lr=lr,
            grad_norm=float(grad_norm),
            tokens=sum(len(ex.input_ids) for ex in batch),
            examples=len(batch),
            seconds=time.perf_counter() - started,
        )

    @torch.no_grad()
    def evaluate(self, examples: list[EncodedExample]) -> float:
        """Mean loss per target token over ``examples``."""
        self.model.eval()
        micro = self.config.train.batch_size
        total, count = 0.0, 0
        for start in range(0, len(examples), micro):
            chunk = examples[start : start + micro]
            total += self._summed_loss(self._to_device(collate(chunk, self.pad_id))).item()
            count += sum(_loss_tokens(ex) for ex in chunk)
        return total / max(count, 1)

    def _summed_loss(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy summed over target tokens, so accumulation weights every token alike."""
        labels = inputs.pop("labels")
        logits = self.model(**inputs).logits[:, :-1].float()
        targets = labels[:, 1:]
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="sum"
        )

    def _to_device(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {key: value.to(self.device, non_blocking=True) for key, value in inputs.items()}

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        torch.save(
            {
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
            },
            folder / TRAINING_STATE,
        )

    def _restore(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.step = int(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        random.setstate(state["rng"]["python"])


def _loss_tokens(example: EncodedExample) -> int:
    # labels are unshifted: the first position never counts as a target
    return sum(1 for label in example.labels[1:] if label != -100)
