"""What several training processes cost rank 0: the step order it broadcasts, against the step.

    python bench/lockstep.py [--processes P] [--steps N] [--batch B] [--max-length L]

Re-launches itself under torchrun with P processes (CPU, gloo; on a GPU machine the same code
runs NCCL for DDP and gloo for the orders). Every step, rank 0 sends the step's examples to the
other ranks (``trainer/lockstep.py``) and all ranks train their share through the engine, as
the daemon does. It prints, side by side, the mean time of the broadcast and of the whole step,
the broadcast's share of the step, the transfer alone (after a barrier, outside the timed
step), and the order's pickled size.
"""

from __future__ import annotations

import argparse
import os
import pickle
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _options(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16, help="examples per optimizer step (all ranks)")
    parser.add_argument("--max-length", type=int, default=256)
    return parser.parse_args(argv)


def _chats(n: int, seed: int = 0) -> list[list[dict]]:
    rng = random.Random(seed)
    words = ["apple", "river", "stone", "cloud", "ember", "frost", "grove", "haven"]
    chats = []
    for _ in range(n):
        prompt = " ".join(rng.choice(words) for _ in range(rng.randint(5, 60)))
        chats.append([{"role": "user", "content": f"reverse {prompt}"}, {"role": "assistant", "content": prompt[::-1]}])
    return chats


def _rank_main(opts) -> None:
    import torch

    from realm.config import RealmConfig, TrainConfig
    from trainer.engine import Engine
    from trainer.lockstep import Lockstep, Order

    config = RealmConfig(
        train=TrainConfig(batch_size=opts.batch, max_length=opts.max_length, warmup_steps=1, threads=1)
    )
    lockstep = Lockstep(cpu=True)
    engine = Engine(config)
    examples = engine.encode(_chats(opts.batch * opts.steps))
    batches = [examples[i : i + opts.batch] for i in range(0, len(examples), opts.batch)]
    sends, transfers, steps = [], [], []
    for batch in batches:
        started = time.perf_counter()
        if lockstep.leads:
            lockstep.send("train", batch)
            sent = time.perf_counter()
        else:
            batch = lockstep.receive().payload
        engine.train_step(batch)
        if lockstep.leads:
            sends.append(sent - started)
            steps.append(time.perf_counter() - started)
        torch.distributed.barrier(group=lockstep.group)  # outside the step: the transfer alone, all ranks ready
        started = time.perf_counter()
        if lockstep.leads:
            lockstep.send("again", batch)
            transfers.append(time.perf_counter() - started)
        else:
            lockstep.receive()
    if lockstep.leads:
        lockstep.send("stop")
        skip = min(2, len(steps) - 1)  # the first steps warm up allocators and DDP buckets
        send, step = sum(sends[skip:]) / len(sends[skip:]), sum(steps[skip:]) / len(steps[skip:])
        transfer = sum(transfers[skip:]) / len(transfers[skip:])
        size = len(pickle.dumps(Order("train", batches[-1])))
        print(
            f"processes {lockstep.world}, torch {torch.__version__}, {opts.batch} examples/step, max_length {opts.max_length}"
        )
        print(
            f"order broadcast  {send * 1e3:8.2f} ms/step   ({size / 1024:.0f} KiB pickled; includes waiting for the slowest rank)"
        )
        print(f"  transfer alone {transfer * 1e3:8.2f} ms/step   (every rank ready)")
        print(f"whole step       {step * 1e3:8.2f} ms/step")
        print(f"broadcast share  {send / step:8.2%}   (transfer alone {transfer / step:.2%})")
    else:
        lockstep.receive()  # stop


def main() -> None:
    opts = _options()
    if "WORLD_SIZE" in os.environ:
        _rank_main(opts)
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(opts.processes),
        __file__,
        *sys.argv[1:],
    ]
    sys.exit(subprocess.call(command, env=env))


if __name__ == "__main__":
    main()
