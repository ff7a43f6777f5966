"""bf16 autocast against fp32 on CPU: training steps/s of the real engine, side by side in one run.

    python bench/cpu_bf16.py [--rounds R] [--steps S] [--batch B] [--threads T] [--models dio-nano,30m]

For each model (DIO-nano, and a ~30M-parameter Qwen3 of random weights with DIO-nano's
tokenizer), two engines start from the same weights on the same data: ``train.precision: fp32``
and ``bf16`` (autocast over float32 master weights). Each round runs S steps of one, then S of
the other, the order alternating, so the machine's changing load (it is shared) hits both alike;
the ratio bf16/fp32 is printed per round (median and range) and for the whole run, with the load
average at start and end and whether this CPU has native bf16 (what ``train.precision: auto``
looks at on CPU).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from realm.config import config_from  # noqa: E402
from trainer.engine import Engine, cpu_native_bf16  # noqa: E402

# ~30M parameters: 10 layers of width 512 (grouped-query attention, 4 KV heads), MLP 1536
QWEN3_30M = dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=10, num_attention_heads=8,
                 num_key_value_heads=4, head_dim=64, max_position_embeddings=2048, tie_word_embeddings=True)  # fmt: skip


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def engines(model: str, folder: Path, args) -> dict[str, Engine]:
    from gpu_check import build_model

    spec = {"name": "builtin:dio-nano", "device": "cpu"}
    if model == "30m":
        parameters = build_model(folder, {**QWEN3_30M, "vocab_size": 1024})
        print(f"30m: {parameters / 1e6:.1f}M parameters", flush=True)
        spec = {"name": str(folder), "device": "cpu", "profile": "dio-nano"}
    train = dict(batch_size=args.batch, max_length=256, threads=args.threads, warmup_steps=5, lr=1e-3,
                 gradient_checkpointing=False)  # fmt: skip
    return {p: Engine(config_from({"model": spec, "train": {**train, "precision": p}})) for p in ("fp32", "bf16")}


def batches(engine: Engine, n: int, size: int) -> list:
    from gpu_check import chats

    return [engine.encode(chats(size, seed=i, longest=600)) for i in range(n)]


def bench(model: str, args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pair = engines(model, Path(tmp), args)
        data = batches(pair["fp32"], args.rounds * args.steps + 1, args.batch)
        for engine in pair.values():
            engine.train_step(data[-1])  # warm up: first-call allocations and kernel choice
        seconds = {p: 0.0 for p in pair}
        cpu_seconds = {p: 0.0 for p in pair}
        ratios = []
        for round_ in range(args.rounds):
            order = list(pair) if round_ % 2 == 0 else list(pair)[::-1]
            took = {}
            for precision in order:
                chunk = data[round_ * args.steps : (round_ + 1) * args.steps]
                started, cpu_started = time.perf_counter(), time.process_time()
                for batch in chunk:
                    pair[precision].train_step(batch)
                took[precision] = time.perf_counter() - started
                seconds[precision] += took[precision]
                cpu_seconds[precision] += time.process_time() - cpu_started
            ratios.append(took["fp32"] / took["bf16"])
            print(f"  {model} round {round_ + 1}: bf16/fp32 speed {ratios[-1]:.2f}x; {load()}", flush=True)
        steps = args.rounds * args.steps
        rates = {p: steps / s for p, s in seconds.items()}
        print(
            f"{model}: fp32 {rates['fp32']:.3f} steps/s, bf16 {rates['bf16']:.3f} steps/s (wall); "
            f"bf16/fp32 speed {rates['bf16'] / rates['fp32']:.2f}x wall, "
            f"{cpu_seconds['fp32'] / cpu_seconds['bf16']:.2f}x CPU time "
            f"(per round median {statistics.median(ratios):.2f}x, range {min(ratios):.2f}-{max(ratios):.2f}); {load()}",
            flush=True,
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default 4)")
    parser.add_argument("--steps", type=int, default=2, help="steps per precision per round (default 4)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--batch", type=int, default=8, help="examples per step (default 8)")
    parser.add_argument("--models", default="dio-nano,30m", help="comma-separated: dio-nano, 30m")
    args = parser.parse_args(argv)
    capability = torch.backends.cpu.get_cpu_capability()
    print(f"cpu: {capability}, native bf16: {cpu_native_bf16()}; torch {torch.__version__}; start {load()}", flush=True)
    for model in args.models.split(","):
        bench(model.strip(), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
