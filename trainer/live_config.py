"""The Armory on the trainer's side: the running config as fields, and live config changes.

A ``ConfigUpdateRequest`` names one dotted key and a YAML value. ``propose`` checks it
against the same msgspec rules as a config file, refuses keys that cannot change while the
trainer runs, and demands ``confirm`` for the critical keys of the seed's safety rules
(max_length; the model is read at start-up). An accepted change is applied by the training
thread between optimizer steps (``apply_to_engine``), never in the middle of one; it is saved
at once in ``HOME/overrides.yaml`` (realm/overrides.py), so a restart keeps it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from realm.config import ConfigError, RealmConfig
from realm.overrides import CRITICAL, SAFE, ArmoryRefused, flatten, overridden, propose, save_override, yaml_text
from realm.protocol import Ack, ConfigChanged, ConfigField, ConfigUpdateRequest, ErrorReply, Reply

log = logging.getLogger("realm.trainer")


def fields(config: RealmConfig, home: Path | None = None) -> tuple[ConfigField, ...]:
    """The config as the Armory's fields; those ``HOME/overrides.yaml`` sets are marked."""
    over = overridden(home) if home is not None else {}
    out = []
    for key, value in flatten(config).items():
        kind = "safe" if key in SAFE else "critical" if key in CRITICAL else "fixed"
        help_text = SAFE.get(key) or CRITICAL.get(key) or "set in the config file; read at start-up"
        out.append(ConfigField(key=key, value=yaml_text(value), kind=kind, help=help_text, overridden=key in over))
    return tuple(out)


def changed_keys(old: RealmConfig, new: RealmConfig) -> tuple[str, ...]:
    a, b = flatten(old), flatten(new)
    return tuple(key for key in b if a.get(key) != b[key])


def apply_to_engine(engine, new: RealmConfig) -> None:
    """Point the engine at ``new``; push lr, weight decay and the schedule into the optimizer and
    its scheduler, and a new batch size into the micro-batch and the memory estimate."""
    old = engine.config
    engine.config = new
    engine.use_optimizer_settings(new.train)
    if new.train.batch_size != old.train.batch_size:
        engine.use_batch_size(old.train, new.train)


class LiveConfig:
    """The running config. A request (the control thread) proposes a change; the training
    thread applies the accepted one between two optimizer steps, never in the middle of one."""

    def __init__(
        self,
        config: RealmConfig,
        wake: Callable[[], None],
        home: Path | None = None,
        refusal: Callable[[RealmConfig], str] = lambda config: "",
    ) -> None:
        self.config = config
        self._refusal = refusal  # why a proposed config cannot run here (memory), or ""
        self._home = home  # where an accepted change is saved (overrides.yaml), so a restart keeps it
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
            refused = self._refusal(new)
            if refused:
                return ErrorReply(message=f"{request.key}: refused: {refused}")
            self._pending = new
            saved = self._save(request.key, new)
        self._wake()
        value = dict((f.key, f.value) for f in fields(new))[request.key]
        return Ack(message=f"{request.key} = {value} accepted: applies before the next step{saved}")

    def _save(self, key: str, new: RealmConfig) -> str:
        if self._home is None:
            return ""
        try:
            path = save_override(self._home, key, new)
        except (OSError, ConfigError) as exc:
            log.warning("armory: %s not saved: %s", key, exc)
            return f"; NOT saved ({exc}): it lasts until the trainer stops"
        return f"; saved in {path.name}"

    def apply_pending(self, engine, lockstep, emit) -> tuple[str, ...]:
        """The training thread, between steps: the accepted change, into the engine and every
        rank; the keys it changed (the caller applies what lies beyond the engine: the skill mix)."""
        with self._lock:
            new, self._pending = self._pending, None
        if new is None:
            return ()
        changed = changed_keys(self.config, new)
        self.config = new
        apply_to_engine(engine, new)
        lockstep.send("config", new)
        if changed:
            log.info("armory: %s", ", ".join(changed))
            emit(ConfigChanged(config=fields(new, self._home), changed=changed))
        return changed
