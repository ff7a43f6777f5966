"""The configuration: defaults, merging, and errors that say where and why."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import yaml

from realm.config import (
    DEFAULT_HOME,
    BusConfig,
    ConfigError,
    GameConfig,
    RealmConfig,
    TrainConfig,
    config_from,
    endpoints,
    known_profiles,
    load_config,
    profile_of,
    resolve_config_path,
    resolve_home,
    run_dir,
)

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = ROOT / "configs" / "realm.yaml"


def write(tmp_path: Path, text: str, name: str = "realm.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def fail(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message  # every error names the file first
    return message


# --------------------------------------------------------------------------- the defaults file


def test_defaults_file_equals_code_defaults():
    assert load_config(DEFAULTS_FILE) == RealmConfig()


def _keys(struct: type[msgspec.Struct], prefix: str = "") -> set[str]:
    keys = set()
    for field in msgspec.structs.fields(struct):
        if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            keys |= _keys(field.type, f"{prefix}{field.name}.")
        else:
            keys.add(prefix + field.name)
    return keys


def _yaml_keys(node: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in node.items():
        if isinstance(value, dict) and value:  # an empty mapping is a value (e.g. tui.keys), not a section
            keys |= _yaml_keys(value, f"{prefix}{key}.")
        else:
            keys.add(prefix + key)
    return keys


def test_defaults_file_spells_out_every_key():
    # Equality alone would pass for an empty file; the file must *document* every key.
    raw = yaml.safe_load(DEFAULTS_FILE.read_text(encoding="utf-8"))
    assert _yaml_keys(raw) == _keys(RealmConfig)
    assert list(raw) == [f.name for f in msgspec.structs.fields(RealmConfig)]  # same order too


def test_defaults_file_comments_every_key():
    for line in DEFAULTS_FILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("  ") and ":" in line:
            assert "#" in line, f"undocumented key in configs/realm.yaml: {line.strip()}"


# --------------------------------------------------------------------------- loading


def test_none_gives_defaults():
    config = load_config(None)
    assert config == RealmConfig()
    assert config.model.name == "builtin:dio-nano"
    assert config.train.batch_size == 16
    assert config.game.steps_per_level == 1000
    assert config.bus.pub == "auto" and config.bus.control == "auto"


def test_empty_file_gives_defaults(tmp_path):
    assert load_config(write(tmp_path, "")) == RealmConfig()
    assert load_config(write(tmp_path, "# only a comment\n")) == RealmConfig()


def test_partial_file_merges_over_defaults(tmp_path):
    config = load_config(write(tmp_path, "train:\n  lr: 0.01\n  batch_size: 4\ngame:\n  steps_per_level: 50\n"))
    assert config.train.lr == 0.01
    assert config.train.batch_size == 4
    assert config.train.warmup_steps == TrainConfig().warmup_steps  # untouched keys keep defaults
    assert config.game.steps_per_level == 50
    assert config.model == RealmConfig().model
    assert config.bus == RealmConfig().bus


def test_empty_section_keeps_section_defaults(tmp_path):
    assert load_config(write(tmp_path, "train: {}\nbus: {}\n")) == RealmConfig()


def test_scientific_notation_without_dot_is_a_float(tmp_path):
    # YAML 1.1 reads `1e-4` as a string; a learning rate is usually written that way.
    config = load_config(write(tmp_path, "train:\n  lr: 1e-4\n  max_grad_norm: 5E-1\n"))
    assert config.train.lr == pytest.approx(1e-4)
    assert config.train.max_grad_norm == pytest.approx(0.5)


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfgame:\n  steps_per_level: 7\n")
    assert load_config(path).game.steps_per_level == 7


# --------------------------------------------------------------------------- errors


def test_unknown_key_names_file_and_dotted_path(tmp_path):
    message = fail(tmp_path, "train:\n  lrr: 0.1\n")
    assert "train.lrr: unknown key" in message
    assert "did you mean `lr`?" in message
    assert "batch_size" in message  # the valid keys are listed


def test_unknown_section_names_it(tmp_path):
    message = fail(tmp_path, "trian:\n  lr: 0.1\n")
    assert "trian: unknown section" in message
    assert "did you mean `train`?" in message
    assert "model, train, idle, game, bus" in message


def test_wrong_type_names_key_and_expected_type(tmp_path):
    message = fail(tmp_path, "train:\n  batch_size: sixteen\n")
    assert "train.batch_size: must be a whole number, not text" in message


def test_wrong_type_for_a_section(tmp_path):
    message = fail(tmp_path, "game: 3\n")
    assert "game: must be a mapping, not a whole number" in message


def test_bool_is_not_an_int(tmp_path):
    message = fail(tmp_path, "train:\n  seed: true\n")
    assert "train.seed: must be a whole number, not true or false" in message


def test_invalid_enum_value_names_key(tmp_path):
    message = fail(tmp_path, "model:\n  dtype: fp8\n")
    assert "model.dtype" in message and "fp8" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train:\n  batch_size: 0\n", "train.batch_size: must be at least 1"),
        ("train:\n  grad_accum: -1\n", "train.grad_accum: must be at least 1"),
        ("train:\n  lr: 0\n", "train.lr: must be positive"),
        ("train:\n  schedule: linear\n", "train.schedule: must be constant or cosine, not 'linear'"),
        ("train:\n  lr: 10\n", "train.lr: must be at most 1 (AdamW moves each weight by about lr a step)"),
        ("game:\n  steps_per_level: 0\n", "game.steps_per_level: must be at least 1"),
        ("bus:\n  heartbeat_s: 0\n", "bus.heartbeat_s: must be positive"),
        ("bus:\n  timeout_s: -1.0\n", "bus.timeout_s: must be positive"),
        ("bus:\n  retries: -1\n", "bus.retries: must be at least 0"),
        ("train:\n  warmup_steps: -5\n", "train.warmup_steps: must be at least 0"),
        ("bus:\n  max_message_bytes: 0\n", "bus.max_message_bytes: must be at least 1"),
        ("tui:\n  chat_max_new_tokens: 0\n", "tui.chat_max_new_tokens: must be at least 1"),
        ("skills:\n  unlock_level: 0\n", "skills.unlock_level: must be at least 1 (1: every skill in the mix"),
        ("tui:\n  bin_glyphs: round\n", "tui.bin_glyphs: must be circled or ascii, not 'round'"),
    ],
)
def test_value_constraints_name_the_key(tmp_path, text, expected):
    assert expected in fail(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train:\n  lr: .inf\n", "train.lr: must be a finite number, not inf"),
        ("train:\n  lr: .nan\n", "train.lr: must be a finite number, not nan"),
        ("bus:\n  timeout_s: .inf\n", "bus.timeout_s: must be a finite number, not inf"),
        ("champion:\n  loss_weight: .inf\n", "champion.loss_weight: must be a finite number, not inf"),
        ("model:\n  device: quantum\n", "model.device: must be auto, cpu, cuda or cuda:N, not 'quantum'"),
        ("oracle:\n  device: gpu0\n", "oracle.device: must be auto, cpu, cuda or cuda:N, not 'gpu0'"),
    ],
)
def test_every_float_is_finite_and_devices_are_known(tmp_path, text, expected):
    assert expected in fail(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("train:\n  threads: -3\n", "train.threads"),
        ("oracle:\n  threads: -1\n", "oracle.threads"),
        ("train:\n  seed: 100000000000000000000000\n", "train.seed"),
        ("train:\n  seed: -1\n", "train.seed"),
        ("train:\n  weight_decay: -0.1\n", "train.weight_decay"),
        ("train:\n  max_grad_norm: 0\n", "train.max_grad_norm"),
        ("train:\n  min_lr_ratio: 1.5\n", "train.min_lr_ratio"),
        ("train:\n  peak_flops: -1\n", "train.peak_flops"),
    ],
)
def test_numbers_out_of_their_bounds_name_the_key(tmp_path, text, key):
    assert fail(tmp_path, text).startswith(f"{tmp_path / 'realm.yaml'}: {key}: ")


def test_constraints_hold_in_code_too():
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="steps_per_level"):
        GameConfig(steps_per_level=0)
    with pytest.raises(ValueError, match="heartbeat_s"):
        BusConfig(heartbeat_s=0.0)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: config file not found"


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path)


def test_undecodable_bytes(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"train:\n  lr: \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(path)


def test_invalid_yaml_names_the_line(tmp_path):
    message = fail(tmp_path, "train:\n  lr: 0.1\n  batch_size: [1, 2\n")
    assert "not valid YAML at line 4" in message  # the unclosed list runs to the end


def test_invalid_yaml_mapping_in_value(tmp_path):
    message = fail(tmp_path, "model:\n  name: a: b\n")
    assert "not valid YAML at line 2, column 10: mapping values are not allowed here" in message


def test_top_level_list(tmp_path):
    message = fail(tmp_path, "- model\n- train\n")
    assert "(top level): must be a mapping of sections, not a list" in message


def test_top_level_scalar(tmp_path):
    message = fail(tmp_path, "just words\n")
    assert "(top level): must be a mapping of sections, not text" in message


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# --------------------------------------------------------------------------- home and paths


def test_resolve_home_argument_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("REALM_HOME", str(tmp_path / "env"))
    assert resolve_home(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert resolve_home(str(tmp_path / "arg")) == (tmp_path / "arg").resolve()


def test_resolve_home_env_next(tmp_path, monkeypatch):
    monkeypatch.setenv("REALM_HOME", str(tmp_path / "env"))
    assert resolve_home(None) == (tmp_path / "env").resolve()


def test_resolve_home_default_is_cwd_realm_home(tmp_path, monkeypatch):
    monkeypatch.delenv("REALM_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_home(None) == (tmp_path / DEFAULT_HOME).resolve()
    monkeypatch.setenv("REALM_HOME", "")  # empty counts as unset
    assert resolve_home(None) == (tmp_path / DEFAULT_HOME).resolve()


def test_resolve_home_expands_user(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_home("~/realm") == (tmp_path / "realm").resolve()


def test_resolve_home_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    home = resolve_home("relative-home")
    assert home.is_absolute() and home == (tmp_path / "relative-home").resolve()


def test_resolve_config_path_precedence(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("REALM_CONFIG", raising=False)
    assert resolve_config_path(None, home) is None  # nothing given, nothing in home
    (home / "realm.yaml").write_text("")
    assert resolve_config_path(None, home) == home / "realm.yaml"
    monkeypatch.setenv("REALM_CONFIG", str(tmp_path / "env.yaml"))
    assert resolve_config_path(None, home) == tmp_path / "env.yaml"
    assert resolve_config_path(tmp_path / "arg.yaml", home) == tmp_path / "arg.yaml"
    # a path that was asked for is returned even if it is missing: load_config says so
    with pytest.raises(ConfigError, match="not found"):
        load_config(resolve_config_path(None, home))


def test_endpoints_auto_are_ipc_under_home_run(tmp_path):
    home = tmp_path / "home"
    pub, control = endpoints(RealmConfig(), home)
    assert run_dir(home) == home / "run"
    assert pub == f"ipc://{home / 'run' / 'trainer-pub'}"
    assert control == f"ipc://{home / 'run' / 'trainer-ctl'}"
    assert pub != control


def test_endpoints_explicit_are_kept(tmp_path):
    config = load_config(write(tmp_path, "bus:\n  pub: tcp://127.0.0.1:5555\n"))
    pub, control = endpoints(config, tmp_path)
    assert pub == "tcp://127.0.0.1:5555"
    assert control == f"ipc://{tmp_path / 'run' / 'trainer-ctl'}"


# --------------------------------------------------------------------------- profiles


def test_a_model_starts_from_its_profile_and_the_users_keys_win():
    qwen = config_from({"model": {"name": "Qwen/Qwen3-0.6B"}})
    assert profile_of(qwen.model) == "qwen3-0.6b"
    assert (qwen.train.lr, qwen.train.max_length, qwen.train.gradient_checkpointing, qwen.idle.enabled) == (
        1e-5,
        2048,
        True,
        False,
    )
    mine = config_from({"model": {"name": "/models/Qwen3-0.6B"}, "train": {"lr": 5e-5}, "idle": {"enabled": True}})
    assert (mine.train.lr, mine.train.max_length, mine.idle.enabled) == (5e-5, 2048, True)  # key by key
    other = config_from({"model": {"name": "org/some-7b"}})
    assert profile_of(other.model) == "generic" and not other.idle.enabled
    named = config_from({"model": {"name": "org/some-7b", "profile": "qwen3-0.6b"}})
    assert named.train.max_length == 2048


def test_dio_nano_s_profile_is_the_documented_defaults():
    assert load_config(None) == RealmConfig() == config_from({"model": {"name": "builtin:dio-nano"}})
    assert profile_of(RealmConfig().model) == "dio-nano"


def test_every_shipped_profile_is_a_valid_partial_config():
    for name in known_profiles():
        config = config_from({"model": {"profile": name}})
        assert profile_of(config.model) == name


def test_an_unknown_profile_names_the_known_ones():
    with pytest.raises(ConfigError) as refused:
        config_from({"model": {"profile": "qwen9"}})
    assert str(refused.value) == "model.profile: no profile 'qwen9'; known: dio-nano, generic, qwen3-0.6b"
