"""Settings that outlive the trainer: ``HOME/overrides.yaml``, layered over the config file.

A change the Armory (or ``realm config set``) accepts is written here, key by key, so a restart
keeps it. The rules for what may change, and how a value is checked, live here too: the
trainer's Armory and the offline ``realm config set`` use the same ``propose``.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import yaml

from realm.config import (
    ConfigError,
    RealmConfig,
    SkillsConfig,
    _Loader,
    _merged,
    config_from,
    load_config,
    profile_settings,
    read_yaml,
)
from realm.files import atomic_write
from realm.skills.registry import load_skills, mix_problem

OVERRIDES = "overrides.yaml"

# Keys the trainer can change between two steps, and what each does.
SAFE = {
    "train.lr": "AdamW learning rate (after warmup); applies from the next step",
    "train.weight_decay": "AdamW weight decay; applies from the next step",
    "train.max_grad_norm": "gradient clipping norm",
    "train.checkpoint_every": "save a checkpoint every N optimizer steps",
    "train.val_every": "run validation every N optimizer steps",
    "idle.enabled": "make a quest from the active skill when the queue is empty",
    "idle.examples": "examples in each idle quest",
    "train.batch_size": "examples per micro-batch; the next step is cut at the new size (memory checked first)",
    "train.schedule": "lr after warmup: constant or cosine; continues from the current step",
    "train.warmup_steps": "linear lr warmup steps; read at the current step",
    "train.cosine_steps": "cosine: steps from the end of warmup down to min_lr_ratio * lr",
    "train.min_lr_ratio": "cosine: the lr's floor, as a share of train.lr",
    "skills.mix": "skills and weights (bin:2) for eval rounds and idle quests; the first is the active skill",
}
# Keys the seed's safety rules protect: a change needs an explicit confirmation.
# model.name and model.tokenizer are not here: the trainer cannot swap its model while it runs
CRITICAL = {
    "train.max_length": "tokens per example; applies to the next quest's encoding",
}


class ArmoryRefused(ValueError):
    """A config change that will not be made; the message says why."""


def flatten(raw: object) -> dict[str, object]:
    """``{"train": {"lr": 1}}`` (or a ``RealmConfig``) as ``{"train.lr": 1}``."""
    if isinstance(raw, RealmConfig):
        raw = msgspec.to_builtins(raw)
    flat: dict[str, object] = {}
    for section, values in (raw or {}).items():
        if isinstance(values, dict):
            for key, value in values.items():
                flat[f"{section}.{key}"] = value
        else:
            flat[str(section)] = values
    return flat


def yaml_text(value: object) -> str:
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def propose(config: RealmConfig, key: str, value_text: str, confirm: bool) -> RealmConfig:
    """The config with ``key`` set to ``value_text``, or ``ArmoryRefused`` saying why not."""
    flat = flatten(config)
    if key not in flat:
        raise ArmoryRefused(f"{key}: no such config key")
    if key not in SAFE and key not in CRITICAL:
        raise ArmoryRefused(f"{key}: cannot change while the trainer runs; set it in the config file and restart")
    if key in CRITICAL and not confirm:
        raise ArmoryRefused(f"{key} is a critical key (safety rule): the change needs an explicit confirmation")
    try:
        value = yaml.load(value_text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ArmoryRefused(f"{key}: {value_text!r} is not a YAML value ({exc})") from None
    section, name = key.split(".", 1)
    raw = msgspec.to_builtins(config)
    raw[section][name] = value
    try:
        new = config_from(raw)
    except ConfigError as exc:
        raise ArmoryRefused(str(exc)) from None
    if key == "skills.mix":
        _check_mix(new.skills)
    return new


def _check_mix(skills: SkillsConfig) -> None:
    """A live mix must name known skills, once each, with some weight."""
    weights = skills.weights()
    if len(weights) < len(skills.mix):
        raise ArmoryRefused("skills.mix: a skill is listed twice; list each once, with its weight (bin:2)")
    if not sum(weights.values()) > 0:
        raise ArmoryRefused("skills.mix: the weights add up to 0; give at least one skill a weight above 0")
    try:
        known = load_skills(skills.folder)
    except ValueError as exc:
        raise ArmoryRefused(f"skills.mix: cannot read the skills to check it ({exc})") from None
    problem = mix_problem(skills, known)
    if problem:
        raise ArmoryRefused(problem)


def overrides_path(home: Path) -> Path:
    return Path(home) / OVERRIDES


def read_overrides(home: Path) -> dict:
    """The sections and keys in ``HOME/overrides.yaml``; ``{}`` when there is none.
    ``ConfigError`` naming the file when it is not a YAML mapping of sections."""
    path = overrides_path(home)
    try:
        raw = read_yaml(path, "overrides file")
    except FileNotFoundError:
        return {}
    except ConfigError as exc:
        raise ConfigError(f"{exc}; fix or delete the file") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping of sections (train: {{lr: 0.002}}); fix or delete the file")
    for section, values in raw.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: {section}: must be a mapping of keys; fix or delete the file")
    stray = [key for key in flatten(raw) if key not in SAFE and key not in CRITICAL]
    if stray:
        raise ConfigError(
            f"{path}: {stray[0]} is not a key the Armory or `realm config set` changes (set it in the config "
            "file); fix or delete the file"
        )
    return raw


def save_override(home: Path, key: str, config: RealmConfig) -> Path:
    """Write ``key``'s value in ``config`` into ``HOME/overrides.yaml``, whole or not at all."""
    raw = read_overrides(home)
    section, name = key.split(".", 1)
    raw.setdefault(section, {})[name] = msgspec.to_builtins(getattr(getattr(config, section), name))
    text = "# Settings changed live (the Armory, `realm config set`); they win over the config file.\n"
    return atomic_write(overrides_path(home), text + yaml.safe_dump(raw, sort_keys=True))


def file_settings(config_path: Path | None) -> dict:
    """The raw sections of the config file, as written (``{}`` without one)."""
    if config_path is None:
        return {}
    load_config(config_path)  # says what is wrong with the file itself, naming it
    return read_yaml(Path(config_path), "config file") or {}


def load_home_config(home: Path, config_path: Path | None) -> RealmConfig:
    """The config file (over its profile and the defaults), with ``HOME/overrides.yaml`` over it
    key by key, checked by the same rules; ``ConfigError`` naming the file that is wrong."""
    over = read_overrides(home)
    if not over:
        return load_config(config_path)
    base = file_settings(config_path)
    try:
        return config_from(_merged(base, over))
    except ConfigError as exc:
        raise ConfigError(f"{overrides_path(home)}: {exc}; fix or delete the file") from None


def origins(home: Path, config_path: Path | None) -> list[tuple[str, str, str]]:
    """(key, value, where it came from) for every setting of the effective config; the origin
    is ``overrides.yaml``, the config file, the model's profile or ``default``."""
    config = load_home_config(home, config_path)
    base, over_raw = file_settings(config_path), read_overrides(home)
    over = flatten(over_raw)
    from_file = flatten(base)
    from_profile = flatten(profile_settings(_merged(base, over_raw)))
    rows = []
    for key, value in flatten(config).items():
        if key in over:
            origin = OVERRIDES
        elif key in from_file:
            origin = str(config_path)
        elif key in from_profile:
            origin = "profile"
        else:
            origin = "default"
        rows.append((key, yaml_text(value), origin))
    return rows


def overridden(home: Path) -> dict[str, object]:
    """The keys ``HOME/overrides.yaml`` sets, with their values; ``{}`` when it cannot be read."""
    try:
        return flatten(read_overrides(home))
    except ConfigError:
        return {}
