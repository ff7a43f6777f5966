"""train.log_with: a real trainer's records reach TensorBoard (read back from the event files), a
bad tracker name or a missing package stops the start with one line and exit 2, and a tracker that
raises while logging costs one notice, never the training."""

from __future__ import annotations

import importlib.util

import msgspec
import pytest
import yaml
from conftest import fast_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from realm.cli.main import main
from realm.config import SkillsConfig
from realm.metrics_history import read_records
from realm.skills.history import EvalRow, SkillStore
from realm.skills.registry import SKILLS_DIR
from trainer.trackers import numbers


def _scalars(run_dir, tag: str) -> dict[int, float]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {event.step: event.value for event in events.Scalars(tag)}


def test_a_real_run_logs_every_metrics_record_to_tensorboard(trainer_factory, tmp_path):
    home = tmp_path / "home"
    trainer = trainer_factory(fast_config(log_with=["tensorboard"]), max_steps=12, home=home).start()
    assert trainer.join() == 0

    runs = list((home / "logs" / "tensorboard").iterdir())
    assert len(runs) == 1 and runs[0].name.endswith(trainer.daemon.run_id)  # one run per trainer start
    records = list(read_records(home / "logs" / "metrics.jsonl"))
    losses = {r["step"]: r["loss"] for r in records if r["kind"] == "step"}
    assert sorted(losses) == list(range(1, 13))

    logged = _scalars(runs[0], "train/loss")
    assert sorted(logged) == list(range(1, 13))
    assert all(logged[step] == pytest.approx(loss, rel=1e-6) for step, loss in losses.items())
    assert sorted(_scalars(runs[0], "train/tokens_per_s")) == list(range(1, 13))
    assert sorted(_scalars(runs[0], "val/val_loss")) == [0, 10]  # before the quest's first step, then every 10


def test_numbers_names_each_field_by_its_record_kind():
    record = {"kind": "suite", "step": 200, "time": 1.0, "version": "v1", "loss": 2.5, "accuracy": None,
              "skills": [["bin", 0.75]], "files": [["mine.jsonl", 3.0]]}  # fmt: skip
    assert numbers(record) == {"suite/loss": 2.5, "suite/skills/bin": 0.75, "suite/files/mine.jsonl": 3.0}
    assert numbers({"kind": "step", "step": 3, "quest": "q", "loss": 1.5, "micro_batch": 4}) == {
        "train/loss": 1.5,
        "train/micro_batch": 4.0,
    }


def _config_file(tmp_path, log_with: list[str]):
    path = tmp_path / "realm.yaml"
    path.write_text(yaml.safe_dump({"train": {"log_with": log_with}}), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [["trainer"], ["play", "--headless"], ["play"]])
def test_an_unknown_tracker_is_one_line_and_exit_2_before_anything_starts(tmp_path, capsys, command):
    config = _config_file(tmp_path, ["tensorbord"])
    home = tmp_path / "home"
    assert main([*command, "--config", str(config), "--home", str(home), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "train.log_with: no tracker 'tensorbord'; known: " in err[0] and "tensorboard" in err[0]
    assert not list(home.glob("vault/checkpoints/checkpoint-*"))


def test_a_tracker_whose_package_is_missing_says_what_to_install(tmp_path, capsys, monkeypatch):
    import accelerate.tracking

    monkeypatch.setattr(accelerate.tracking, "get_available_trackers", lambda: [])  # as if tensorboard were absent
    config = _config_file(tmp_path, ["tensorboard"])
    assert main(["trainer", "--config", str(config), "--home", str(tmp_path / "home"), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "train.log_with: tensorboard is not installed; `pip install -e '.[trackers]'` installs it, "
        "or drop it from the list"
    )


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_another_tracker_names_its_own_package(tmp_path, capsys):
    config = _config_file(tmp_path, ["wandb"])
    assert main(["trainer", "--config", str(config), "--home", str(tmp_path / "home"), "--max-steps", "1"]) == 2
    assert "train.log_with: wandb is not installed; `pip install wandb` installs it" in capsys.readouterr().err


class BrokenTracker:
    """An accelerate tracker (registered by name, as ``register_tracker_class`` does) whose log always raises."""

    name = "broken"
    requires_logging_directory = False
    calls = 0

    def __init__(self, run_name: str) -> None:
        pass

    def start(self) -> None:
        pass

    def log(self, values: dict, step: int | None = None) -> None:
        BrokenTracker.calls += 1
        raise ConnectionError("the tracking server went away")

    def finish(self) -> None:
        pass


def test_a_tracker_that_raises_while_logging_costs_one_notice_not_the_run(trainer_factory, tmp_path, monkeypatch):
    import accelerate.tracking

    monkeypatch.setitem(accelerate.tracking.LOGGER_TYPE_TO_CLASS, "broken", BrokenTracker)
    home = tmp_path / "home"
    trainer = trainer_factory(fast_config(log_with=["tensorboard", "broken"]), max_steps=6, home=home).start()
    assert trainer.join() == 0

    assert trainer.daemon.engine.step == 6 and BrokenTracker.calls >= 6  # tried at every record, training went on
    notices = [line.text for line in trainer.state.notices if "tracker broken" in line.text]
    assert notices == [
        "tracker broken failed logging (the tracking server went away); training goes on, and its later failures are not reported"
    ]
    (run,) = (home / "logs" / "tensorboard").iterdir()
    assert sorted(_scalars(run, "train/loss")) == list(range(1, 7))  # the other tracker is untouched


def test_log_with_is_off_by_default_and_writes_no_tracker_folder(trainer_factory, tmp_path):
    assert msgspec.structs.asdict(fast_config().train)["log_with"] == []
    home = tmp_path / "home"
    assert trainer_factory(fast_config(), max_steps=2, home=home).start().join() == 0
    assert not (home / "logs" / "tensorboard").exists()


def _passing_bin_skill(tmp_path):
    """The shipped bin skill with a small probe and a rule any score passes: a real level-up in a few steps."""
    folder = tmp_path / "skills"
    folder.mkdir()
    raw = yaml.safe_load((SKILLS_DIR / "bin.yaml").read_text(encoding="utf-8"))
    raw["eval"].update(probe_size=6, max_new_tokens=6)
    raw["progression"].update(threshold=0.0, probe_threshold=0.0, stratum_floor=0.0)
    (folder / "bin.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    skills = SkillsConfig(
        enabled=True, folder=str(folder), mix=["bin"], eval_every=3, max_eval_share=0.0, corrections=False
    )
    config = fast_config(max_length=256, log_with=["tensorboard"])
    return msgspec.structs.replace(config, skills=skills, idle=msgspec.structs.replace(config.idle, examples=24))


def test_skill_rounds_and_level_ups_reach_metrics_jsonl_and_tensorboard(trainer_factory, tmp_path):
    home = tmp_path / "home"
    store = SkillStore(home / "vault" / "realm.db")  # two passing rounds on record: the third completes the window
    for i in range(2):
        store.record(EvalRow("bin", 1, 1, i, 0.0, 1.0, 1.0, {"add": 1.0}, []))
    store.close()
    trainer = trainer_factory(_passing_bin_skill(tmp_path), max_steps=3, home=home).start()
    assert trainer.join() == 0

    [skill] = trainer.state.skills.skills
    records = list(read_records(home / "logs" / "metrics.jsonl"))
    [round_] = [r for r in records if r["kind"] == "skill"]
    assert (round_["skill"], round_["step"], round_["level"]) == ("bin", 3, 1)
    [point] = [p for p in skill.history if (p.step, p.level) == (3, 1)]  # the round the TUI shows
    assert round_["accuracy"] == point.accuracy and round_["probe"] == point.probe
    [up] = [r for r in records if r["kind"] == "level_up"]
    assert (up["skill"], up["step"], up["level"]) == ("bin", 3, 2) and skill.level == 2

    (run,) = (home / "logs" / "tensorboard").iterdir()
    assert _scalars(run, "skill/bin/accuracy") == {3: pytest.approx(round_["accuracy"])}
    assert _scalars(run, "level_up/bin/level") == {3: 2.0}


class UnstartableTracker(BrokenTracker):
    name = "unstartable"

    def start(self) -> None:
        raise PermissionError("no API key")


def test_a_tracker_that_cannot_start_stops_the_start_with_one_line(tmp_path, capsys, monkeypatch):
    import accelerate.tracking

    monkeypatch.setitem(accelerate.tracking.LOGGER_TYPE_TO_CLASS, "unstartable", UnstartableTracker)
    config = _config_file(tmp_path, ["unstartable"])
    home = tmp_path / "home"
    assert main(["trainer", "--config", str(config), "--home", str(home), "--max-steps", "1"]) == 2
    assert capsys.readouterr().err.strip().endswith("train.log_with: tracker unstartable could not start: no API key")
    assert not (home / "logs" / "metrics.jsonl").exists() or not (home / "logs" / "metrics.jsonl").stat().st_size
