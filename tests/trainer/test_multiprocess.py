"""Two CPU processes (gloo) under torch's launcher, the one ``accelerate launch`` uses for
multi-GPU runs: each process trains half of every step through the engine's ``Accelerator``, and
the result equals one process training the whole step. (``accelerate launch --cpu
--num_processes 2`` started two independent single processes here, so torchrun launches them.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("ddp_probe.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_cpu_processes_train_the_same_steps_as_one(tmp_path):
    out = tmp_path / "ddp.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        str(PROBE),
        str(out),
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads(out.read_text())

    sys.path.insert(0, str(PROBE.parent))
    from ddp_probe import run

    one = run()
    assert two["processes"] == 2 and one["processes"] == 1
    # The first loss is the same batch on the same weights: a shard or averaging mistake shows
    # there at once. After AdamW steps, float sums taken in another order (one process's
    # micro-batches against two processes' all-reduce) move coordinates whose gradient is near
    # zero by up to lr, since Adam divides by sqrt(v): 1e-4 in the loss on some CPUs.
    assert two["losses"][0] == pytest.approx(one["losses"][0], rel=1e-5)
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-3)
    assert two["weights_sum"] == pytest.approx(one["weights_sum"], rel=1e-3)
    assert two["weights_abs"] == pytest.approx(one["weights_abs"], rel=1e-3)
