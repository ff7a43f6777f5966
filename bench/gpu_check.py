"""The GPU check: Qwen3-0.6B's real shape through the real trainer, oracle and baselines.

    python bench/gpu_check.py [--tiny] [--steps N] [--out DIR] [--list-packages]

One GPU, no downloads, under 8 minutes. It builds a random-init model with Qwen3-0.6B's config
(vocabulary 151,936) and the shipped tokenizer, saves it with ``save_pretrained``, and checks:

1. ``engine``: N steps of the real engine (bf16 autocast, the qwen3-0.6b profile's memory
   options): useful tokens/s, MFU against the card's spec peak and the measured bf16 matmul
   peak, peak memory against the trainer's estimate;
2. ``hf``: stock HF ``Trainer`` on the same model and data, same batch: the tokens/s ratio;
3. ``oom``: a micro-batch that cannot fit is halved until it does (the step is redone);
4. ``fp16``: fp16 with loss scaling trains (overflowed steps skipped, the scale lowered);
5. ``nvml``: pynvml's readings of the card (utilisation, memory, temperature, power);
6. ``resume``: ``realm trainer`` killed with SIGKILL mid-run, restarted: the resumed losses
   against an uninterrupted run's;
7. ``oracle``: the oracle loads the 0.6B checkpoint (promote to serving time) and streams a
   chat (tokens/s).

``--tiny`` runs the same code on CPU with a small model of the same vocabulary (the GPU-only
checks say they are skipped and why), so CI keeps the script working. It prints a table and
writes ``report.json`` to ``--out``. ``--list-packages`` prints what a bare GPU box needs
beyond torch, transformers and accelerate (wheels to carry; see bench/gpu_check.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Beyond torch, transformers and accelerate: what the trainer and the oracle import.
PACKAGES = ("pyzmq", "msgspec", "pyyaml", "nvidia-ml-py", "rich", "tokenizers", "safetensors")
QWEN3_06B = dict(vocab_size=151_936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                 num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                 rope_theta=1_000_000.0, tie_word_embeddings=True)  # fmt: skip
TINY = dict(QWEN3_06B, hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16)  # fmt: skip


def _options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a small model on CPU: checks the script, not a GPU")
    parser.add_argument("--steps", type=int, default=None, help="engine and HF steps (default 120, tiny 6)")
    parser.add_argument("--out", type=Path, default=None, help="where report.json goes (default: a temp folder)")
    parser.add_argument("--list-packages", action="store_true")
    return parser.parse_args(argv)


class Report:
    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}

    def check(self, name: str, run, *args) -> None:
        started = time.perf_counter()
        try:
            result = run(*args)
        except Skipped as skip:
            result = {"status": "skipped", "why": str(skip)}
        except Exception as exc:  # one failed check must not hide the others
            result = {
                "status": "failed",
                "why": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc()[-2000:],
            }
        result.setdefault("status", "ok")
        result["seconds"] = round(time.perf_counter() - started, 1)
        self.rows[name] = result
        shown = {k: v for k, v in result.items() if k != "trace"}
        print(f"{name:>7}  " + "  ".join(f"{k}={v}" for k, v in shown.items()), flush=True)


class Skipped(Exception):
    """A check this machine cannot run (no CUDA)."""


# --------------------------------------------------------------------------- setup


def build_model(folder: Path, shape: dict, seed: int = 0) -> int:
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    from realm.model.loading import load_tokenizer

    tokenizer = load_tokenizer("builtin:dio-nano")
    config = Qwen3Config(**shape, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def chats(n: int, seed: int, longest: int) -> list[list[dict]]:
    """Synthetic chats, a prompt and an answer of up to ``longest`` characters altogether."""
    rng = random.Random(seed)
    words = "the of carry bit sum left right shift xor zero one two three four five six seven".split()
    out = []
    for _ in range(n):
        size = rng.randint(longest // 8, longest // 5)
        prompt = " ".join(rng.choice(words) for _ in range(size))
        answer = " ".join(rng.choice(words) for _ in range(size // 2))
        out.append([{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}])
    return out


def realm_config(folder: Path, tiny: bool, **train):
    from realm.config import config_from

    options = {"threads": 2} if tiny else {}
    if tiny:
        options.update(batch_size=4, grad_accum=1, max_length=256, precision="fp32")
    options.update(train)
    return config_from({"model": {"name": str(folder), "profile": "qwen3-0.6b", "device": "cpu" if tiny else "auto"},
                        "train": options})  # fmt: skip


# --------------------------------------------------------------------------- checks


def check_engine(folder: Path, tiny: bool, steps: int, data) -> dict:
    import torch

    from realm.gpu import spec_peak_flops
    from trainer.engine import Engine
    from trainer.telemetry import matmul_peak_flops

    engine = Engine(realm_config(folder, tiny))
    cuda = engine.device.type == "cuda"
    examples = engine.encode(data)
    batches = engine.batches(examples, order_seed="gpu-check")[: steps + 2]
    for batch in batches[:2]:  # warm up: kernels, allocator
        engine.train_step(batch)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started, tokens, flops, losses = time.perf_counter(), 0, 0.0, []
    for batch in batches[2:]:
        result = engine.train_step(batch)
        tokens += result.tokens
        flops += result.flops
        losses.append(result.loss)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    dtype = torch.bfloat16 if cuda else torch.float32
    measured = matmul_peak_flops(engine.device, dtype=dtype, seconds=0.5)
    name = torch.cuda.get_device_name(engine.device) if cuda else "CPU"
    spec = spec_peak_flops(name)
    row = {"device": name, "precision": engine.precision, "steps": len(losses), "tokens_per_s": round(tokens / seconds),
           "loss_first_last": [round(losses[0], 3), round(losses[-1], 3)],
           "mfu_measured_peak": round(flops / seconds / measured, 3),
           "mfu_spec_peak": round(flops / seconds / spec, 3) if spec else None,
           "estimate_gib": round(engine.memory.total / 2**30, 1)}  # fmt: skip
    if cuda:
        row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(engine.device) / 2**30, 1)
    del engine
    _free()
    return row


def check_hf(folder: Path, tiny: bool, steps: int, data, engine_row: dict) -> dict:
    import torch
    import transformers

    from realm.model.loading import load_tokenizer

    cuda = torch.cuda.is_available() and not tiny
    config = realm_config(folder, tiny)
    tokenizer = load_tokenizer(str(folder))
    from realm.model.chatml import encode_chat

    examples = [encode_chat(tokenizer, chat, config.train.max_length) for chat in data]
    per_step = config.train.batch_size * config.train.grad_accum
    rows = [{"input_ids": x.input_ids, "labels": x.labels, "attention_mask": [1] * len(x.input_ids)}
            for x in examples[: (steps + 2) * per_step]]  # fmt: skip
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa")
    if config.train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    out = tempfile.mkdtemp(prefix="gpu-check-hf-")
    timer = _loop_timer()
    args = transformers.TrainingArguments(
        output_dir=out, per_device_train_batch_size=config.train.batch_size,
        gradient_accumulation_steps=config.train.grad_accum, num_train_epochs=1, learning_rate=config.train.lr,
        lr_scheduler_type="constant", optim="adamw_torch_fused" if cuda else "adamw_torch", bf16=cuda,
        logging_strategy="no", save_strategy="no", report_to="none", use_cpu=not cuda, disable_tqdm=True,
        remove_unused_columns=False, dataloader_num_workers=0, seed=0,
    )  # fmt: skip
    collator = transformers.DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=rows, data_collator=collator, callbacks=[timer]
    )
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
    trainer.train()
    shutil.rmtree(out, ignore_errors=True)
    useful = sum(len(r["input_ids"]) for r in rows[2 * per_step :])
    seconds = timer.seconds * len(rows[2 * per_step :]) / max(len(rows), 1)  # the same steps the engine timed
    hf_rate = useful / max(seconds, 1e-9)
    del trainer, model
    _free()
    return {"tokens_per_s": round(hf_rate), "engine_over_hf": round(engine_row.get("tokens_per_s", 0) / hf_rate, 2)}


def check_oom(folder: Path, tiny: bool) -> dict:
    import torch

    if tiny or not torch.cuda.is_available():
        raise Skipped("no CUDA: out-of-memory recovery needs a GPU to run out of")
    from trainer.engine import Engine

    engine = Engine(realm_config(folder, tiny, batch_size=512, grad_accum=1, max_length=2048,
                                 gradient_checkpointing=False))  # fmt: skip
    batch = engine.encode(chats(512, 5, 2048 * 3))
    result = engine.train_step(batch)
    row = {"micro_batch": result.micro_batch, "oom_retries": result.oom_retries, "loss": round(result.loss, 3)}
    del engine
    _free()
    if not result.oom_retries:
        row["status"] = "failed"
        row["why"] = "a micro-batch of 512 x 2048 tokens fitted: the check did not run out of memory"
    return row


def check_fp16(folder: Path, tiny: bool, data) -> dict:
    import torch

    if tiny or not torch.cuda.is_available():
        raise Skipped("no CUDA: fp16 loss scaling is a GPU path")
    from trainer.engine import Engine

    engine = Engine(realm_config(folder, tiny, precision="fp16"))
    batches = engine.batches(engine.encode(data), order_seed="fp16")[:20]
    results = [engine.train_step(batch) for batch in batches]
    row = {"steps": engine.step, "skipped": sum(r.skipped for r in results), "loss_scale": results[-1].loss_scale,
           "loss_first_last": [round(results[0].loss, 3), round(results[-1].loss, 3)]}  # fmt: skip
    del engine
    _free()
    return row


def check_nvml() -> dict:
    from realm.gpu import read_gpus

    gpus, note = read_gpus()
    if not gpus:
        raise Skipped(note)
    return {"gpus": [{k: getattr(g, k) for k in g.__struct_fields__} for g in gpus]}


def check_resume(folder: Path, tiny: bool, work: Path, data) -> dict:
    steps, every = (12, 4) if tiny else (40, 10)
    config = work / "resume.yaml"
    train = {"checkpoint_every": every, "warmup_steps": 2, "val_every": 1000}
    quests = {"too_long": "truncate"}  # the synthetic chats run past a tiny max_length
    if tiny:
        train.update(batch_size=4, grad_accum=1, max_length=256, precision="fp32", threads=1)
    import yaml

    config.write_text(yaml.safe_dump({"model": {"name": str(folder), "profile": "qwen3-0.6b",
                                                "device": "cpu" if tiny else "auto"},
                                      "train": train, "quests": quests, "skills": {"enabled": False}}))  # fmt: skip

    def home(name: str) -> Path:
        root = work / name
        quest = root / "quests" / "queued" / "normal" / "synthetic.jsonl"
        quest.parent.mkdir(parents=True)
        quest.write_text("".join(json.dumps({"messages": c}) + "\n" for c in data), encoding="utf-8")
        return root

    def trainer(root: Path, max_steps: int) -> subprocess.Popen:
        command = [sys.executable, "-m", "realm.cli", "trainer", "--home", str(root), "--config", str(config),
                   "--max-steps", str(max_steps)]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def finish(process: subprocess.Popen) -> None:
        _, err = process.communicate(timeout=300)
        if process.returncode:
            raise RuntimeError(f"realm trainer exited {process.returncode}: {err.decode()[-800:]}")

    reference = home("reference")
    finish(trainer(reference, steps))
    killed = home("killed")
    first = trainer(killed, steps)
    deadline = time.monotonic() + 600
    while max(_steps(killed), default=0) < every + 2 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    resumed_from = max((int(p.name.split("-")[1]) for p in (killed / "vault" / "checkpoints").glob("checkpoint-*")),
                       default=0)  # fmt: skip
    finish(trainer(killed, steps - resumed_from))
    mine, theirs = _steps(killed), _steps(reference)
    common = sorted(set(mine) & set(theirs))
    diff = max(abs(mine[s] - theirs[s]) for s in common) if common else None
    row = {"resumed_from": resumed_from, "steps_compared": len(common), "max_loss_diff": diff}
    if len(common) < steps or diff is None or diff > (1e-5 if tiny else 2e-2):
        row.update(status="failed", why="the resumed run's losses differ from the uninterrupted run's")
    return row


def check_oracle(folder: Path, tiny: bool, work: Path) -> dict:
    import msgspec

    from realm.config import OracleConfig
    from realm.oracle.client import OracleClient
    from realm.oracle.worker import OracleWorker
    from realm.protocol import Sampling

    home = work / "killed"  # the resume check's realm: its vault holds the 0.6B-shaped checkpoints
    config = realm_config(folder, tiny)
    config = msgspec.structs.replace(config, oracle=OracleConfig(device="cpu" if tiny else "auto", load_on_start="",
                                                                 threads=2 if tiny else 0))  # fmt: skip
    worker = OracleWorker(config, home)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    if not worker.ready.wait(120):
        raise RuntimeError("the oracle did not come up in 120 s")
    try:
        client = OracleClient(worker.control_endpoint, timeout_s=600, retries=0)
        loaded = client.promote("latest").serving
        text, end = client.chat([{"role": "user", "content": "the sum of one and two"}], Sampling(max_new_tokens=128))
        return {"checkpoint": loaded.name, "promote_to_serving_s": round(loaded.load_seconds, 2),
                "chat_tokens": end.tokens, "chat_tokens_per_s": round(end.tokens / max(end.seconds, 1e-9), 1)}  # fmt: skip
    finally:
        worker.stop()
        thread.join(30)


# --------------------------------------------------------------------------- helpers


def _loop_timer():
    """A ``TrainerCallback`` timing ``Trainer.train``'s loop (not its setup)."""
    import torch
    import transformers

    def sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    class LoopTimer(transformers.TrainerCallback):
        seconds = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            sync()
            self.started = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            sync()
            self.seconds = time.perf_counter() - self.started

    return LoopTimer()


def _steps(home: Path) -> dict[int, float]:
    path = home / "logs" / "metrics.jsonl"
    if not path.exists():
        return {}
    from trainer.telemetry import read_metrics

    return {r["step"]: r["loss"] for r in read_metrics(path) if r["kind"] == "step"}


def _free() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def main(argv=None) -> int:
    options = _options(argv)
    if options.list_packages:
        print(" ".join(PACKAGES))
        return 0
    steps = options.steps or (6 if options.tiny else 120)
    out = options.out or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-work-"))
    report = Report()
    folder = work / "qwen3-0.6b-random"
    shape = TINY if options.tiny else QWEN3_06B
    parameters = build_model(folder, shape)
    print(
        f"model: Qwen3 config, vocabulary {shape['vocab_size']:,}, {parameters / 1e6:.1f}M parameters, random init",
        flush=True,
    )
    longest = 900 if options.tiny else 6000  # characters: up to ~2,000 tokens of DIO-nano's tokenizer
    data = chats(400 if options.tiny else 2000, 1, longest)
    report.check("engine", check_engine, folder, options.tiny, steps, data)
    report.check("hf", check_hf, folder, options.tiny, steps, data, report.rows["engine"])
    report.check("oom", check_oom, folder, options.tiny)
    report.check("fp16", check_fp16, folder, options.tiny, data)
    report.check("nvml", check_nvml)
    report.check("resume", check_resume, folder, options.tiny, work, data[:200])
    report.check("oracle", check_oracle, folder, options.tiny, work)
    (out / "report.json").write_text(
        json.dumps({"tiny": options.tiny, "parameters": parameters, **report.rows}, indent=2)
    )
    shutil.rmtree(work, ignore_errors=True)
    failed = [name for name, row in report.rows.items() if row["status"] == "failed"]
    print(f"report: {out / 'report.json'}" + (f"; failed: {', '.join(failed)}" if failed else "; no check failed"))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
