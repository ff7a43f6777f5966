"""Training throughput: this engine against stock HF ``Trainer``, side by side in one run.

    python bench/train_throughput.py [--examples N] [--batch B] [--threads T] [--hidden H]

The same model (DIO-nano, the same initial weights), the same data (skill-like chats of 30-300
tokens, assistant-only loss), the same examples per optimizer step and the same steps (one
pass over the data), AdamW at the same learning rate, through:

* engine: packed rows, attention per example, the LM head only where there is a target;
  every step's ``StepMetrics`` published on a real ``Publisher`` (ipc), as the trainer does;
* hf-stock: ``Trainer`` with dynamic padding (``DataCollatorForSeq2Seq``), SDPA attention;
* hf-group-by-length: the same with ``train_sampling_strategy="group_by_length"`` (HF's best
  built-in setting; it was ``group_by_length=True`` before transformers 5).

It prints useful (non-pad) tokens/s and the ratios, the engine's model FLOP/s (6N per token plus
attention) as a share of this machine's dense matmul peak measured in the same run, and the
share of the engine's step time spent publishing on the bus.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import transformers  # noqa: E402

from realm.bus import Publisher  # noqa: E402
from realm.config import ModelConfig, RealmConfig, TrainConfig  # noqa: E402
from realm.protocol import RealmState, StepMetrics  # noqa: E402
from trainer.data import EncodedExample  # noqa: E402
from trainer.engine import Engine  # noqa: E402
from trainer.telemetry import matmul_peak_flops  # noqa: E402

WORDS = "add the sum of carry bit binary left right shift xor and or not zero one two three four five".split()
LR = 1e-3


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
        train=TrainConfig(lr=LR, warmup_steps=1, batch_size=args.batch, grad_accum=1, max_length=320, threads=args.threads),
    )


def fresh_engine(args) -> Engine:
    engine = Engine(make_config(args))
    if args.hidden != 128:
        from trainer.model import dio_nano_config

        cfg = dio_nano_config(len(engine.tokenizer), hidden_size=args.hidden, intermediate_size=3 * args.hidden,
                              head_dim=args.hidden // 4, pad_token_id=engine.tokenizer.pad_token_id)
        torch.manual_seed(0)
        engine.model = transformers.AutoModelForCausalLM.from_config(cfg)
        engine.model.set_attn_implementation(engine.attention)
        engine.parameters = sum(p.numel() for p in engine.model.parameters())
        engine._flop_shape = (cfg.num_hidden_layers, cfg.num_attention_heads * cfg.head_dim)
        engine.optimizer = torch.optim.AdamW(engine.model.parameters(), lr=LR, foreach=True)
        engine.scheduler = torch.optim.lr_scheduler.LambdaLR(engine.optimizer, lambda s: 1.0)
    return engine


def run_engine(args, examples: list[EncodedExample]) -> dict:
    engine = fresh_engine(args)
    batches = engine.batches(examples, order_seed="bench")
    folder = Path(tempfile.mkdtemp(prefix="realm-bench-"))
    publisher = Publisher(f"ipc://{folder / 'pub'}", "bench", RealmState(run="bench"))
    publish_s = flops = 0.0
    useful = 0
    losses = []
    started = time.perf_counter()
    try:
        for index, batch in enumerate(batches, start=1):
            result = engine.train_step(batch)
            flops += result.flops
            losses.append(result.loss)
            useful += result.tokens
            t0 = time.perf_counter()
            publisher.emit(StepMetrics(
                step=engine.step, loss=result.loss, lr=result.lr, grad_norm=result.grad_norm, tokens=result.tokens,
                tokens_per_s=result.tokens / result.seconds, examples_per_s=result.examples / result.seconds,
                quest_step=index, quest_total=len(batches), flops_per_s=result.flops / result.seconds,
            ))
            publish_s += time.perf_counter() - t0
        seconds = time.perf_counter() - started
    finally:
        publisher.close()
        shutil.rmtree(folder, ignore_errors=True)
    return {"seconds": seconds, "useful": useful, "flops": flops, "publish_s": publish_s, "steps": len(batches),
            "loss": sum(losses) / len(losses)}


def run_hf(args, examples: list[EncodedExample], strategy: str) -> dict:
    engine = fresh_engine(args)  # the same initial weights and tokenizer
    model = engine.unwrapped
    model.set_attn_implementation("sdpa")
    data = [{"input_ids": ex.input_ids, "labels": ex.labels, "attention_mask": [1] * len(ex.input_ids)} for ex in examples]
    out = tempfile.mkdtemp(prefix="realm-bench-hf-")
    training_args = transformers.TrainingArguments(
        output_dir=out, per_device_train_batch_size=args.batch, num_train_epochs=1, learning_rate=LR,
        lr_scheduler_type="constant", optim="adamw_torch", weight_decay=0.0, max_grad_norm=1.0,
        logging_strategy="no", save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True,
        dataloader_num_workers=0, remove_unused_columns=False, train_sampling_strategy=strategy, seed=0,
    )
    collator = transformers.DataCollatorForSeq2Seq(engine.tokenizer, padding=True, label_pad_token_id=-100)
    trainer = transformers.Trainer(model=model, args=training_args, train_dataset=data, data_collator=collator)
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": seconds, "useful": sum(len(ex.input_ids) for ex in examples), "steps": output.global_step,
            "loss": output.training_loss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1024, help="examples in the data set (one pass)")
    parser.add_argument("--batch", type=int, default=16, help="examples per optimizer step")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for every run")
    parser.add_argument("--hidden", type=int, default=128, help="model width (128 = DIO-nano; 256 = the probe's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.utils.logging.set_verbosity_error()

    tokenizer_engine = fresh_engine(args)
    examples = tokenizer_engine.encode(skill_like_chats(args.examples, seed=0))
    lengths = sorted(len(ex.input_ids) for ex in examples)
    print(f"data: {len(examples)} chats, {sum(lengths)} tokens, lengths {lengths[0]}-{lengths[-1]} "
          f"(median {lengths[len(lengths) // 2]}); {args.batch} examples/step; threads {args.threads}; "
          f"model {tokenizer_engine.parameters / 1e6:.2f}M params (hidden {args.hidden})")

    peak = matmul_peak_flops(torch.device("cpu"), seconds=1.0)
    results = {
        "engine": run_engine(args, examples),
        "hf-stock": run_hf(args, examples, "random"),
        "hf-group-by-length": run_hf(args, examples, "group_by_length"),
    }
    peak_after = matmul_peak_flops(torch.device("cpu"), seconds=1.0)
    peak = max(peak, peak_after)  # the machine is shared: take the better of two probes

    print(f"\n{'run':<20} {'steps':>6} {'seconds':>8} {'useful tok/s':>13} {'mean loss':>11}")
    for name, r in results.items():
        print(f"{name:<20} {r['steps']:>6} {r['seconds']:>8.2f} {r['useful'] / r['seconds']:>13.0f} {r['loss']:>11.4f}")
    engine_tps = results["engine"]["useful"] / results["engine"]["seconds"]
    for name in ("hf-stock", "hf-group-by-length"):
        other = results[name]["useful"] / results[name]["seconds"]
        goal = 2.0 if name == "hf-stock" else 1.3
        print(f"engine / {name:<20} {engine_tps / other:5.2f}x   (goal >= {goal}x)")
    e = results["engine"]
    achieved = e["flops"] / e["seconds"]
    print(f"engine model FLOP/s {achieved / 1e9:.2f} G = {100 * achieved / peak:.1f} % of the measured matmul peak "
          f"({peak / 1e9:.1f} GFLOP/s, fp32, {args.threads} threads)")
    print(f"bus publishing: {1e3 * e['publish_s'] / e['steps']:.3f} ms/step = "
          f"{100 * e['publish_s'] / e['seconds']:.3f} % of step time (goal < 1 %)")


if __name__ == "__main__":
    main()
