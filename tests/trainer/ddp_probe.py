"""Run by test_multiprocess.py under torchrun with two CPU processes: three optimizer steps through
the engine, each process training its share (the last step has one example, so the second
process's share is empty); the main process writes the losses and the final weights' checksum
to the JSON file named on the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from realm.config import RealmConfig, TrainConfig  # noqa: E402
from trainer.engine import Engine  # noqa: E402

CONFIG = RealmConfig(train=TrainConfig(batch_size=2, grad_accum=2, max_length=64, warmup_steps=1, threads=1))


def chats() -> list[list[dict]]:
    words = ["apple", "river", "stone", "cloud", "ember", "frost", "grove", "haven"]
    return [
        [
            {"role": "user", "content": "reverse " + " ".join(words[: i + 1])},
            {"role": "assistant", "content": words[i][::-1]},
        ]
        for i in range(8)
    ]


def run() -> dict:
    engine = Engine(CONFIG)
    batch = engine.encode(chats())
    losses = [engine.train_step(batch).loss for _ in range(2)] + [engine.train_step(batch[:1]).loss]
    weights = torch.cat([p.detach().flatten() for p in engine.unwrapped.parameters()])
    return {
        "losses": losses,
        "processes": engine.accelerator.num_processes,
        "is_main": engine.is_main,
        "weights_sum": float(weights.double().sum()),
        "weights_abs": float(weights.double().abs().sum()),
    }


if __name__ == "__main__":
    result = run()
    if result["is_main"]:
        Path(sys.argv[1]).write_text(json.dumps(result))
