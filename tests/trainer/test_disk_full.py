"""A full disk, for real: a tmpfs of a few MB filled to the last byte. The trainer pauses with the
reason and resumes by itself once there is room; the metrics log and the journal wait it out in
memory, whole lines only; a retention delete cut short by a kill is finished at the next start."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import fast_config, fill, wait_for, write_chat_quest

from realm.bus import RealmClient, TrainerUnreachable
from realm.config import RealmConfig, VaultConfig, endpoints
from realm.home import Home
from realm.protocol import (
    DeleteCheckpointRequest,
    Envelope,
    ErrorReply,
    JournalRequest,
    Notice,
    PauseRequest,
    ResumeRequest,
    StopRequest,
)
from realm.state import every_line
from realm.vault.checkpoints import TEMP_PREFIX, complete_checkpoints, parse_step, read_sidecar, weights_sha256
from realm.vault.ledger import Ledger
from realm.vault.retention import DOOMED_PREFIX
from trainer.checkpointer import Checkpointer, DiskFull
from trainer.chronicle import Chronicle
from trainer.engine import Engine
from trainer.telemetry import MetricsLog

ROOT = Path(__file__).resolve().parents[2]


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


def _checkpointer(home: Home) -> tuple[Checkpointer, Ledger, Engine]:
    ledger = Ledger(home.root / "realm.db")
    engine = Engine(fast_config())
    checkpointer = Checkpointer(home.checkpoints, ledger, engine, lambda event: None,
                                config=lambda: engine.config, in_use=lambda: ())  # fmt: skip
    return checkpointer, ledger, engine


def _refuse_new_rows(ledger: Ledger) -> None:
    """SQLite refuses to grow past max_page_count with the SQLITE_FULL a full disk gives: pad the
    ledger's pages until a row no longer fits (pad rows no reader counts)."""
    pages = ledger._db.execute("PRAGMA page_count").fetchone()[0]
    ledger._db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(sqlite3.OperationalError):
        for pad in range(-1, -1000, -1):
            ledger._db.execute(
                "INSERT INTO checkpoints (step, name, path, time, status) VALUES (?, '', '', 0, 'pad')", (pad,)
            )


SIDECAR = {"time": 1.7e9, "train_loss": 1.0, "val_loss": None, "quest": None}


def test_a_ledger_too_full_for_the_row_is_a_full_disk_even_once_the_unrecorded_weights_are_gone(tmp_path):
    # the disk itself has room, as it has once the weights of the unrecorded checkpoint are
    # discarded: full by the error alone, like a quota, so the user resumes
    home = Home(tmp_path / "home").ensure()
    checkpointer, ledger, engine = _checkpointer(home)
    checkpointer.save(SIDECAR)
    _refuse_new_rows(ledger)
    engine.step += 1

    with pytest.raises(
        DiskFull, match=r"^disk full: checkpoint at step 1 not saved \(database or disk is full\)"
    ) as refused:
        checkpointer.save(SIDECAR)
    assert not refused.value.watch and str(refused.value).endswith("then run `realm resume`")
    assert [parse_step(folder.name) for folder in complete_checkpoints(home.checkpoints)] == [0]
    assert not [p for p in home.checkpoints.iterdir() if p.name.startswith(TEMP_PREFIX)]

    ledger._db.execute("PRAGMA max_page_count = 1000000")
    assert checkpointer.save(SIDECAR).step == 1
    ledger.close()


def test_a_save_whose_weights_filled_the_disk_watches_the_space_though_discarding_them_freed_it(small_disk):
    # the weights fit, then the row is refused: the disk was full, so the pause ends by itself once
    # a save fits, even though discarding the weights made room again (as when another writer takes
    # the space between the weights and the row)
    disk = small_disk(30)
    home = Home(disk / "home").ensure()
    checkpointer, ledger, engine = _checkpointer(home)
    checkpointer.save(SIDECAR)
    _refuse_new_rows(ledger)
    filler = fill(disk, leave_mb=-(-checkpointer.needed_bytes() // 2**20))
    engine.step += 1

    with pytest.raises(DiskFull) as refused:
        checkpointer.save(SIDECAR)
    assert refused.value.watch and "training resumes by itself" in str(refused.value)
    assert checkpointer.room_for_save(), "discarding the refused weights made room again"
    filler.unlink()
    ledger.close()


# ---------------------------------------------------------------------------- a real trainer

CONFIG = {  # the defaults, with a tiny batch: a checkpoint is about 11 MB, so 5 fill 60 MB
    "train": {"batch_size": 4, "max_length": 64, "warmup_steps": 5, "threads": 1, "checkpoint_every": 10},
    "skills": {"enabled": False},
}


def _start_trainer(home: Path, config: Path, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "realm.cli", "trainer", "--home", str(home), "--config", str(config)]
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    environ.pop("NOTIFY_SOCKET", None)
    with open(log, "wb") as err:  # off the small disk: the trainer's log must not fill it
        return subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=err)


def _alive(trainer: subprocess.Popen, log: Path) -> None:
    assert trainer.poll() is None, f"the trainer exited {trainer.returncode}: {log.read_text()[-3000:]}"


def _state(client: RealmClient, trainer: subprocess.Popen, log: Path):
    _alive(trainer, log)
    try:
        return client.snapshot().state
    except TrainerUnreachable:
        return None


def _checkpoint_steps(home: Path) -> list[int]:
    return [parse_step(path.name) for path in complete_checkpoints(home / "vault" / "checkpoints")]


def _assert_nothing_torn(home: Path) -> None:
    checkpoints = home / "vault" / "checkpoints"
    assert not [p.name for p in checkpoints.iterdir() if p.name.startswith(TEMP_PREFIX)]
    for folder in complete_checkpoints(checkpoints):
        assert read_sidecar(folder)["sha256"] == weights_sha256(folder), folder.name
    _lines(home / "logs" / "metrics.jsonl")
    with sqlite3.connect(f"file:{home / 'vault' / 'realm.db'}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _fill_until_paused(disk: Path, client: RealmClient, trainer: subprocess.Popen, log: Path):
    """Fill the disk to the last byte, again whenever retention made room, until the trainer
    pauses; return its state then and the filler files."""
    fillers: list[Path] = []

    def paused():
        state = _state(client, trainer, log)
        if state and state.battle.status == "paused":
            return state
        fillers.append(fill(disk, f"filler{len(fillers)}"))
        return None

    return wait_for(paused, timeout=120, interval=0.5, what="the disk-full pause"), fillers


def _pause_empty_the_vault_and_fill(home: Path, disk: Path, client: RealmClient, trainer: subprocess.Popen,
                                    log: Path, leave_mb: int) -> list[Path]:  # fmt: skip
    """While paused, delete every checkpoint but the latest and the champion (what retention on a
    full disk keeps), fill all but ``leave_mb`` MB and resume: the next save finds nothing to
    free, and no write of the trainer's raced the filler. Returns the filler."""
    client.request(PauseRequest())
    wait_for(lambda: (s := _state(client, trainer, log)) and s.battle.status == "paused", what="the pause")
    for step in _checkpoint_steps(home)[:-1]:
        reply = client.request(DeleteCheckpointRequest(step=step))
        assert not isinstance(reply, ErrorReply) or "champion" in reply.message, reply.message
    filler = fill(disk, leave_mb=leave_mb)
    client.request(ResumeRequest())
    return [filler]


def _free_and_wait_for_training(fillers: list[Path], client: RealmClient, trainer: subprocess.Popen, log: Path):
    for filler in fillers:
        filler.unlink()
    try:
        return wait_for(lambda: (s := _state(client, trainer, log)) and s.battle.status == "training" and s,
                        timeout=60, what="training to resume by itself")  # fmt: skip
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the trainer's log ends: {log.read_text()[-3000:]}") from None


def test_a_full_disk_pauses_the_trainer_which_resumes_by_itself_when_space_is_back(small_disk, tmp_path):
    disk = small_disk(60)
    home = disk / "home"
    write_chat_quest(home / "quests" / "queued" / "normal" / "reverse.jsonl", n=4000)
    config = tmp_path / "realm.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    client = RealmClient(endpoints(RealmConfig(), home)[1], timeout_s=2.0, retries=0)
    log = tmp_path / "trainer.log"
    trainer = _start_trainer(home, config, log)
    try:
        # the 6th save no longer fits beside the first five: retention makes room before it
        wait_for(lambda: 70 in _checkpoint_steps(home) or trainer.poll() is not None, timeout=240, what="step 70")
        _alive(trainer, log)

        # 1. full to the last byte: the metrics log, the journal or a save fails first
        paused, fillers = _fill_until_paused(disk, client, trainer, log)
        first_reason = paused.battle.reason
        assert first_reason.startswith("disk full: ") and "realm resume" in first_reason
        status = subprocess.run([sys.executable, "-m", "realm.cli", "status", "--home", str(home), "--config", str(config)],
                                capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert "battle: paused" in status.stdout and "why paused: disk full:" in status.stdout
        _assert_nothing_torn(home)
        resumed = _free_and_wait_for_training(fillers, client, trainer, log)
        assert any("disk has room again" in line.text for line in every_line(resumed))

        # 2. all but 4 MB: the lines fit, a checkpoint (11 MB) does not; torch.save fails its own way
        fillers = _pause_empty_the_vault_and_fill(home, disk, client, trainer, log, leave_mb=4)
        paused = wait_for(lambda: (s := _state(client, trainer, log)) and s.battle.status == "paused" and s.battle.reason and s,
                          timeout=120, what="the refused save")  # fmt: skip
        assert paused.battle.reason.startswith(f"disk full: checkpoint at step {paused.hero.steps} not saved")
        _assert_nothing_torn(home)
        _free_and_wait_for_training(fillers, client, trainer, log)
        wait_for(
            lambda: paused.hero.steps in _checkpoint_steps(home), timeout=60, what="the refused save, made on resuming"
        )

        journal = client.request(JournalRequest(limit=1000))
        assert first_reason in [e.text for e in journal.entries if e.kind == "notice"], "written on a full disk"
        client.request(StopRequest())
        assert trainer.wait(timeout=120) == 0, log.read_text()[-3000:]
    finally:
        if trainer.poll() is None:
            trainer.send_signal(signal.SIGKILL)
            trainer.wait(timeout=30)

    _assert_nothing_torn(home)
    steps = [r["step"] for r in _lines(home / "logs" / "metrics.jsonl") if r["kind"] == "step"]
    assert steps == list(range(1, steps[-1] + 1)), "every step's metrics line, once, in order"


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
    texts = [line.text for line in every_line(second.state)]
    assert any("finished deleting " + oldest.name in text for text in texts)
    assert not any("missing from disk" in text for text in texts)
