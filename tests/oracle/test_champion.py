"""The champion board and the vault commands: ranking, references, export, delete refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import fast_config
from realm.config import ChampionConfig
from realm.home import Home
from realm.protocol import CheckpointInfo
from realm.vault import champion
from realm.vault.checkpoints import weights_sha256
from realm.vault.ledger import Ledger
from realm.vault.service import DeleteRefused, delete_checkpoint, export_checkpoint
from tests.oracle.conftest import add_checkpoint


def realm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "realm.cli", *args], capture_output=True, text=True, timeout=120)


def info(step, val_loss=None) -> CheckpointInfo:
    return CheckpointInfo(step=step, name=f"checkpoint-{step}-20260101-1200", time=0.0, val_loss=val_loss)


def test_score_weighs_skill_levels_and_validation_loss():
    weights = ChampionConfig(skill_weight=1.0, val_loss_weight=0.5)
    skills = {"sy": {"level": 3, "accuracy": 0.8}, "bin": {"level": 1, "accuracy": 1.0}}
    value, skill = champion.score(info(1, val_loss=2.0), {"skills": skills}, weights)
    assert skill == pytest.approx(3 * 0.8 + 1.0) and value == pytest.approx(3.4 - 1.0)
    assert champion.score(info(2), {}, weights) == (None, None)  # nothing to rank it by
    assert champion.score(info(3, val_loss=1.0), None, weights) == (pytest.approx(-0.5), None)
    assert champion.skill_points({"skills": {"sy": {"level": "x"}}}) == 0.0  # junk counts nothing


@pytest.fixture
def vault(tmp_path):
    home = tmp_path / "home"
    add_checkpoint(home, 10, val_loss=2.0)
    add_checkpoint(home, 20, val_loss=1.5)  # best by loss alone
    add_checkpoint(home, 30, val_loss=1.8, skills={"sy": {"level": 2, "accuracy": 0.5}})  # 1.0 - 1.8 = -0.8
    add_checkpoint(home, 40)  # unranked: no val loss, no skills, but the latest
    ledger = Ledger(Home(home).db)
    yield home, ledger
    ledger.close()


def test_board_ranks_best_first_and_resolves_references(vault):
    home, ledger = vault
    rows = champion.board(ledger, ChampionConfig())
    assert [(r.rank, r.checkpoint.step) for r in rows] == [(1, 30), (2, 20), (3, 10), (0, 40)]
    by_loss_only = champion.board(ledger, ChampionConfig(skill_weight=0.0))
    assert by_loss_only[0].checkpoint.step == 20
    assert champion.resolve(ledger, "champion", ChampionConfig())[0].step == 30
    assert champion.resolve(ledger, "latest", ChampionConfig())[0].step == 40
    assert champion.resolve(ledger, "checkpoint-10-20260101-1200", ChampionConfig())[0].step == 10
    for bad, why in (("99", "no checkpoint 99"), ("checkpoint-10-20990101-0000", "no checkpoint"),
                     ("../etc", "not a checkpoint reference")):
        with pytest.raises(champion.UnknownCheckpoint, match=why):
            champion.resolve(ledger, bad, ChampionConfig())


def test_delete_refuses_the_champion_and_the_latest_and_removes_the_rest(vault):
    home, ledger = vault
    config = fast_config()
    with pytest.raises(DeleteRefused, match="is the champion"):
        delete_checkpoint(config, home, ledger, 30)
    with pytest.raises(DeleteRefused, match="is the latest checkpoint"):
        delete_checkpoint(config, home, ledger, 40)
    folder = ledger.path_of(10)
    assert delete_checkpoint(config, home, ledger, 10).step == 10
    assert not folder.exists() and 10 not in [c.step for c in ledger.present()]
    ledger.reconcile(Home(home).checkpoints)  # a restart does not bring it back as missing or new
    assert 10 not in [c.step for c in ledger.present()]


def test_export_copies_the_checkpoint_whole(vault, tmp_path):
    home, ledger = vault
    target = export_checkpoint(ledger, fast_config(), "20", tmp_path / "out")
    assert weights_sha256(target) == weights_sha256(ledger.path_of(20))
    assert (target / ".ledger.json").exists() and (target / "training_state.pt").exists()
    with pytest.raises(Exception, match="already exists"):
        export_checkpoint(ledger, fast_config(), "20", tmp_path / "out")


def test_vault_commands_from_the_command_line(vault, tmp_path):
    home, _ = vault
    listed = realm("vault", "list", "--json", "--home", str(home))
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert document["champion"] == 30 and document["serving"] is None
    assert [c["step"] for c in document["checkpoints"]] == [10, 20, 30, 40]
    assert {c["step"]: c["rank"] for c in document["checkpoints"]} == {10: 3, 20: 2, 30: 1, 40: 0}

    table = realm("vault", "list", "--home", str(home))
    assert table.returncode == 0 and "champion" in table.stdout and "score =" in table.stdout

    refused = realm("vault", "delete", "30", "--home", str(home))
    assert refused.returncode == 1 and "is the champion" in refused.stderr
    assert realm("vault", "delete", "10", "--home", str(home)).returncode == 0
    missing = realm("vault", "export", "10", str(tmp_path / "x"), "--home", str(home))
    assert missing.returncode == 1 and "no checkpoint 10" in missing.stderr

    promote = realm("vault", "promote", "20", "--home", str(home), "--config", str(_fast_bus(tmp_path)))
    assert promote.returncode == 1 and "no oracle answered" in promote.stderr


def _fast_bus(tmp_path):
    path = tmp_path / "fast-bus.yaml"
    path.write_text("bus:\n  timeout_s: 0.3\n  retries: 0\n", encoding="utf-8")
    return path
