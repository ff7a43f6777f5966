"""The champion board and the vault commands: ranking, references, export, delete refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import fast_config

from realm.config import ChampionConfig
from realm.home import Home
from realm.protocol import SuiteScore
from realm.vault import champion
from realm.vault.checkpoints import weights_sha256
from realm.vault.ledger import Ledger
from realm.vault.service import DeleteRefused, delete_checkpoint, export_checkpoint
from tests.oracle.conftest import add_checkpoint


def realm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "realm.cli", *args], capture_output=True, text=True, timeout=120)


def scored(version: str, loss: float | None = None, accuracy: float | None = None) -> SuiteScore:
    return SuiteScore(version=version, loss=loss, accuracy=accuracy)


def test_score_is_the_stated_composite_of_suite_accuracy_and_loss():
    weights = ChampionConfig(skill_weight=1.0, loss_weight=0.5)
    assert champion.suite_score(scored("v", loss=2.0, accuracy=0.8), weights) == pytest.approx(0.8 - 1.0)
    assert champion.suite_score(scored("v", loss=2.0), weights) == pytest.approx(-1.0)  # a missing part counts 0
    assert champion.formula(weights) == "score = 1 x suite accuracy - 0.5 x suite loss"


@pytest.fixture
def vault(tmp_path):
    home = tmp_path / "home"
    add_checkpoint(home, 5, val_loss=0.01, suite=scored("old", loss=0.1, accuracy=1.0))  # another suite: unranked
    add_checkpoint(home, 10, val_loss=0.02, suite=scored("v2", loss=2.0, accuracy=0.2))  # -1.8
    add_checkpoint(home, 20, val_loss=9.0, suite=scored("v2", loss=1.5, accuracy=0.1))  # -1.4, best by loss alone
    add_checkpoint(home, 30, val_loss=5.0, suite=scored("v2", loss=1.8, accuracy=0.5))  # -1.3: the champion
    add_checkpoint(home, 40)  # unranked: not scored yet, but the latest
    ledger = Ledger(Home(home).db)
    yield home, ledger
    ledger.close()


def test_board_ranks_the_current_suite_best_first_and_resolves_references(vault):
    home, ledger = vault
    rows = champion.board(ledger, ChampionConfig())
    assert [(r.rank, r.checkpoint.step) for r in rows] == [(1, 30), (2, 20), (3, 10), (0, 40), (0, 5)]
    by_loss_only = champion.board(ledger, ChampionConfig(skill_weight=0.0))
    assert by_loss_only[0].checkpoint.step == 20
    assert champion.resolve(ledger, "champion", ChampionConfig())[0].step == 30
    assert champion.resolve(ledger, "latest", ChampionConfig())[0].step == 40
    assert champion.resolve(ledger, "checkpoint-10-20260101-1200", ChampionConfig())[0].step == 10
    for bad, why in (
        ("99", "no checkpoint 99"),
        ("checkpoint-10-20990101-0000", "no checkpoint"),
        ("../etc", "not a checkpoint reference"),
    ):
        with pytest.raises(champion.UnknownCheckpoint, match=why):
            champion.resolve(ledger, bad, ChampionConfig())


def test_no_champion_without_suite_scores(tmp_path):
    home = tmp_path / "home"
    add_checkpoint(home, 1, val_loss=0.001)  # a tiny quest val loss makes no champion
    ledger = Ledger(Home(home).db)
    try:
        assert champion.champion(ledger, ChampionConfig()) is None
        with pytest.raises(champion.UnknownCheckpoint, match="no checkpoint is scored"):
            champion.resolve(ledger, "champion", ChampionConfig())
    finally:
        ledger.close()


def test_a_score_is_written_once_per_checkpoint_and_suite_version(vault):
    _, ledger = vault
    assert not ledger.record_score(30, scored("v2", loss=0.5), when=2e9)  # already scored on v2: kept as it was
    assert ledger.score_of(30, "v2").loss == 1.8
    assert ledger.record_score(30, scored("v3", loss=0.7), when=2e9)
    assert [s.version for s in ledger.scores(30)] == ["v2", "v3"]


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
    assert document["champion"] == 30 and document["serving"] is None and document["latest"] == 40
    assert document["suite_version"] == "v2"
    assert [c["step"] for c in document["checkpoints"]] == [5, 10, 20, 30, 40]
    assert {c["step"]: c["rank"] for c in document["checkpoints"]} == {5: 0, 10: 3, 20: 2, 30: 1, 40: 0}
    suites = {c["step"]: c["suite"] for c in document["checkpoints"]}
    assert (
        suites[30] == {"version": "v2", "loss": 1.8, "accuracy": 0.5, "files": [], "skills": []} and suites[40] is None
    )

    table = realm("vault", "list", "--home", str(home))
    assert table.returncode == 0 and "champion" in table.stdout and "score = " in table.stdout

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


@pytest.mark.parametrize(
    "argv",
    [
        ("vault", "promote", "best"),
        ("vault", "delete", "12x"),
        ("vault", "export", "../etc", "out"),
        ("chat", "--checkpoint", "newest", "hi"),
    ],
)
def test_a_malformed_reference_is_a_usage_error_before_any_socket_or_file(tmp_path, argv):
    # No vault and no oracle at this home: a form check that came later would fail on those instead.
    result = realm(*argv, "--home", str(tmp_path))
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert result.stderr.count("\n") == 1 and "is not a checkpoint reference" in result.stderr
    assert "latest or champion" in result.stderr
