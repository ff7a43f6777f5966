"""bench/learning.py on a real few-second run from scratch: the CSV has eval rounds and the table prints."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from realm.skills.registry import SKILLS_DIR

ROOT = Path(__file__).resolve().parent.parent


def tiny_config(tmp_path: Path) -> Path:
    """Small batches and a 6-item probe with short answers, an eval round every 5 steps."""
    folder = tmp_path / "skills"
    folder.mkdir()
    raw = yaml.safe_load((SKILLS_DIR / "bin.yaml").read_text(encoding="utf-8"))
    raw["eval"].update(probe_size=6, max_new_tokens=6)
    (folder / "bin.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = {
        "train": {"batch_size": 4, "warmup_steps": 5, "checkpoint_every": 1000, "val_every": 10, "threads": 1},
        "skills": {
            "folder": str(folder),
            "mix": ["bin"],
            "eval_every": 5,
            "max_eval_share": 0.0,
            "eval_batch_size": 32,
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def tiny_run(tmp_path: Path, *options: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """bench/learning.py for at most 3 minutes on the tiny config, and the rows of its rounds.csv."""
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "bench" / "learning.py"), "--config", str(tiny_config(tmp_path)),
               "--minutes", "3", *options, "--out", str(out)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    with open(out / "rounds.csv", encoding="utf-8") as handle:
        return result, list(csv.DictReader(handle))


def test_a_short_run_writes_rounds_and_prints_the_table(tmp_path):
    result, rows = tiny_run(tmp_path, "--max-steps", "12", "--seed", "3")
    out = tmp_path / "out"
    assert rows and {r["skill"] for r in rows} == {"bin"}
    assert [int(r["step"]) for r in rows] == sorted(int(r["step"]) for r in rows)
    assert "steps/s" in result.stdout and "load (1 min) at start" in result.stdout
    assert "   skill  level    step  minutes\n     bin      1       0     0.00" in result.stdout
    assert yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))["train"]["seed"] == 3


def test_a_run_goes_on_from_the_run_already_in_its_folder(tmp_path):
    tiny_run(tmp_path, "--max-steps", "6")
    command = [sys.executable, str(ROOT / "bench" / "learning.py"), "--config", str(tmp_path / "tiny.yaml"),
               "--minutes", "3", "--max-steps", "10", "--out", str(tmp_path / "out")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "training ['bin'] on from step 6 of the run already in --out, seed 0" in result.stdout
    assert " min: 10 steps, " in result.stdout  # this run's steps; the table's minutes count from step 1


def test_a_missing_config_is_one_line_and_exit_2(tmp_path):
    command = [sys.executable, str(ROOT / "bench" / "learning.py"), "--config", str(tmp_path / "nope.yaml")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "nope.yaml" in result.stderr


def test_a_trainer_that_fails_stops_the_benchmark_with_its_reason(tmp_path):
    config = tmp_path / "missing-model.yaml"
    config.write_text(yaml.safe_dump({"model": {"name": str(tmp_path / "no-model")}}), encoding="utf-8")
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "bench" / "learning.py"), "--config", str(config), "--minutes", "5",
               "--out", str(out)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=280, cwd=ROOT)
    assert result.returncode == 1
    assert f"the trainer exited with code 2: realm: {tmp_path / 'no-model'}: no such folder" in result.stderr
    assert f"(all of it: {out / 'trainer.log'})" in result.stderr


def test_a_run_can_start_a_skill_at_a_level_and_a_bad_start_is_one_line(tmp_path):
    result, rows = tiny_run(tmp_path, "--max-steps", "6", "--start-level", "bin=3")
    assert "training ['bin'] bin at L3, seed 0" in result.stdout
    assert rows and {r["level"] for r in rows} == {"3"}
    level_3_ops = {"add", "and", "or", "xor", "to_dec", "from_dec"}
    assert {op.split(":")[0] for op in rows[0]["probe_by_op"].split()} <= level_3_ops
    assert "     bin      3       0     0.00" in result.stdout
    command = [sys.executable, str(ROOT / "bench" / "learning.py"), "--config", str(tmp_path / "tiny.yaml"),
               "--start-level", "sy=2", "--out", str(tmp_path / "bad")]  # fmt: skip
    bad = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "bench/learning.py: --start-level 'sy=2': give SKILL=N with a skill of the mix (bin)"


def test_a_benchmark_told_to_stop_stops_its_trainer_and_reports_what_ran(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "bench" / "learning.py"), "--config", str(tiny_config(tmp_path)),
               "--minutes", "10", "--out", str(out)]  # fmt: skip
    bench = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    rounds = out / "home" / "logs" / "metrics.jsonl"
    deadline = time.monotonic() + 180
    while b'"kind": "skill"' not in (rounds.read_bytes() if rounds.exists() else b""):
        assert bench.poll() is None and time.monotonic() < deadline, "the run never reached an eval round"
        time.sleep(0.5)
    trainer = int((out / "home" / "run" / "trainer.lock").read_text(encoding="utf-8"))
    bench.send_signal(signal.SIGTERM)
    stdout, stderr = bench.communicate(timeout=120)
    outlived = _alive(trainer)
    if outlived:
        os.kill(trainer, signal.SIGKILL)
    assert not outlived, "the trainer outlived its benchmark"
    assert bench.returncode == 0, stderr
    assert "ran " in stdout and (out / "rounds.csv").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
