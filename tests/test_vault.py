"""The vault: the ledger's queries and reconcile, retention, and a full disk during a save."""

from __future__ import annotations

import errno
from datetime import datetime
from pathlib import Path

import pytest
from conftest import fast_config, wait_for

from realm.config import RealmConfig, VaultConfig
from realm.protocol import CheckpointInfo, ResumeRequest
from realm.vault.checkpoints import TEMP_PREFIX, complete_checkpoints, parse_step, remove_partials, write_checkpoint
from realm.vault.ledger import Ledger
from realm.vault.retention import keep_set, prune
from trainer.engine import Engine


def _save(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"weights")


def _checkpoint(root: Path, step: int, val_loss: float | None = None, train_loss: float = 1.0) -> Path:
    sidecar = {"time": float(step), "train_loss": train_loss, "val_loss": val_loss, "quest": "q"}
    return write_checkpoint(root, step, datetime(2026, 1, 1, 12, 0), _save, sidecar)


@pytest.fixture
def vault(tmp_path):
    root = tmp_path / "checkpoints"
    ledger = Ledger(tmp_path / "realm.db")
    yield root, ledger
    ledger.close()


def test_reconcile_registers_orphans_removes_partials_and_marks_missing(vault):
    root, ledger = vault
    for step in (10, 20):
        ledger.record(folder := _checkpoint(root, step), {"step": step, "name": folder.name, "time": 1.0})
    orphan = _checkpoint(root, 30, val_loss=0.5)  # saved, then a crash before the ledger heard of it
    partial = root / f"{TEMP_PREFIX}checkpoint-40-20260101-1200"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")
    import shutil

    shutil.rmtree(root / "checkpoint-10-20260101-1200")  # deleted by hand

    assert remove_partials(root) == [partial] and not partial.exists()
    assert ledger.reconcile(root) == (1, 1)
    rows = {info.step: status for info, status in ledger.list_checkpoints(include_missing=True)}
    assert rows == {10: "missing", 20: "present", 30: "present"}
    assert ledger.latest().name == orphan.name and ledger.latest().val_loss == 0.5
    assert ledger.reconcile(root) == (0, 0)  # idempotent


def test_a_failed_write_is_looked_at_before_its_half_written_folder_is_removed(tmp_path):
    seen: list[list[str]] = []

    def save(folder: Path) -> None:
        (folder / "model.safetensors").write_bytes(b"weights")
        raise OSError(errno.ENOSPC, "No space left on device")

    def before_discard() -> None:
        seen.append([p.name for folder in tmp_path.iterdir() for p in folder.iterdir()])

    with pytest.raises(OSError):
        write_checkpoint(tmp_path, 7, datetime(2026, 1, 1), save, {"time": 1.0}, before_discard)
    assert seen == [["model.safetensors"]]
    assert list(tmp_path.iterdir()) == []


def test_ledger_queries_latest_best_and_list(vault):
    root, ledger = vault
    for step, val in ((1, 2.0), (2, 1.0), (3, None), (4, 1.5)):
        folder = _checkpoint(root, step, val_loss=val, train_loss=10.0 - step)
        ledger.record(
            folder, {"step": step, "name": folder.name, "time": 1.0, "val_loss": val, "train_loss": 10.0 - step}
        )
    assert ledger.latest().step == 4
    assert [c.step for c in ledger.best("val_loss", n=2)] == [2, 4]
    assert [c.step for c in ledger.best("train_loss")] == [4]
    assert [c.step for c, _ in ledger.list_checkpoints()] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="unknown metric"):
        ledger.best("accuracy; DROP TABLE checkpoints")


def _infos(*rows) -> list[CheckpointInfo]:
    return [CheckpointInfo(step=s, name=f"c{s}", time=0.0, val_loss=v) for s, v in rows]


def test_retention_keeps_last_best_pinned_champion_and_never_the_latest_or_only_one():
    present = _infos((1, 0.1), (2, 0.9), (3, 0.5), (4, 0.8), (5, 0.7), (6, None))
    assert keep_set(present, keep_last=2, keep_best=1, best_metric="val_loss") == {5, 6, 1}
    assert keep_set(present, keep_last=1, keep_best=0, best_metric="val_loss", pinned=(2, 99), champion=3) == {6, 2, 3}
    assert keep_set(present, keep_last=0, keep_best=0, best_metric="val_loss") == {6}  # the latest, always
    assert keep_set(_infos((7, None)), keep_last=1, keep_best=0, best_metric="val_loss") == {7}  # the only one


def test_prune_deletes_folders_and_marks_the_ledger(vault):
    root, ledger = vault
    for step, val in ((1, 0.1), (2, 0.9), (3, 0.5), (4, 0.8)):
        folder = _checkpoint(root, step, val_loss=val)
        ledger.record(folder, {"step": step, "name": folder.name, "time": 1.0, "val_loss": val})
    removed = prune(ledger, VaultConfig(keep_last=1, keep_best=1, best_metric="train_loss", pinned=(3,)), ranked=[1])
    assert removed == ["checkpoint-2-20260101-1200"]
    assert [parse_step(p.name) for p in complete_checkpoints(root)] == [1, 3, 4]
    assert [c.step for c in ledger.present()] == [1, 3, 4]
    assert not any(p.name.startswith(TEMP_PREFIX) for p in root.iterdir())


class _DiskFull:
    """ENOSPC injected at the write boundary (there is no small filesystem to fill without root):
    ``Engine.save`` writes part of the weights, then fails as a full disk would."""

    def __init__(self, monkeypatch, fail_at_step: int, times: int | None) -> None:
        self.fail_at_step, self.times, self.raised = fail_at_step, times, 0
        self.disk_freed = False
        real = Engine.save

        def save(engine, folder):
            if (
                engine.step == self.fail_at_step
                and not self.disk_freed
                and (self.times is None or self.raised < self.times)
            ):
                self.raised += 1
                (folder / "model.safetensors").write_bytes(b"partial")
                raise OSError(errno.ENOSPC, "No space left on device")
            real(engine, folder)

        monkeypatch.setattr(Engine, "save", save)


def _config(**vault) -> RealmConfig:
    base = fast_config(checkpoint_every=3)
    return RealmConfig(train=base.train, vault=VaultConfig(keep_best=0, **vault))


def test_full_disk_retention_frees_room_and_the_save_succeeds(trainer_factory, tmp_path, monkeypatch):
    disk = _DiskFull(monkeypatch, fail_at_step=12, times=1)
    trainer = trainer_factory(_config(keep_last=3), max_steps=12, home=tmp_path / "home").start()
    assert trainer.join() == 0
    assert disk.raised == 1
    saved = [parse_step(p.name) for p in complete_checkpoints(tmp_path / "home" / "vault" / "checkpoints")]
    assert saved == [9, 12]  # 3 and 6 made room; 9 was the latest then, so it stayed
    assert [c.step for c in trainer.state.vault.checkpoints] == [9, 12]
    assert any("disk full" in line.text for line in trainer.state.notices)


def test_full_disk_with_nothing_to_free_pauses_training_with_the_reason(trainer_factory, tmp_path, monkeypatch):
    disk = _DiskFull(monkeypatch, fail_at_step=3, times=None)
    trainer = trainer_factory(_config(keep_last=3), home=tmp_path / "home").start()
    wait_for(lambda: trainer.state.battle.status == "paused", what="the disk-full pause")
    assert trainer.state.hero.steps == 3
    assert any(line.level == "error" and "disk full" in line.text for line in trainer.state.notices)
    assert not complete_checkpoints(tmp_path / "home" / "vault" / "checkpoints")
    checkpoints = tmp_path / "home" / "vault" / "checkpoints"
    assert not any(p.name.startswith(TEMP_PREFIX) for p in checkpoints.iterdir()), "the partial save is cleared"

    disk.disk_freed = True
    trainer.client.request(ResumeRequest())
    wait_for(lambda: trainer.state.vault.checkpoints, what="a checkpoint once there is room")
    assert trainer.state.vault.checkpoints[0].step == 3  # the refused save, made on resuming
    trainer.stop()


def test_pruned_checkpoints_leave_the_vault_state():
    from realm.protocol import CheckpointSaved, CheckpointsPruned, RealmState
    from realm.state import apply

    state = RealmState()
    for step in (3, 6, 9):
        state = apply(state, CheckpointSaved(checkpoint=CheckpointInfo(step=step, name=f"c{step}", time=0.0)))
    state = apply(state, CheckpointsPruned(steps=(3, 6), reason="disk full"))
    assert [c.step for c in state.vault.checkpoints] == [9]
    assert "disk full" in state.notices[-1].text and "3, 6" in state.notices[-1].text
