"""The realm's configuration: YAML on disk, msgspec Structs in memory.

A file may set any subset of keys; the rest keep the defaults written here (and mirrored,
with comments, in ``configs/realm.yaml``). A wrong key, a wrong type or a missing file raises
``ConfigError`` naming the file, the key path and what was expected.
"""

from __future__ import annotations

import difflib
import importlib.util
import ipaddress
import math
import os
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from realm.resources import shipped

DEFAULT_HOME = "realm-home"


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message says where and why."""


AtLeast0 = Annotated[int, msgspec.Meta(ge=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]
Seed = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]  # what torch.manual_seed takes
DEVICE = re.compile(r"^(auto|cpu|cuda(:[0-9]+)?)$")


def _check_device(key: str, device: str) -> None:
    if not DEVICE.match(device.strip().lower()):
        raise ValueError(f"`{key}` must be auto, cpu, cuda or cuda:N, not {device!r}")


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class ModelConfig(_Section):
    name: str = "builtin:dio-nano"  # builtin:dio-nano, an HF id (Qwen/Qwen3-0.6B) or a local path
    profile: str = "auto"  # the settings a model starts from (configs/profiles/); auto: chosen by name
    tokenizer: str | None = None  # defaults to the model's own
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"

    def __post_init__(self) -> None:
        _check_device("device", self.device)


class LoraSettings(_Section):
    """``train.lora``: train low-rank adapters (peft's LoRA) on the listed linear modules, the rest frozen."""

    r: Annotated[int, msgspec.Meta(ge=1)] = 16  # the adapters' rank
    alpha: Annotated[float, msgspec.Meta(gt=0.0)] = 32.0  # the update is scaled by alpha / r
    dropout: Annotated[float, msgspec.Meta(ge=0.0, lt=1.0)] = 0.0  # on the adapters' input
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError("`targets` must name at least one module (e.g. q_proj)")
        if importlib.util.find_spec("peft") is None:
            raise ValueError(
                "LoRA needs the peft package: pip install 'realm-of-training[lora]' (or: pip install peft)"
            )


class TrainConfig(_Section):
    lr: float = 3e-3
    warmup_steps: int = 20
    weight_decay: NonNegative = 0.0
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 2048
    max_grad_norm: Annotated[float, msgspec.Meta(gt=0.0)] = 1.0
    seed: Seed = 0
    checkpoint_every: int = 200
    val_every: int = 50
    val_examples: int = 32  # the most examples a quest holds out for its own val loss
    # a quest's held-out examples after their last validation: discard (never trained) or
    # train (one short final pass, so nothing the user gave is wasted)
    val_after: Literal["discard", "train"] = "discard"
    threads: AtLeast0 = 0  # torch CPU threads; 0 keeps torch's choice
    # --- the engine
    schedule: Literal["constant", "cosine"] = "constant"  # after warmup
    cosine_steps: int = 10000  # cosine: steps from the end of warmup down to min_lr_ratio * lr
    min_lr_ratio: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.1
    peak_flops: NonNegative = 0.0  # the device's dense matmul FLOP/s for the MFU estimate; 0 measures it at start
    metrics_log: bool = True  # append every step's metrics to {home}/logs/metrics.jsonl
    # logs/trainer.log and logs/metrics.jsonl each rotate past this size to .1 ... .log_keep (0: never)
    log_max_mb: NonNegative = 50.0
    log_keep: AtLeast0 = 3
    # experiment trackers fed every metrics record: any accelerate tracker name (tensorboard, wandb, ...)
    log_with: list[str] = msgspec.field(default_factory=list)
    # auto: bf16 on a GPU that has it, fp16 with loss scaling on one that has not; on CPU fp32, or
    # where the CPU has native bf16 whichever of the two ran the first 20 steps faster
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    # recompute each layer's activations in the backward: much less memory for ~30 % more compute
    gradient_checkpointing: bool = False
    # LoRA adapters instead of a full fine-tune (null: off); promote and export merge them
    lora: LoraSettings | None = None

    def __post_init__(self) -> None:
        for key in ("batch_size", "grad_accum", "max_length", "checkpoint_every", "val_every", "cosine_steps"):
            if getattr(self, key) < 1:
                raise ValueError(f"`{key}` must be at least 1")
        for key in ("warmup_steps", "val_examples"):
            if getattr(self, key) < 0:
                raise ValueError(f"`{key}` must be at least 0")
        if self.lr <= 0:
            raise ValueError("`lr` must be positive")
        # AdamW moves a weight by about lr a step: past 1 the first step ruins every weight (inf: not finite, below)
        if 1 < self.lr < math.inf:
            raise ValueError("`lr` must be at most 1 (AdamW moves each weight by about lr a step)")


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


class VaultConfig(_Section):
    """Checkpoint retention: what survives when a new checkpoint is saved."""

    keep_last: int = 5  # the newest K checkpoints
    keep_best: int = 3  # and the best M by best_metric
    best_metric: Literal["score", "train_loss"] = "score"  # score: the champion board's order
    pinned: tuple[int, ...] = ()  # steps never deleted (the champion never is either)
    min_free_mb: int = 0  # free disk below this before a save: retention runs first

    def __post_init__(self) -> None:
        if self.keep_last < 1:
            raise ValueError("`keep_last` must be at least 1")
        for key in ("keep_best", "min_free_mb"):
            if getattr(self, key) < 0:
                raise ValueError(f"`{key}` must be at least 0")


class QuestsConfig(_Section):
    max_bad_share: float = 0.10  # a file whose share of bad lines exceeds this fails whole
    too_long: Literal["drop", "truncate"] = "drop"  # examples longer than train.max_length
    # copies of an example (exact, or differing in whitespace/case): drop trains one, keep trains
    # each; a held-out example's copies are never trained either way
    duplicates: Literal["keep", "drop"] = "drop"
    answer_leak: bool = True  # DEEP check: reject examples whose answer appears in the prompt
    leak_min_chars: int = 8  # shorter answers ("4", "yes") are not checked for leakage
    epochs: int = 1  # passes over a quest's lines (each reshuffled) unless `realm quest add --epochs` says

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("`epochs` must be at least 1")
        if not 0.0 <= self.max_bad_share <= 1.0:
            raise ValueError("`max_bad_share` must be between 0 and 1")
        if self.leak_min_chars < 1:
            raise ValueError("`leak_min_chars` must be at least 1")


class SkillsConfig(_Section):
    """Skills: evals, level-ups and idle quests; see configs/skills/_template.yaml."""

    enabled: bool = True  # skill evals and skill idle quests; false: the skeleton's placeholder idle quest
    folder: str | None = None  # skill YAML folder; None: the shipped configs/skills
    mix: list[str] = msgspec.field(
        default_factory=lambda: ["bin", "sy"]
    )  # "id" or "id:weight"; the first is the active skill (ACC)
    unlock_level: int = 2  # a later skill joins when the one before it reaches this level; 1: all at once
    eval_every: int = 50  # optimizer steps between eval rounds (stretched by max_eval_share)
    max_eval_share: float = 0.1  # evals may take at most this share of training time; 0 disables the stretch
    eval_next_level: bool = True  # also score the next level's frozen set (a preview)
    eval_batch_size: int = 64  # prompts per batched generation
    corrections: bool = True  # wrong probe items become a high-priority correction quest
    eval_on: Literal["local", "oracle"] = "local"  # oracle: an oracle generates the answers (the trainer grades)
    eval_oracle: str = ""  # which oracle node in the host registry; "": oracle.node, else the first listed
    eval_oracle_timeout_s: float = 300.0  # an oracle round slower than this falls back to a local eval

    def __post_init__(self) -> None:
        if self.eval_every < 1 or self.eval_batch_size < 1:
            raise ValueError("`eval_every` and `eval_batch_size` must be at least 1")
        if self.eval_oracle_timeout_s <= 0:
            raise ValueError("`eval_oracle_timeout_s` must be positive")
        if self.unlock_level < 1:
            raise ValueError("`unlock_level` must be at least 1 (1: every skill in the mix trains from the start)")
        if not 0.0 <= self.max_eval_share < 1.0:
            raise ValueError("`max_eval_share` must be in [0, 1)")
        for entry in self.mix:
            skill, _, weight = entry.partition(":")
            try:
                ok = bool(skill) and (not weight or float(weight) >= 0)
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"`mix` entries are `id` or `id:weight` (weight >= 0), not {entry!r}")

    def weights(self) -> dict[str, float]:
        """The mix as {skill id: weight}, in the written order."""
        return {e.partition(":")[0]: float(e.partition(":")[2] or 1.0) for e in self.mix}


class HttpConfig(_Section):
    """The oracle's OpenAI-compatible HTTP front (realm/oracle/http.py)."""

    bind: str = ""  # host:port to serve on, e.g. 127.0.0.1:8000; "" keeps it off
    token: str = ""  # the bearer token clients must send; required for a bind beyond loopback

    def __post_init__(self) -> None:
        if not self.bind:
            return
        host, colon, port = self.bind.rpartition(":")
        if not colon or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"`bind` is host:port, e.g. 127.0.0.1:8000, not {self.bind!r}")
        if not self.token and not _loopback_host(host):
            raise ValueError(f"`token` is required to serve beyond loopback ({self.bind}): set a long random one")


def _loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OracleConfig(_Section):
    node: str = "local"  # this oracle's name in the host registry
    pub: str = "auto"  # auto: an ipc socket in {home}/run; or e.g. tcp://0.0.0.0:5557
    control: str = "auto"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    threads: AtLeast0 = 0  # torch CPU threads; 0 keeps torch's choice
    load_on_start: str = "latest"  # a ledger reference to serve at start ("" for none)
    max_batch: int = 8  # sessions decoded together in one batched step
    max_new_tokens: int = 2048  # the most tokens one request may ask for (a BIN L30 eval answer needs ~1,000)
    max_prompt_tokens: int = 1024  # longer prompts are refused
    max_prompts: int = 512  # prompts (or chats) in one generate request
    max_request_tokens: int = 262144  # one generate request's prompt tokens plus max_new_tokens per prompt
    guest_models: int = 1  # checkpoints kept loaded beside the served one for `chat --checkpoint`
    telemetry_s: float = 1.0  # seconds between telemetry events (tokens/s, queue, GPU)
    cache_dir: str = "auto"  # fetched checkpoints; auto: {home}/oracle-cache
    cache_limit_mb: int = 8192  # the cache's size limit; least recently used checkpoints go first
    chunk_bytes: int = 1048576  # transfer chunk size
    credit: int = 8  # transfer chunks in flight
    auto_promote: bool = False  # the trainer sends each new champion to the oracle
    backend: Literal["native", "vllm"] = "native"  # vllm: vLLM's engine decodes (optional; needs vLLM and CUDA)
    vllm_memory_share: float = 0.4  # with vllm: GPU memory share of each loaded checkpoint's engine
    http: HttpConfig = HttpConfig()  # OpenAI-compatible /v1/chat/completions and /v1/models; off by default

    def __post_init__(self) -> None:
        _check_device("device", self.device)
        if not 0.0 < self.vllm_memory_share <= 1.0:
            raise ValueError("`vllm_memory_share` must be in (0, 1]")
        for key in (
            "max_batch",
            "max_new_tokens",
            "max_prompt_tokens",
            "max_prompts",
            "max_request_tokens",
            "cache_limit_mb",
            "chunk_bytes",
            "credit",
        ):
            if getattr(self, key) < 1:
                raise ValueError(f"`{key}` must be at least 1")
        if self.guest_models < 0:
            raise ValueError("`guest_models` must be at least 0")
        if self.telemetry_s <= 0:
            raise ValueError("`telemetry_s` must be positive")


class ChampionConfig(_Section):
    """score = skill_weight x suite accuracy - loss_weight x suite loss (realm/vault/champion.py)."""

    skill_weight: NonNegative = 1.0  # weight of the suite accuracy (0..1: the skills' frozen items answered right)
    loss_weight: NonNegative = 1.0  # weight of the suite loss (subtracted: lower is better)
    margin: NonNegative = 0.02  # oracle.auto_promote sends a new champion only when it beats the served one by this


class SuiteConfig(_Section):
    """The evaluation suite every checkpoint is scored on (trainer/suite.py)."""

    skill_levels: int = 5  # the skills' frozen eval items of levels 1..N join the suite (the first hour's levels)

    def __post_init__(self) -> None:
        if self.skill_levels < 1:
            raise ValueError("`skill_levels` must be at least 1")


class SecurityConfig(_Section):
    insecure: bool = False  # allow listening beyond loopback without CURVE (a trusted network only)
    keys_dir: str = "auto"  # CURVE key pairs from `realm keys init`; auto: {home}/keys
    hosts: str = "auto"  # the host registry; auto: {home}/hosts.yaml, else configs/hosts.yaml


class TuiConfig(_Section):
    keys: dict[str, str] = {}  # binding id -> keys, e.g. {battle.pause: "p,space"}; `realm tui --keys` lists the ids
    chat_max_new_tokens: int = 256  # the longest answer the Oracle screen asks for (the oracle caps it at its own max)
    away_after_s: float = 600.0  # "while you were away" only after this long without the TUI (and DIO trained)
    bin_glyphs: str = "ascii"  # BIN's ⓪ ① on screen: ascii draws 0 1 (display only; training data keeps them)
    oracle_follow: str = "off"  # latest | champion: ask the oracle to load each new one (ctrl+f on the Oracle)

    def __post_init__(self) -> None:
        if self.bin_glyphs not in ("circled", "ascii"):
            raise ValueError(f"`bin_glyphs` must be circled or ascii, not {self.bin_glyphs!r}")
        if self.oracle_follow not in ("latest", "champion", "off"):
            raise ValueError(f"`oracle_follow` must be latest, champion or off, not {self.oracle_follow!r}")
        if not math.isfinite(self.away_after_s) or self.away_after_s < 0:
            raise ValueError("`away_after_s` must be a finite number of seconds, at least 0")
        if self.chat_max_new_tokens < 1:
            raise ValueError("`chat_max_new_tokens` must be at least 1")


class RealmConfig(_Section):
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    idle: IdleConfig = IdleConfig()
    game: GameConfig = GameConfig()
    bus: BusConfig = BusConfig()
    vault: VaultConfig = VaultConfig()
    quests: QuestsConfig = QuestsConfig()
    skills: SkillsConfig = SkillsConfig()
    oracle: OracleConfig = OracleConfig()
    champion: ChampionConfig = ChampionConfig()
    suite: SuiteConfig = SuiteConfig()
    security: SecurityConfig = SecurityConfig()
    tui: TuiConfig = TuiConfig()


PROFILES = shipped("configs/profiles")


def profile_of(model: ModelConfig) -> str:
    """The profile a model's settings start from: ``model.profile``, or chosen by the model's name."""
    if model.profile != "auto":
        return model.profile
    if model.name.startswith("builtin:dio-nano"):
        return "dio-nano"
    if model.name.rstrip("/").rsplit("/", 1)[-1].lower().startswith("qwen3-0.6b"):
        return "qwen3-0.6b"
    return "generic"


def known_profiles() -> list[str]:
    return sorted(path.stem for path in PROFILES.glob("*.yaml"))


def _profiled(raw: object) -> object:
    """The user's settings over their model's profile (key by key), over the defaults."""
    if not isinstance(raw, dict):
        return raw  # config_from says what is wrong with it
    return _merged(profile_settings(raw), raw)


def profile_settings(raw: dict) -> dict:
    """The settings of the profile that the user's settings ``raw`` choose (``{}`` when unclear)."""
    model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    try:
        chosen = profile_of(ModelConfig(name=str(model.get("name", ModelConfig().name)),
                                        profile=str(model.get("profile", "auto"))))  # fmt: skip
    except (TypeError, ValueError):
        return {}
    path = PROFILES / f"{chosen}.yaml"
    if not path.is_file():
        raise ConfigError(f"model.profile: no profile {chosen!r}; known: {', '.join(known_profiles())}")
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}  # noqa: S506 - SafeLoader


def _merged(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = (
            _merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        )
    return merged


def read_yaml(path: Path, kind: str) -> Any:
    """The YAML document in ``path`` (None when empty). A missing file raises FileNotFoundError for
    the caller to judge; an unreadable or malformed one is one ConfigError line naming file and place."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {kind}: {exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None


def load_config(path: str | os.PathLike | None) -> RealmConfig:
    """Load ``path`` over its model's profile and the defaults; ``None`` gives DIO-nano's."""
    if path is None:
        return config_from({})
    path = Path(path)
    try:
        raw = read_yaml(path, "config file")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    if raw is None:
        raw = {}
    try:
        return config_from(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def config_from(raw: object) -> RealmConfig:
    """YAML data over its model's profile as a ``RealmConfig``, or ``ConfigError`` naming the
    dotted key and the rule."""
    try:
        config = msgspec.convert(_profiled(raw), RealmConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(exc)) from None
    _check_finite(config)
    return config


def _check_finite(config: RealmConfig) -> None:
    """YAML's .inf and .nan are floats to msgspec, and pass a check like ``lr > 0``; no setting
    of the realm means either (an infinite learning rate destroys the weights)."""
    for section in msgspec.structs.fields(RealmConfig):
        values = getattr(config, section.name)
        for field in msgspec.structs.fields(values):
            value = getattr(values, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{section.name}.{field.name}: must be a finite number, not {value}")


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


_ENUM = re.compile(r"^Invalid enum value (?P<value>.+)$")


def _choices(key: str) -> tuple[str, ...]:
    """The values a Literal setting takes (``train.schedule``: constant, cosine); () for any other key."""
    section, _, name = key.rpartition(".")
    struct = _section_type(section)
    field = next((f for f in msgspec.structs.fields(struct) if f.name == name), None) if struct else None
    if field is None or typing.get_origin(field.type) is not Literal:
        return ()
    return tuple(str(choice) for choice in typing.get_args(field.type))


_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "str": "text",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}
_WRONG_TYPE = re.compile(r"Expected `(?P<want>[^`]+)`, got `(?P<got>\w+)`")


def wrong_type_in_words(what: str) -> str | None:
    """A type mismatch as a YAML user reads it: ``must be a number, not text``; None if it is not one."""
    m = _WRONG_TYPE.fullmatch(what)
    if m is None:
        return None
    wants = " or ".join(_KINDS.get(w.strip(), w.strip()) for w in m["want"].split("|"))
    return f"must be {wants}, not {_KINDS.get(m['got'], m['got'])}"


def _explain(exc: msgspec.ValidationError) -> str:
    # msgspec says e.g. "Expected `int`, got `str` - at `$.train.batch_size`"; the YAML user
    # thinks in dotted keys and YAML words, so say "train.batch_size: must be a whole number, not text".
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
    enum = _ENUM.match(what)
    choices = _choices(key) if enum else ()
    if choices:
        return f"{key}: must be {', '.join(choices[:-1])} or {choices[-1]}, not {enum['value']}"
    rule = _FIELD_RULE.match(what)
    if rule:  # a __post_init__ constraint: "`batch_size` must be at least 1" at `$.train`
        return f"{key + '.' if key else ''}{rule['field']}: {rule['rule']}"
    words = wrong_type_in_words(what)
    if key:
        return f"{key}: {words or what[0].lower() + what[1:]}"
    if words and what.startswith("Expected `object`"):
        return f"(top level): {words.replace('a mapping', 'a mapping of sections', 1)}"
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
