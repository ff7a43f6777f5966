"""The realm's configuration: YAML on disk, msgspec Structs in memory.

A file may set any subset of keys; the rest keep the defaults written here (and mirrored,
with comments, in ``configs/realm.yaml``). A wrong key, a wrong type or a missing file raises
``ConfigError`` naming the file, the key path and what was expected.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Literal

import msgspec
import yaml

DEFAULT_HOME = "realm-home"


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message says where and why."""


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class ModelConfig(_Section):
    name: str = "builtin:dio-nano"  # builtin:dio-nano, an HF id (Qwen/Qwen3-0.6B) or a local path
    tokenizer: str | None = None  # defaults to the model's own
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"


class TrainConfig(_Section):
    lr: float = 3e-3
    warmup_steps: int = 20
    weight_decay: float = 0.0
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 256
    max_grad_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 200
    val_every: int = 50
    val_examples: int = 32
    threads: int = 0  # torch CPU threads; 0 keeps torch's choice

    def __post_init__(self) -> None:
        for key in ("batch_size", "grad_accum", "max_length", "checkpoint_every", "val_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"`{key}` must be at least 1")
        if self.lr <= 0:
            raise ValueError("`lr` must be positive")


class IdleConfig(_Section):
    enabled: bool = True  # make a quest when the queue is empty, so DIO never idles
    examples: int = 256

    def __post_init__(self) -> None:
        if self.examples < 1:
            raise ValueError("`examples` must be at least 1")


class GameConfig(_Section):
    steps_per_level: int = 1000

    def __post_init__(self) -> None:
        if self.steps_per_level < 1:
            raise ValueError("`steps_per_level` must be at least 1")


class BusConfig(_Section):
    pub: str = "auto"  # auto: ipc socket in {home}/run; or e.g. tcp://127.0.0.1:5555
    control: str = "auto"
    heartbeat_s: float = 1.0
    max_message_bytes: int = 4 * 1024 * 1024
    timeout_s: float = 2.0  # a CLI request's wait for each try
    retries: int = 2

    def __post_init__(self) -> None:
        for key in ("heartbeat_s", "timeout_s"):
            if getattr(self, key) <= 0:
                raise ValueError(f"`{key}` must be positive")
        if self.max_message_bytes < 1:
            raise ValueError("`max_message_bytes` must be at least 1")
        if self.retries < 0:
            raise ValueError("`retries` must be at least 0")


class OracleConfig(_Section):
    node: str = "local"  # this oracle's name in the host registry
    pub: str = "auto"  # auto: an ipc socket in {home}/run; or e.g. tcp://0.0.0.0:5557
    control: str = "auto"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    threads: int = 0  # torch CPU threads; 0 keeps torch's choice
    load_on_start: str = "latest"  # a ledger reference to serve at start ("" for none)
    max_batch: int = 8  # sessions decoded together in one batched step
    max_new_tokens: int = 512  # the most tokens one request may ask for
    max_prompt_tokens: int = 1024  # longer prompts are refused
    guest_models: int = 1  # checkpoints kept loaded beside the served one for `chat --checkpoint`
    telemetry_s: float = 1.0  # seconds between telemetry events (tokens/s, queue, GPU)
    cache_dir: str = "auto"  # fetched checkpoints; auto: {home}/oracle-cache
    cache_limit_mb: int = 8192  # the cache's size limit; least recently used checkpoints go first
    chunk_bytes: int = 1048576  # transfer chunk size
    credit: int = 8  # transfer chunks in flight
    auto_promote: bool = False  # the trainer sends each new champion to the oracle

    def __post_init__(self) -> None:
        for key in ("max_batch", "max_new_tokens", "max_prompt_tokens", "cache_limit_mb", "chunk_bytes", "credit"):
            if getattr(self, key) < 1:
                raise ValueError(f"`{key}` must be at least 1")
        if self.guest_models < 0:
            raise ValueError("`guest_models` must be at least 0")
        if self.telemetry_s <= 0:
            raise ValueError("`telemetry_s` must be positive")


class ChampionConfig(_Section):
    skill_weight: float = 1.0  # weight of the level-weighted skill accuracy (0..1)
    val_loss_weight: float = 1.0  # weight of the validation loss (subtracted: lower is better)


class SecurityConfig(_Section):
    insecure: bool = False  # allow listening beyond loopback without CURVE (a trusted network only)
    keys_dir: str = "auto"  # CURVE key pairs from `realm keys init`; auto: {home}/keys
    hosts: str = "auto"  # the host registry; auto: {home}/hosts.yaml, else configs/hosts.yaml


class RealmConfig(_Section):
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    idle: IdleConfig = IdleConfig()
    game: GameConfig = GameConfig()
    bus: BusConfig = BusConfig()
    oracle: OracleConfig = OracleConfig()
    champion: ChampionConfig = ChampionConfig()
    security: SecurityConfig = SecurityConfig()


def load_config(path: str | os.PathLike | None) -> RealmConfig:
    """Load ``path`` over the defaults; ``None`` gives the defaults."""
    if path is None:
        return RealmConfig()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if raw is None:
        raw = {}
    try:
        return msgspec.convert(raw, RealmConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {_explain(exc)}") from None


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; a learning rate is written that way."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]*)`$")
_FIELD_RULE = re.compile(r"^`(?P<field>[^`]+)` (?P<rule>.*)$")


def _section_type(key: str) -> type | None:
    struct: type = RealmConfig
    for part in filter(None, key.split(".")):
        hints = {f.name: f.type for f in msgspec.structs.fields(struct)}
        struct = hints.get(part)
        if not (isinstance(struct, type) and issubclass(struct, msgspec.Struct)):
            return None
    return struct


def _explain(exc: msgspec.ValidationError) -> str:
    # msgspec says e.g. "Expected `int`, got `str` - at `$.train.batch_size`"; the YAML user
    # thinks in dotted keys, so say "train.batch_size: expected `int`, got `str`".
    message = str(exc)
    key = ""
    what = message
    if " - at `$" in message:
        what, where = message.rsplit(" - at `$", 1)
        key = where.rstrip("`").lstrip(".")
    unknown = _UNKNOWN.match(what)
    if unknown:  # name the full path of the stray key and what would have been valid
        field = unknown["field"]
        struct = _section_type(key)
        valid = [f.name for f in msgspec.structs.fields(struct)] if struct else []
        kind = "key" if key else "section"
        text = f"{key + '.' if key else ''}{field}: unknown {kind}"
        close = difflib.get_close_matches(field, valid, n=1)
        if close:
            text += f" (did you mean `{close[0]}`?)"
        if valid:
            text += f"; valid {kind}s{' in `' + key + '`' if key else ''}: {', '.join(valid)}"
        return text
    rule = _FIELD_RULE.match(what)
    if rule:  # a __post_init__ constraint: "`batch_size` must be at least 1" at `$.train`
        return f"{key + '.' if key else ''}{rule['field']}: {rule['rule']}"
    if key:
        return f"{key}: {what[0].lower()}{what[1:]}"
    if message.startswith("Expected `object`"):
        return f"(top level): {message[0].lower()}{message[1:]} (a mapping of sections)"
    return message


def resolve_home(home: str | os.PathLike | None) -> Path:
    """``--home``, else ``$REALM_HOME``, else ``./realm-home``."""
    chosen = home or os.environ.get("REALM_HOME") or DEFAULT_HOME
    return Path(chosen).expanduser().resolve()


def resolve_config_path(config: str | os.PathLike | None, home: Path) -> Path | None:
    """``--config``, else ``$REALM_CONFIG``, else ``{home}/realm.yaml`` when it exists."""
    chosen = config or os.environ.get("REALM_CONFIG")
    if chosen:
        return Path(chosen).expanduser()
    candidate = home / "realm.yaml"
    return candidate if candidate.exists() else None


def run_dir(home: Path) -> Path:
    """Where the local ipc sockets live: private to this user (0700)."""
    return home / "run"


def endpoints(config: RealmConfig, home: Path) -> tuple[str, str]:
    """The trainer's (pub, control) endpoints."""
    pub = config.bus.pub if config.bus.pub != "auto" else f"ipc://{run_dir(home) / 'trainer-pub'}"
    control = config.bus.control if config.bus.control != "auto" else f"ipc://{run_dir(home) / 'trainer-ctl'}"
    return pub, control


def oracle_endpoints(config: RealmConfig, home: Path) -> tuple[str, str]:
    """The local oracle's (pub, control) endpoints."""
    oracle = config.oracle
    pub = oracle.pub if oracle.pub != "auto" else f"ipc://{run_dir(home) / 'oracle-pub'}"
    control = oracle.control if oracle.control != "auto" else f"ipc://{run_dir(home) / 'oracle-ctl'}"
    return pub, control
