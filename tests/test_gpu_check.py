"""bench/gpu_check.py stays runnable: its --tiny form runs every check this CPU can (a small model
with Qwen3-0.6B's vocabulary) and says why it skips the GPU-only ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_tiny_on_cpu_and_names_what_needs_a_gpu(tmp_path):
    result = subprocess.run([sys.executable, "bench/gpu_check.py", "--tiny", "--out", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    for ran in ("engine", "hf", "resume", "oracle"):
        assert report[ran]["status"] == "ok", (ran, report[ran])
    assert report["resume"]["max_loss_diff"] == 0.0 and report["resume"]["steps_compared"] == 12
    assert report["oracle"]["chat_tokens"] > 0 and 0 < report["engine"]["mfu_measured_peak"] < 1
    for gpu_only in ("oom", "fp16", "nvml"):
        assert report[gpu_only]["status"] == "skipped" and report[gpu_only]["why"].startswith("no ")


def test_the_gpu_check_lists_what_a_bare_gpu_box_needs():
    listed = subprocess.run([sys.executable, "bench/gpu_check.py", "--list-packages"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert listed.returncode == 0 and {"pyzmq", "msgspec", "pyyaml"} <= set(listed.stdout.split())
