"""The oracle's models: where a checkpoint comes from, loading it, and the atomic swap.

A checkpoint is named by a ledger reference, never by a path from the network. When this
machine holds the trainer's vault (the same ``realm_home``, or a shared disk mounted there) the
folder is loaded in place; otherwise it is fetched from the trainer into the oracle's cache.
"""

from __future__ import annotations

import collections
import logging
import threading
from pathlib import Path

from realm.config import ModelConfig, RealmConfig
from realm.errors import RealmError
from realm.home import Home
from realm.oracle.generation import Served
from realm.oracle.transfer import Fetcher
from realm.protocol import CheckpointInfo
from realm.vault import champion
from realm.vault.ledger import Ledger

log = logging.getLogger("realm.oracle")


class NotServing(RealmError):
    """No checkpoint is loaded."""


class ModelStore:
    def __init__(self, config: RealmConfig, home: Path, fetcher: Fetcher | None) -> None:
        self.config = config
        self.home = Home(home)
        self.fetcher = fetcher
        self.serving: Served | None = None
        self.guests: collections.OrderedDict[int, Served] = collections.OrderedDict()
        self._lock = threading.Lock()  # guards serving and guests
        self._load_lock = threading.Lock()  # one load at a time
        self.folders: dict[int, Path] = {}  # step -> folder, for pinning cached ones

    # ------------------------------------------------------------------ where

    def locate(self, ref: str) -> tuple[CheckpointInfo, Path, str]:
        """(ledger info, folder, source) for a reference; source is shared, cache or fetched."""
        if self.home.db.exists():
            ledger = Ledger(self.home.db)
            try:
                info, folder = champion.resolve(ledger, ref, self.config.champion)
            finally:
                ledger.close()
            return info, folder, "shared"
        if self.fetcher is None:
            raise champion.UnknownCheckpoint(f"no vault at {self.home.root} and no trainer to fetch {ref} from")
        manifest, folder, fetched = self.fetcher.fetch(ref, pinned=self.folders.values())
        return manifest.checkpoint, folder, "fetched" if fetched else "cache"

    # ------------------------------------------------------------------ loading

    def _load(self, info: CheckpointInfo, folder: Path, source: str) -> Served:
        from realm.model.loading import load_model
        from realm.vault.merge import plain_folder

        oracle = self.config.oracle
        folder = plain_folder(folder)  # adapters are served merged into their base
        if oracle.backend == "vllm":
            from realm.oracle.vllm_backend import load_served

            served = load_served(self.config, folder, step=info.step, name=info.name, source=source)
        else:
            model_cfg = ModelConfig(name=self.config.model.name, device=oracle.device, dtype=oracle.dtype)
            model, tokenizer = load_model(model_cfg, checkpoint=folder)
            served = Served.wrap(model, tokenizer, step=info.step, name=info.name, source=source)
        self.folders[info.step] = folder
        return served

    def promote(self, ref: str) -> tuple[Served, Served | None]:
        """Load ``ref`` while the current model serves, then swap; (new, old)."""
        with self._load_lock:
            info, folder, source = self.locate(ref)
            with self._lock:
                current = self.serving
                guest = self.guests.pop(info.step, None)
            if current is not None and current.step == info.step:
                return current, current
            served = guest or self._load(info, folder, source)
            with self._lock:
                old, self.serving = self.serving, served
            if old is not None:
                self.folders.pop(old.step, None)
            return served, old

    def unload(self) -> Served | None:
        with self._lock:
            old, self.serving = self.serving, None
        return old

    def for_chat(self, ref: str) -> Served:
        """The model a chat runs on: the served one, or ``ref`` loaded as a guest."""
        if not ref:
            with self._lock:
                if self.serving is None:
                    raise NotServing("no checkpoint is loaded: promote one first (`realm vault promote STEP`)")
                return self.serving
        with self._load_lock:
            info, folder, source = self.locate(ref)
            with self._lock:
                if self.serving is not None and self.serving.step == info.step:
                    return self.serving
                if info.step in self.guests:
                    self.guests.move_to_end(info.step)
                    return self.guests[info.step]
            served = self._load(info, folder, source)
            with self._lock:
                self.guests[info.step] = served
                while len(self.guests) > self.config.oracle.guest_models:
                    step, _ = self.guests.popitem(last=False)
                    self.folders.pop(step, None)
            return served
