"""`realm trainer` with a model or device this machine cannot provide: one line that says what
to do, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

UNCACHEABLE = "realm-test-nobody/never-cached-model"  # no such repo: it can never be in the cache


def trainer(tmp_path, model_yaml: str, **env) -> subprocess.CompletedProcess:
    config = tmp_path / "realm.yaml"
    config.write_text(f"model:\n{model_yaml}", encoding="utf-8")
    command = [sys.executable, "-m", "realm.cli", "trainer", "--home", str(tmp_path / "home"), "--config", str(config)]
    return subprocess.run(
        [*command, "--max-steps", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def our_one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("realm: ")]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]


def test_an_hf_id_not_in_the_cache_says_to_download_it_or_use_a_folder(tmp_path):
    result = trainer(tmp_path, f"  name: {UNCACHEABLE}\n", HF_HUB_OFFLINE="1")
    line = our_one_line(result.stderr)
    assert result.returncode == 2
    assert f"{UNCACHEABLE}: not a local folder and not in the Hugging Face cache" in line
    assert f"`hf download {UNCACHEABLE}`" in line and "point model.name at a local folder" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: model.device: cuda is valid here")
def test_cuda_on_a_machine_without_it_says_to_use_cpu_or_auto(tmp_path):
    result = trainer(tmp_path, "  device: cuda\n")
    line = our_one_line(result.stderr)
    assert result.returncode == 2
    assert "CUDA is not available here: set model.device: cpu or auto" in line
