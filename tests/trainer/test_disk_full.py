"""A full disk, for real: a tmpfs of a few MB filled to the last byte. The metrics log and the
journal wait it out in memory, whole lines only; a retention delete cut short by a kill is
finished at the next start."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from conftest import fast_config, fill
from realm.config import RealmConfig, VaultConfig
from realm.protocol import Envelope, JournalRequest, Notice
from realm.vault.checkpoints import TEMP_PREFIX, complete_checkpoints
from realm.vault.ledger import Ledger
from realm.vault.retention import DOOMED_PREFIX
from trainer.chronicle import Chronicle
from trainer.telemetry import MetricsLog


def _lines(path: Path) -> list[dict]:
    """Every line of a JSONL file, parsed: a torn line fails the test."""
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "the file ends inside a line"
    return [json.loads(line) for line in text.splitlines()]


def test_metrics_lines_wait_out_a_full_disk_whole_and_in_order(small_disk):
    disk = small_disk(1)
    spare = disk / "spare"
    spare.write_bytes(b"\0" * 8192)
    filler = fill(disk)
    errors: list[Exception] = []
    log = MetricsLog(disk / "metrics.jsonl", on_error=errors.append)
    spare.unlink()  # 8 KB free: two lines of 3 KB fit, the third only in part
    for step in range(1, 6):
        log.write({"step": step, "pad": "x" * 3000})
    assert [r["step"] for r in _lines(disk / "metrics.jsonl")] == [1, 2]
    assert len(errors) == 3

    filler.unlink()
    assert log.flush()
    log.write({"step": 6, "pad": ""})
    log.close()
    assert [r["step"] for r in _lines(disk / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert log.lost == 0


def test_journal_rows_wait_out_a_full_disk_and_land_in_order(small_disk):
    disk = small_disk(1)
    errors: list[Exception] = []
    chronicle = Chronicle(disk / "realm.db", on_error=errors.append)
    notice = lambda seq: Envelope(run="r", seq=seq, time=float(seq), event=Notice(level="warning", text="x" * 2000))  # noqa: E731
    chronicle.record(notice(1), step=1)
    filler = fill(disk)
    for seq in range(2, 40):
        chronicle.record(notice(seq), step=seq)  # a full disk: never an exception
    assert errors, "the disk was full"

    filler.unlink()
    assert chronicle.flush()
    assert [e.seq for e in chronicle.journal(JournalRequest(run="r", limit=100)).entries] == list(range(1, 40))
    chronicle.close()
    with sqlite3.connect(disk / "realm.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_retention_delete_cut_short_by_a_kill_is_finished_at_the_next_start(trainer_factory, tmp_path):
    home = tmp_path / "home"
    config = RealmConfig(train=fast_config(checkpoint_every=3).train, skills=fast_config().skills,
                         vault=VaultConfig(keep_last=5, keep_best=0))  # fmt: skip
    assert trainer_factory(config, max_steps=9, home=home).start().join() == 0
    checkpoints = home / "vault" / "checkpoints"
    oldest = complete_checkpoints(checkpoints)[0]
    oldest.rename(oldest.with_name(DOOMED_PREFIX + oldest.name))  # where a kill mid-prune leaves it

    second = trainer_factory(config, max_steps=1, home=home).start()
    assert second.join() == 0
    ledger = Ledger(home / "vault" / "realm.db")
    rows = {info.step: status for info, status in ledger.list_checkpoints(include_missing=True)}
    ledger.close()
    assert rows[3] == "deleted"
    assert not any(p.name.startswith(TEMP_PREFIX) for p in checkpoints.iterdir())
    texts = [line.text for line in second.state.log]
    assert any("finished deleting " + oldest.name in text for text in texts)
    assert not any("missing from disk" in text for text in texts)
