"""Settings that persist: HOME/overrides.yaml over the config file, `realm config show|set`,
and a live Armory change that survives a trainer restart (real trainer processes)."""

from __future__ import annotations

import yaml
from conftest import trainer_process, wait_for

from realm.bus import RealmClient
from realm.cli.common import load_context
from realm.cli.main import build_parser
from realm.cli.main import main as cli_main
from realm.config import endpoints, load_config
from realm.overrides import load_home_config

FAST = {"train": {"batch_size": 4, "max_length": 64, "warmup_steps": 5, "threads": 1}, "skills": {"enabled": False}}


def write_config(path, sections=FAST):
    path.write_text(yaml.safe_dump(sections), encoding="utf-8")
    return path


def running(home, config_file, key):
    """``key``'s value in the running trainer's announced config (the Armory's fields)."""
    _, control = endpoints(load_config(config_file), home)
    fields = RealmClient(control, timeout_s=2.0, retries=1).snapshot().state.config
    return {f.key: f.value for f in fields}.get(key)


def test_a_live_lr_change_is_kept_across_a_trainer_restart(tmp_path, capsys):
    home, config_file = tmp_path / "home", write_config(tmp_path / "fast.yaml")
    common = ["--home", str(home), "--config", str(config_file)]
    first = trainer_process(home, config_file, max_steps=100_000)
    try:
        wait_for(lambda: _quiet(running, home, config_file, "train.lr") == "0.003", timeout=60, what="trainer up")
        assert cli_main(["config", "set", "train.lr", "0.002", *common]) == 0  # a trainer runs: sent live
        assert "train.lr = 0.002 accepted" in capsys.readouterr().out
        wait_for(lambda: running(home, config_file, "train.lr") == "0.002", what="the change applied live")
        assert cli_main(["stop", *common]) == 0
        assert first.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.kill()
    assert yaml.safe_load((home / "overrides.yaml").read_text()) == {"train": {"lr": 0.002}}

    second = trainer_process(home, config_file, max_steps=100_000)
    try:
        lr = wait_for(lambda: _quiet(running, home, config_file, "train.lr"), timeout=60, what="restarted trainer")
        assert lr == "0.002"
        assert cli_main(["status", *common]) == 0
        assert "overrides: train.lr=0.002 (overrides.yaml)" in capsys.readouterr().out
        assert cli_main(["stop", *common]) == 0
        assert second.wait(timeout=60) == 0
    finally:
        if second.poll() is None:
            second.kill()


def _quiet(function, *args):
    try:
        return function(*args)
    except Exception:  # not up yet
        return None


def test_config_set_offline_is_what_the_next_load_uses(tmp_path, capsys):
    home = tmp_path / "home"
    config_file = write_config(tmp_path / "realm.yaml", {"train": {"lr": 0.01, "batch_size": 4}})
    common = ["--home", str(home), "--config", str(config_file)]
    home.mkdir()
    assert cli_main(["config", "set", "train.lr", "2e-3", *common]) == 0
    assert capsys.readouterr().out == (
        f"train.lr = 2e-3 saved in {home / 'overrides.yaml'}; the trainer uses it from its next start\n"
    )
    config = load_home_config(home, config_file)
    assert (config.train.lr, config.train.batch_size) == (0.002, 4)  # key by key: the file's batch_size stays
    _, loaded, _ = load_context(build_parser().parse_args(["status", *common]))
    assert loaded == config

    assert cli_main(["config", "show", *common]) == 0
    shown = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert shown["train.lr"].endswith("0.002  (overrides.yaml)")
    assert shown["train.batch_size"].endswith(f"4  ({config_file})")
    assert shown["train.seed"].endswith("0  (default)")


def test_config_set_refuses_with_the_armory_rules_and_saves_nothing(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    for args, why in (
        (["train.lr", "fast"], "train.lr: must be a number, not text"),
        (
            ["train.grad_accum", "3"],
            "train.grad_accum: cannot change while the trainer runs; set it in the config file and restart",
        ),  # fmt: skip
        (["train.batch_size", "0"], "train.batch_size: must be at least 1"),
        (
            ["skills.mix", "[bin, zz]"],
            (
                "skills.mix: 'zz' is not a skill in configs/skills; known: bin, sy; "
                "name only those in skills.mix (default [bin, sy])"
            ),
        ),
        (
            ["train.max_length", "128"],
            "train.max_length is a critical key (safety rule): the change needs an explicit confirmation",
        ),  # fmt: skip
    ):
        assert cli_main(["config", "set", *args, "--home", str(home)]) == 2
        assert capsys.readouterr().err == f"realm: {why}\n"
    assert not (home / "overrides.yaml").exists()
    assert cli_main(["config", "set", "train.max_length", "128", "--confirm", "--home", str(home)]) == 0
    assert load_home_config(home, None).train.max_length == 128


def test_a_broken_overrides_file_is_one_line_naming_file_and_key(tmp_path, capsys):
    home = tmp_path / "home"
    home.mkdir()
    path = home / "overrides.yaml"
    for text, why in (
        ("train:\n  lr: fast\n", "train.lr: must be a number, not text; fix or delete the file"),
        ("train: [\n", "not valid YAML at line 2, column 1: "),
        ("- lr\n", "must be a mapping of sections (train: {lr: 0.002}); fix or delete the file"),
        ("train:\n  seed: 3\n", "train.seed is not a key the Armory or `realm config set` changes"),
    ):
        path.write_text(text)
        for command in (["config", "show"], ["status"], ["config", "set", "train.lr", "0.001"]):
            assert cli_main([*command, "--home", str(home)]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"realm: bad config: {path}: {why}") and err.count("\n") == 1
            assert err.endswith("; fix or delete the file\n")
