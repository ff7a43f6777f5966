"""A wheel install finds the shipped assets and configs as a checkout does."""

import tomllib
from pathlib import Path

from realm import resources

ROOT = Path(__file__).resolve().parents[1]
NOT_SHIPPED = {"configs/requirements.lock", "configs/relock.sh"}  # the install's pins, not runtime files


def _data_files() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]


def test_every_asset_and_config_is_in_the_wheels_data_files():
    prefix = "share/realm-of-training/"
    covered = set()
    for target, patterns in _data_files().items():
        assert target.startswith(prefix), target
        for pattern in patterns:
            matches = [p for p in ROOT.glob(pattern) if p.is_file()]
            assert matches, f"{pattern} matches nothing"
            for path in matches:
                relative = path.relative_to(ROOT)
                assert str(relative.parent) == target[len(prefix) :], f"{relative} would land in {target}"
                covered.add(str(relative))
    files = {
        str(p.relative_to(ROOT)) for folder in ("assets", "configs") for p in (ROOT / folder).rglob("*") if p.is_file()
    }
    assert files - NOT_SHIPPED - covered == set()


def test_shipped_prefers_the_checkout_and_falls_back_to_the_installed_copy(tmp_path, monkeypatch):
    checkout, installed = tmp_path / "checkout", tmp_path / "prefix"
    (installed / "assets" / "dio-nano").mkdir(parents=True)
    monkeypatch.setattr(resources, "CHECKOUT", checkout)
    monkeypatch.setattr(resources, "INSTALLED", installed)
    assert resources.shipped("assets/dio-nano") == installed / "assets" / "dio-nano"
    assert resources.shipped("assets/missing") == checkout / "assets" / "missing"  # the error names the checkout path
    (checkout / "assets" / "dio-nano").mkdir(parents=True)
    assert resources.shipped("assets/dio-nano") == checkout / "assets" / "dio-nano"


def test_the_checkouts_shipped_files_resolve_here():
    assert resources.shipped("assets/dio-nano/tokenizer.json").is_file()
    assert resources.shipped("configs/skills").is_dir()
