"""The Armory on the trainer's side: the running config as fields, and live config changes.

A ``ConfigUpdateRequest`` names one dotted key and a YAML value. ``propose`` checks it
against the same msgspec rules as a config file, refuses keys that cannot change while the
trainer runs, and demands ``confirm`` for the critical keys of the seed's safety rules
(model name, max_length). An accepted change is applied by the training thread between
optimizer steps (``apply_to_engine``), never in the middle of one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import msgspec
import yaml

from realm.config import ConfigError, RealmConfig, _Loader, config_from
from realm.protocol import Ack, ConfigChanged, ConfigField, ConfigUpdateRequest, ErrorReply, Reply

log = logging.getLogger("realm.trainer")

# Keys the trainer can change between two steps, and what each does.
SAFE = {
    "train.lr": "AdamW learning rate (after warmup); applies from the next step",
    "train.weight_decay": "AdamW weight decay; applies from the next step",
    "train.max_grad_norm": "gradient clipping norm",
    "train.checkpoint_every": "save a checkpoint every N optimizer steps",
    "train.val_every": "run validation every N optimizer steps",
    "idle.enabled": "make a quest from the active skill when the queue is empty",
    "idle.examples": "examples in each idle quest",
}
# Keys the seed's safety rules protect: a change needs an explicit confirmation.
CRITICAL = {
    "train.max_length": "tokens per example; applies to the next quest's encoding",
    "model.name": "the model DIO is; a change needs a trainer restart",
    "model.tokenizer": "the tokenizer; a change needs a trainer restart",
}
NEEDS_RESTART = {"model.name", "model.tokenizer"}


class ArmoryRefused(ValueError):
    """A config change the trainer will not make; the message says why."""


def _flatten(config: RealmConfig) -> dict[str, object]:
    flat: dict[str, object] = {}
    for section, values in msgspec.to_builtins(config).items():
        for key, value in values.items():
            flat[f"{section}.{key}"] = value
    return flat


def yaml_text(value: object) -> str:
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def fields(config: RealmConfig) -> tuple[ConfigField, ...]:
    out = []
    for key, value in _flatten(config).items():
        kind = "safe" if key in SAFE else "critical" if key in CRITICAL else "fixed"
        help_text = SAFE.get(key) or CRITICAL.get(key) or "set in the config file; read at start-up"
        out.append(ConfigField(key=key, value=yaml_text(value), kind=kind, help=help_text))
    return tuple(out)


def propose(config: RealmConfig, key: str, value_text: str, confirm: bool) -> RealmConfig:
    """The config with ``key`` set to ``value_text``, or ``ArmoryRefused`` saying why not."""
    flat = _flatten(config)
    if key not in flat:
        raise ArmoryRefused(f"{key}: no such config key")
    if key not in SAFE and key not in CRITICAL:
        raise ArmoryRefused(f"{key}: cannot change while the trainer runs; set it in the config file and restart")
    if key in CRITICAL and not confirm:
        raise ArmoryRefused(f"{key} is a critical key (safety rule): the change needs an explicit confirmation")
    if key in NEEDS_RESTART:
        raise ArmoryRefused(
            f"{key}: confirmed, but the trainer cannot swap its model while running; "
            "set it in the config file and restart the trainer"
        )
    try:
        value = yaml.load(value_text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ArmoryRefused(f"{key}: {value_text!r} is not a YAML value ({exc})") from None
    section, name = key.split(".", 1)
    raw = msgspec.to_builtins(config)
    raw[section][name] = value
    try:
        return config_from(raw)
    except ConfigError as exc:
        raise ArmoryRefused(str(exc)) from None


def changed_keys(old: RealmConfig, new: RealmConfig) -> tuple[str, ...]:
    a, b = _flatten(old), _flatten(new)
    return tuple(key for key in b if a.get(key) != b[key])


def apply_to_engine(engine, new: RealmConfig) -> None:
    """Point the engine at ``new``; push lr and weight decay into the optimizer's groups."""
    engine.config = new
    engine.use_optimizer_settings(new.train)


class LiveConfig:
    """The running config. A request (the control thread) proposes a change; the training
    thread applies the accepted one between two optimizer steps, never in the middle of one."""

    def __init__(self, config: RealmConfig, wake: Callable[[], None]) -> None:
        self.config = config
        self._wake = wake  # an idle or paused loop applies the change at once
        self._lock = threading.Lock()
        self._pending: RealmConfig | None = None

    def propose(self, request: ConfigUpdateRequest) -> Reply:
        with self._lock:
            base = self._pending or self.config
            try:
                new = propose(base, request.key, request.value, request.confirm)
            except ArmoryRefused as exc:
                return ErrorReply(message=str(exc))
            self._pending = new
        self._wake()
        value = dict((f.key, f.value) for f in fields(new))[request.key]
        return Ack(message=f"{request.key} = {value} accepted: applies before the next step")

    def apply_pending(self, engine, lockstep, emit) -> None:
        """The training thread, between steps: the accepted change, into the engine and every rank."""
        with self._lock:
            new, self._pending = self._pending, None
        if new is None:
            return
        changed = changed_keys(self.config, new)
        self.config = new
        apply_to_engine(engine, new)
        lockstep.send("config", new)
        if changed:
            log.info("armory: %s", ", ".join(changed))
            emit(ConfigChanged(config=fields(new), changed=changed))
