"""trainer.log and metrics.jsonl rotate by size between whole lines, keep train.log_keep files, and
`realm metrics export` reads the rotated files back oldest first, with the real trainer's records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import fast_config

from realm.cli.main import main
from realm.metrics_history import read_records, rotated_files
from trainer.telemetry import MetricsLog

ROOT = Path(__file__).resolve().parents[2]


def _whole_lines(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), f"{path.name} ends inside a line"
    return [json.loads(line) for line in text.splitlines()]


def test_metrics_log_rotates_between_lines_and_keeps_n_files(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path, max_bytes=1000, keep=3)
    for step in range(1, 301):
        log.write({"kind": "step", "step": step, "loss": 1.0 / step})
    log.close()

    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["metrics.jsonl", "metrics.jsonl.1", "metrics.jsonl.2", "metrics.jsonl.3"]
    steps = []
    for file in rotated_files(path):  # oldest first
        assert file.stat().st_size <= 1000
        steps += [r["step"] for r in _whole_lines(file)]
    # no line lost or split inside what is kept: the newest steps, consecutive, ending at the last one
    assert steps == list(range(steps[0], 301)) and steps[0] > 1
    assert [r["step"] for r in read_records(path)] == steps


def test_real_trainer_metrics_rotate_and_export_reads_them_all(trainer_factory, tmp_path):
    home = tmp_path / "home"
    config = fast_config(log_max_mb=0.002, log_keep=50)  # ~2 KB files: a few steps each
    trainer = trainer_factory(config, max_steps=12, home=home).start()
    assert trainer.join() == 0
    logs = home / "logs"
    assert (logs / "metrics.jsonl.2").exists()

    out = tmp_path / "history.json"
    assert main(["metrics", "export", "--json", "--home", str(home), "--out", str(out)]) == 0
    records = json.loads(out.read_text(encoding="utf-8"))
    assert [r["step"] for r in records if r["kind"] == "step"] == list(range(1, 13))
    assert [r["step"] for r in records if r["kind"] == "val"] == [0, 10]  # before the quest's first step, then every 10


def _rotated_history(home: Path) -> Path:
    """Steps 1..40 across metrics.jsonl and its rotated files, with a bad line in the oldest kept file."""
    logs = home / "logs"
    log = MetricsLog(logs / "metrics.jsonl", max_bytes=600, keep=20)
    for step in range(1, 41):
        log.write({"kind": "step", "step": step, "loss": round(5.0 - step / 10, 2)})
        if step % 10 == 0:
            log.write({"kind": "val", "step": step, "val_loss": 4.0})
    log.close()
    oldest = rotated_files(logs / "metrics.jsonl")[0]
    lines = oldest.read_text(encoding="utf-8").splitlines(keepends=True)
    oldest.write_text("".join([lines[0], '{"kind": "step", "st\n', *lines[1:]]), encoding="utf-8")
    return oldest


def test_export_csv_since_a_step_warns_once_for_a_bad_line(tmp_path, capsys):
    home = tmp_path / "home"
    oldest = _rotated_history(home)

    assert main(["metrics", "export", "--csv", "--since", "35", "--home", str(home)]) == 0
    out, err = capsys.readouterr()
    rows = out.splitlines()
    assert rows[0].split(",") == ["kind", "loss", "step", "val_loss"]
    assert [row.split(",")[2] for row in rows[1:]] == ["35", "36", "37", "38", "39", "40", "40"]
    assert rows[-1] == "val,,40,4.0"
    assert err == f"realm: skipped a bad line in {oldest} line 2\n"


def test_export_json_to_a_file_keeps_every_record_in_order(tmp_path, capsys):
    home = tmp_path / "home"
    _rotated_history(home)
    out = tmp_path / "out.json"
    assert main(["metrics", "export", "--json", "--home", str(home), "--out", str(out)]) == 0
    records = json.loads(out.read_text(encoding="utf-8"))
    assert [r["step"] for r in records if r["kind"] == "step"] == list(range(1, 41))
    assert [r["step"] for r in records if r["kind"] == "val"] == [10, 20, 30, 40]
    assert capsys.readouterr().out == ""


def test_export_without_a_metrics_log_says_how_to_get_one(tmp_path, capsys):
    assert main(["metrics", "export", "--csv", "--home", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("realm: no metrics log at ") and "`realm play`" in err


def test_trainer_log_rotates_and_stderr_follows_the_new_file(tmp_path):
    log = tmp_path / "trainer.log"
    script = (
        "import logging, sys\n"
        "from pathlib import Path\n"
        "from realm.cli.common import setup_file_logging\n"
        f"setup_file_logging(Path({str(log)!r}), 2000, 2)\n"
        "for i in range(200):\n"
        "    logging.getLogger('realm.trainer').info('line %03d', i)\n"
        "print('after the last rotation', file=sys.stderr, flush=True)\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, env={"PYTHONPATH": str(ROOT)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trainer.log", "trainer.log.1", "trainer.log.2"]
    kept = "".join(p.read_text(encoding="utf-8") for p in rotated_files(log))
    numbers = [int(line.rsplit(" ", 1)[1]) for line in kept.splitlines() if "line " in line]
    assert numbers == list(range(numbers[0], 200))
    assert log.read_text(encoding="utf-8").endswith("after the last rotation\n")
