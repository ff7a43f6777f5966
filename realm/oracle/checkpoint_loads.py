"""Checkpoint loads for the oracle: they run on one loader thread while the current model keeps serving."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from realm.bus import Publisher
from realm.oracle.model_store import ModelStore
from realm.protocol import (
    Ack,
    ErrorReply,
    Loaded,
    OracleLoaded,
    OracleLoadFailed,
    OracleLoading,
    OracleServing,
    OracleUnloaded,
)

log = logging.getLogger("realm.oracle")


class Loader:
    """One daemon thread that runs the loads in order. (A ThreadPoolExecutor's thread is joined
    at interpreter exit: a load still fetching from a trainer that had gone kept a stopped oracle
    alive until the fetch gave up.)"""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="realm-oracle-load", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[..., None], *args) -> None:
        self._jobs.put((job, args))

    def shutdown(self) -> None:
        """Run no more jobs (one in flight is left to the process's exit)."""
        self._closed.set()
        self._jobs.put(None)

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None and not self._closed.is_set():
            job, args = item
            try:
                job(*args)
            except Exception:  # each job answers its own errors; this is a bug, logged, not a dead loader
                log.exception("an oracle load failed unexpectedly")


class CheckpointLoads:
    """Loads and unloads of the served model, announced on the oracle's ``Publisher``; ``send``
    answers a requester from the loader thread."""

    def __init__(
        self,
        store: ModelStore,
        publisher: Publisher,
        loader: Loader,
        send: Callable[[bytes, object], None],
        load_on_start: str,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self._loader = loader
        self._send = send
        self._load_on_start = load_on_start
        self._unloaded = False

    def retry_start_load(self) -> None:
        """While nothing is served (e.g. a fresh vault), try the start-up load again; not after an unload."""
        if self._load_on_start and self.store.serving is None and not self._unloaded:
            self.schedule(self._load_on_start, quiet=True)

    def unload(self) -> Ack:
        self._unloaded = True  # an explicit unload: no automatic start-up load after it
        old = self.store.unload()
        if old is None:
            return Ack(message="nothing was loaded")
        self.publisher.emit(OracleUnloaded())
        return Ack(message=f"unloaded {old.name}; requests in flight finish on it")

    def schedule(self, ref: str, quiet: bool = False, notify: bytes | None = None) -> None:
        """Load on the loader thread; ``notify`` (a client identity) gets a second reply when done."""
        asked = time.perf_counter()
        self._loader.submit(self._load, ref, asked, quiet, notify)

    def _load(self, ref: str, asked: float, quiet: bool, notify: bytes | None = None) -> None:
        """``quiet``: the start-up load and its retries, which only speak when something changes."""
        if quiet and self.store.serving is not None:
            return
        if not quiet:
            self.publisher.emit(OracleLoading(ref=ref))
        try:
            served, old = self.store.promote(ref)
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            if quiet and "vault is empty" in reason:
                reason = "nothing to serve yet: the vault is empty"
            if quiet and reason == self.publisher.state.oracle.last_error:
                return
            log.warning("could not load %s: %s", ref, reason)
            self.publisher.emit(OracleLoadFailed(ref=ref, reason=reason))
            if notify is not None:
                self._send(
                    notify, ErrorReply(message=f"could not load {ref}: {reason}; the previous model keeps serving")
                )
            return
        seconds = time.perf_counter() - asked
        serving = OracleServing(
            step=served.step, name=served.name, source=served.source, loaded_at=time.time(), load_seconds=seconds
        )
        log.info("serving %s (%s) %.2fs after the request", served.name, served.source, seconds)
        self.publisher.emit(OracleLoaded(serving=serving))
        if notify is not None:
            self._send(notify, Loaded(serving=serving))
