"""Training throughput: this engine against stock HF ``Trainer``, side by side in one run.

    python bench/train_throughput.py [--examples N] [--batch B] [--threads T] [--hidden H] [--rounds R]
                                     [--precision fp32|bf16]

The same model (DIO-nano, the same initial weights, float32 weights; fp32 math, or bf16 autocast for
every contender with ``--precision bf16``: HF's ``bf16=True``), the same data (skill-like chats of
30-300 tokens, assistant-only loss), the same examples per optimizer step and the same steps (one
pass over the data), AdamW at the same learning rate and clipping, through:

* engine: examples packed in length groups, attention per example, the last layer's MLP and the
  LM head only where there is a target, fused AdamW; every step's ``StepMetrics`` published on a
  real ``Publisher`` (ipc), as the trainer does;
* hf-stock: ``Trainer`` with dynamic padding (``DataCollatorForSeq2Seq``), SDPA attention,
  ``optim="adamw_torch"``;
* hf-group-by-length: the same in ``train_sampling_strategy="group_by_length"`` order (HF's best
  built-in setting; it was ``group_by_length=True`` before transformers 5).

The pass is cut into ``--rounds`` slices and every round runs each contender over its next slice,
the order rotating, so the machine's changing load (it is shared) hits them alike. HF's pass
order is drawn once over all the data by HF's own samplers and sliced (group-by-length needs the
whole data set: its megabatches are 50 steps). Each contender's useful tokens/s is printed, and
the engine's ratio over each baseline for the whole pass and per round (median and range), by
wall-clock time and by process CPU time (the work done, less sensitive to waiting for a core).
HF's time is its training loop (``on_train_begin`` to ``on_train_end``), not the setup.

It prints useful (non-pad) tokens/s and the ratios, the engine's model FLOP/s (6 per decoder
weight per token, 6 per LM-head weight per target token, plus attention) as a share of this
machine's dense matmul peak measured in the same run, and the share of the engine's step time
spent publishing on the bus.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers.trainer_pt_utils import LengthGroupedSampler  # noqa: E402

from realm.bus import Publisher  # noqa: E402
from realm.config import ModelConfig, RealmConfig, TrainConfig  # noqa: E402
from realm.model.chatml import EncodedExample  # noqa: E402
from realm.protocol import RealmState, StepMetrics  # noqa: E402
from trainer import (
    chunked_loss,  # noqa: E402
    target_rows,  # noqa: E402
)
from trainer.engine import Engine  # noqa: E402
from trainer.telemetry import (
    FlopCount,  # noqa: E402
    matmul_peak_flops,  # noqa: E402
)

WORDS = "add the sum of carry bit binary left right shift xor and or not zero one two three four five".split()
LR = 1e-3
PEAK_CLOCKS = (time.perf_counter, time.process_time)  # the peak by wall clock and per CPU-second


def skill_like_chats(n: int, seed: int) -> list[list[dict]]:
    """Prompts and answers whose encodings span roughly 30-300 tokens."""
    rng = random.Random(seed)
    chats = []
    for _ in range(n):
        prompt_words = rng.randint(6, 110)
        answer_words = rng.randint(2, 50)
        prompt = " ".join(rng.choice(WORDS) for _ in range(prompt_words))
        answer = " ".join(rng.choice(WORDS) for _ in range(answer_words))
        chats.append([{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}])
    return chats


def make_config(args) -> RealmConfig:
    return RealmConfig(
        model=ModelConfig(device="cpu", dtype="float32"),
        train=TrainConfig(
            lr=LR,
            warmup_steps=1,
            batch_size=args.batch,
            grad_accum=1,
            max_length=320,
            threads=args.threads,
            precision=args.precision,
        ),
    )


def fresh_engine(args) -> Engine:
    engine = Engine(make_config(args))
    if args.hidden != 128:
        from realm.model.loading import dio_nano_config

        cfg = dio_nano_config(
            len(engine.tokenizer),
            hidden_size=args.hidden,
            intermediate_size=3 * args.hidden,
            head_dim=args.hidden // 4,
            pad_token_id=engine.tokenizer.pad_token_id,
        )
        torch.manual_seed(0)
        engine.model = transformers.AutoModelForCausalLM.from_config(cfg)
        engine.model.set_attn_implementation(engine.attention)
        engine.targets_only = target_rows.install(engine.model)
        engine.parameters = sum(p.numel() for p in engine.model.parameters())
        engine.flops = FlopCount(engine.model, engine.config.train.max_length)
        engine.chunked = chunked_loss.install(engine.model)
        engine.optimizer = torch.optim.AdamW(engine.model.parameters(), lr=LR, weight_decay=0.0, fused=True)
        engine.scheduler = torch.optim.lr_scheduler.LambdaLR(engine.optimizer, lambda s: 1.0)
    return engine


class Clock:
    """Wall-clock and process CPU seconds since ``start``; the CPU time is what the work cost,
    the wall time also counts waiting for the cores the other tenants of the machine hold."""

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


class EngineRun:
    """The engine over one shard at a time, as the trainer runs it: one model and optimizer for
    every round, and every step's ``StepMetrics`` published on a real ``Publisher``."""

    def __init__(self, args, examples: list[EncodedExample]) -> None:
        self.args, self.examples = args, examples
        self.engine = fresh_engine(args)
        self.folder = Path(tempfile.mkdtemp(prefix="realm-bench-"))
        self.publisher = Publisher(f"ipc://{self.folder / 'pub'}", "bench", RealmState(run="bench"))
        self.flops = self.publish_s = self.seconds = 0.0
        self.steps = 0
        self.losses: list[float] = []

    def run(self, r: int) -> dict:
        examples = round_slice(self.examples, r, self.args)
        engine, clock = self.engine, Clock()
        clock.start()
        batches = engine.batches(examples, order_seed="bench")
        for index, batch in enumerate(batches, start=1):
            result = engine.train_step(batch)
            self.flops += result.flops
            self.losses.append(result.loss)
            t0 = time.perf_counter()
            self.publisher.emit(
                StepMetrics(
                    step=engine.step,
                    loss=result.loss,
                    lr=result.lr,
                    grad_norm=result.grad_norm,
                    tokens=result.tokens,
                    tokens_per_s=result.tokens / result.seconds,
                    examples_per_s=result.examples / result.seconds,
                    quest_step=index,
                    quest_total=len(batches),
                    flops_per_s=result.flops / result.seconds,
                )
            )
            self.publish_s += time.perf_counter() - t0
        wall, cpu = clock.read()
        self.seconds += wall
        self.steps += len(batches)
        return {
            "wall": wall,
            "cpu": cpu,
            "steps": len(batches),
            "loss": sum(self.losses[-len(batches) :]) / len(batches),
            "useful": sum(len(ex.input_ids) for ex in examples),
        }

    def close(self) -> None:
        self.publisher.close()
        shutil.rmtree(self.folder, ignore_errors=True)


class TrainLoopClock(transformers.TrainerCallback):
    """Times ``Trainer.train``'s loop itself (batches, collation, steps), not its setup."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.elapsed = (0.0, 0.0)

    def on_train_begin(self, args, state, control, **kwargs):
        self.clock.start()

    def on_train_end(self, args, state, control, **kwargs):
        self.elapsed = self.clock.read()


class HFRun:
    """Stock HF ``Trainer``, its whole pass cut into rounds (the same model carried across them).

    The pass's order is drawn once over all the data by HF's own sampler (``RandomSampler`` for
    stock, ``LengthGroupedSampler`` for group-by-length, whose megabatches of 50 steps want the
    whole data set), and round r trains on the r-th run of those batches in that order: exactly
    the batches one uninterrupted ``Trainer.train`` would take, in slices.
    """

    def __init__(self, args, strategy: str, examples: list[EncodedExample]) -> None:
        self.args = args
        engine = fresh_engine(args)  # the same initial weights and tokenizer
        self.tokenizer = engine.tokenizer
        self.model = engine.unwrapped
        self.model.set_attn_implementation("sdpa")
        self.examples = examples
        seed = torch.Generator().manual_seed(0)
        if strategy == "group_by_length":
            lengths = [len(ex.input_ids) for ex in examples]
            self.order = list(LengthGroupedSampler(args.batch, lengths=lengths, generator=seed))
        else:
            self.order = torch.randperm(len(examples), generator=seed).tolist()

    def run(self, r: int) -> dict:
        chunk = round_slice(self.order, r, self.args)
        data = [
            {
                "input_ids": self.examples[i].input_ids,
                "labels": self.examples[i].labels,
                "attention_mask": [1] * len(self.examples[i].input_ids),
            }
            for i in chunk
        ]
        out = tempfile.mkdtemp(prefix="realm-bench-hf-")
        training_args = transformers.TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=self.args.batch,
            num_train_epochs=1,
            learning_rate=LR,
            lr_scheduler_type="constant",
            optim="adamw_torch",
            weight_decay=0.0,
            max_grad_norm=1.0,
            logging_strategy="no",
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            bf16=self.args.precision == "bf16",
            disable_tqdm=True,
            dataloader_num_workers=0,
            remove_unused_columns=False,
            train_sampling_strategy="sequential",
            seed=0,
        )
        collator = transformers.DataCollatorForSeq2Seq(self.tokenizer, padding=True, label_pad_token_id=-100)
        loop = TrainLoopClock()
        trainer = transformers.Trainer(
            model=self.model, args=training_args, train_dataset=data, data_collator=collator, callbacks=[loop]
        )
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # its end-of-train dict
        output = trainer.train()
        shutil.rmtree(out, ignore_errors=True)
        wall, cpu = loop.elapsed
        return {
            "wall": wall,
            "cpu": cpu,
            "steps": output.global_step,
            "loss": output.training_loss,
            "useful": sum(len(ex["input_ids"]) for ex in data),
        }

    def close(self) -> None:
        """Nothing held between rounds: each round's ``Trainer`` and output folder are gone already."""


def round_slice(order: list, r: int, args) -> list:
    """Round r's share of a pass: whole steps, the rounds as even as the step count allows."""
    steps = -(-len(order) // args.batch)
    per_round = -(-steps // args.rounds)
    return order[r * per_round * args.batch : (r + 1) * per_round * args.batch]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1024, help="examples in the data set (one pass)")
    parser.add_argument("--batch", type=int, default=16, help="examples per optimizer step")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for every run")
    parser.add_argument("--hidden", type=int, default=128, help="model width (128 = DIO-nano; 256 = the probe's)")
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="fp32, or bf16 autocast over float32 weights for every contender (default fp32)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="shards of the data; each round runs every contender on one, "
        "in a rotating order, so a change in the machine's load hits them alike",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.utils.logging.set_verbosity_error()

    tokenizer_engine = fresh_engine(args)
    examples = tokenizer_engine.encode(skill_like_chats(args.examples, seed=0))
    lengths = sorted(len(ex.input_ids) for ex in examples)
    print(
        f"data: {len(examples)} chats, {sum(lengths)} tokens, lengths {lengths[0]}-{lengths[-1]} "
        f"(median {lengths[len(lengths) // 2]}); {args.batch} examples/step; threads {args.threads}; {args.precision}; "
        f"model {tokenizer_engine.parameters / 1e6:.2f}M params (hidden {args.hidden}); {args.rounds} rounds; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )

    runs = {
        "engine": EngineRun(args, examples),
        "hf-stock": HFRun(args, "random", examples),
        "hf-group-by-length": HFRun(args, "group_by_length", examples),
    }
    names = list(runs)
    rounds: list[dict] = []
    peaks = []
    try:
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            results = {name: runs[name].run(r) for name in order}
            peaks.append([matmul_peak_flops(torch.device("cpu"), seconds=0.5, clock=clock) for clock in PEAK_CLOCKS])
            rounds.append(results)
            print(
                f"round {r + 1}: "
                + ", ".join(f"{n} {results[n]['useful'] / results[n]['wall']:.0f} tok/s" for n in names)
                + f"; load average {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    finally:
        for run in runs.values():
            run.close()
    report(args, runs["engine"], rounds, [median([p[i] for p in peaks]) for i in range(len(PEAK_CLOCKS))])


def report(args, engine: EngineRun, rounds: list[dict], peak: list[float]) -> None:
    totals = {
        name: {key: sum(r[name][key] for r in rounds) for key in ("steps", "wall", "cpu", "useful")}
        for name in rounds[0]
    }
    print(
        f"\n{'run':<20} {'steps':>6} {'wall s':>8} {'cpu s':>8} {'useful tok/s':>13} {'tok/cpu-s':>10} {'mean loss':>10}"
    )
    for name, t in totals.items():
        loss = sum(r[name]["loss"] * r[name]["steps"] for r in rounds) / t["steps"]
        print(
            f"{name:<20} {t['steps']:>6} {t['wall']:>8.2f} {t['cpu']:>8.2f} {t['useful'] / t['wall']:>13.0f} "
            f"{t['useful'] / t['cpu']:>10.0f} {loss:>10.4f}"
        )
    print("\nengine's useful tokens/s over theirs: the whole pass, then the median and range of the rounds")
    for name in ("hf-stock", "hf-group-by-length"):
        goal = 2.0 if name == "hf-stock" else 1.3
        ratios = {}
        for clock in ("wall", "cpu"):
            whole = speedup(totals["engine"], totals[name], clock)
            each = [speedup(r["engine"], r[name], clock) for r in rounds]
            ratios[clock] = f"{whole:5.2f}x (median {median(each):.2f}, {min(each):.2f}-{max(each):.2f})"
        print(f"engine / {name:<20} wall {ratios['wall']}   cpu {ratios['cpu']}   goal >= {goal}x")
    wall_peak, cpu_peak = peak
    achieved = engine.flops / engine.seconds
    per_cpu_s = engine.flops / totals["engine"]["cpu"]
    print(
        f"engine model FLOP/s {achieved / 1e9:.2f} G = {100 * achieved / wall_peak:.1f} % of the measured matmul peak "
        f"({wall_peak / 1e9:.1f} GFLOP/s, fp32, {args.threads} threads, median of {len(rounds)} probes); per CPU-second "
        f"{per_cpu_s / 1e9:.2f} G = {100 * per_cpu_s / cpu_peak:.1f} % of the peak per CPU-second ({cpu_peak / 1e9:.1f} G)"
    )
    print(
        f"bus publishing: {1e3 * engine.publish_s / engine.steps:.3f} ms/step = "
        f"{100 * engine.publish_s / engine.seconds:.3f} % of step time (goal < 1 %)"
    )


def speedup(mine: dict, theirs: dict, clock: str) -> float:
    return (mine["useful"] / mine[clock]) / (theirs["useful"] / theirs[clock])


if __name__ == "__main__":
    main()
