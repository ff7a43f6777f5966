"""``realm oracle``: the inference worker.

Threads:

* the I/O thread (``run``) owns the ROUTER control socket: it answers requests, forwards what
  the other threads want to send (through an inproc PULL socket), sends heartbeats and
  telemetry;
* the generation thread runs the ``Batcher`` (every active chat advances one token a step);
* a loader thread loads checkpoints (promote, or a chat naming another checkpoint) while the
  current model keeps serving.

Events (loaded checkpoint, load failures, tokens/s, queue depth, GPU use) go out through a
``Publisher`` on the oracle's own PUB socket, applied to an ``OracleState`` inside a
``RealmState`` by the one reducer, so ``StateMirror`` can follow an oracle too.

The worker holds the lifecycle and wires the owners together: ``ControlLoop`` and ``Outbox``
(control.py), ``RequestDispatcher`` (dispatch.py), ``ChatRequests`` (chats.py), and
``CheckpointLoads`` on the ``Loader`` thread (loading.py).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

import zmq

from realm.bus import Publisher, close_bound, prepare_endpoint
from realm.config import RealmConfig, oracle_endpoints
from realm.errors import RealmError
from realm.home import Home, hold_lock
from realm.oracle.chats import ChatRequests
from realm.oracle.checkpoint_loads import CheckpointLoads, Loader
from realm.oracle.control import ControlLoop, Outbox
from realm.oracle.dispatch import RequestDispatcher
from realm.oracle.generation import Batcher
from realm.oracle.model_store import ModelStore
from realm.oracle.transfer import CheckpointCache, Fetcher
from realm.protocol import PROTOCOL_VERSION, OracleInfo, OracleStarted, RealmState

log = logging.getLogger("realm.oracle")


def _batcher(oracle) -> Batcher:
    """The decoding loop of ``oracle.backend``; vllm that is not installed stops the start here."""
    if oracle.backend == "vllm":
        from realm.oracle.vllm_backend import VLLMBatcher, require_vllm

        require_vllm()
        return VLLMBatcher(oracle.max_batch)
    return Batcher(oracle.max_batch)


class OracleWorker:
    def __init__(self, config: RealmConfig, home: Path) -> None:
        from realm.hosts import connect_trainer

        self.config = config
        self.home = home
        self.run_id = uuid.uuid4().hex[:12]
        self.pub_endpoint, self.control_endpoint = oracle_endpoints(config, home)
        oracle = config.oracle
        cache_root = Path(oracle.cache_dir) if oracle.cache_dir != "auto" else home / "oracle-cache"
        _, trainer_control, trainer_setup = connect_trainer(config, home)
        self.fetcher = Fetcher(
            trainer_control,
            CheckpointCache(cache_root, oracle.cache_limit_mb * 2**20),
            chunk_bytes=min(oracle.chunk_bytes, config.bus.max_message_bytes - 4096),
            credit=oracle.credit,
            timeout_s=max(config.bus.timeout_s, 2.0),
            retries=config.bus.retries,
            socket_setup=trainer_setup,
        )
        self.store = ModelStore(config, home, self.fetcher)
        self.batcher = _batcher(oracle)
        self.stop_event = threading.Event()
        self.publisher: Publisher | None = None
        self.ready = threading.Event()
        self.http = None  # realm.oracle.http.HttpServer while oracle.http.bind serves
        self._loader = Loader()
        self._outbox = Outbox(f"inproc://oracle-out-{self.run_id}")
        self._control: ControlLoop | None = None  # while serving

    @property
    def bad_requests(self) -> int:
        return self._control.bad_requests if self._control else 0

    @property
    def abandoned(self) -> int:
        """Chats cancelled because their requester went away."""
        return self._control.abandoned if self._control else 0

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> int:
        """Serve until stopped, holding the data root's oracle lock (before any socket is bound)."""
        lock = hold_lock(Home(self.home).oracle_lock, "oracle")
        try:
            return self._serve_until_stopped()
        finally:
            lock.close()

    def _serve_until_stopped(self) -> int:
        oracle = self.config.oracle
        if oracle.threads:
            import torch

            torch.set_num_threads(oracle.threads)
        from realm.hosts import serve_setup

        secure = serve_setup(self.config, self.home, [self.pub_endpoint, self.control_endpoint])
        self.publisher = Publisher(self.pub_endpoint, self.run_id, RealmState(run=self.run_id), socket_setup=secure)
        router = zmq.Context.instance().socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.MAXMSGSIZE, self.config.bus.max_message_bytes + 1024)
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a send to a gone client fails: its chat is cancelled
        if secure:
            secure(router)
        prepare_endpoint(self.control_endpoint)
        try:
            router.bind(self.control_endpoint)
        except zmq.ZMQError as exc:
            router.close(linger=0)
            self.publisher.close()
            raise OSError(f"cannot bind {self.control_endpoint}: {exc}") from None
        outbox = self._outbox.bind()
        loads = CheckpointLoads(self.store, self.publisher, self._loader, self._outbox.send, oracle.load_on_start)
        chats = ChatRequests(self.config, self.store, self.batcher, self._loader, self._outbox.send)
        dispatcher = RequestDispatcher(self.run_id, self.publisher, loads, chats, self.batcher)
        self._control = control = ControlLoop(self.config, self.publisher, dispatcher, loads, self.batcher)
        generation = threading.Thread(
            target=self.batcher.run, args=(self.stop_event,), name="realm-generate", daemon=True
        )
        generation.start()
        self._install_signal_handlers()
        self.publisher.emit(OracleStarted(info=self._info()))
        if oracle.load_on_start:
            loads.schedule(oracle.load_on_start, quiet=True)
        log.info("oracle up: control at %s, events at %s", self.control_endpoint, self.pub_endpoint)
        http = None
        try:
            http = self._start_http()
            self.ready.set()
            control.serve(router, outbox, self.stop_event)
        finally:
            if http:
                http.stop()
            self.stop_event.set()
            self.batcher.wake()
            generation.join(timeout=10)
            control.drain(router, outbox)
            self._loader.shutdown()
            close_bound(router, self.control_endpoint)
            outbox.close(linger=0)
            self._outbox.close_pushes()
            self.publisher.close()
            log.info("oracle stopped")
        return 0

    def stop(self) -> None:
        self.stop_event.set()

    def _start_http(self):
        """The OpenAI-compatible front, when ``oracle.http.bind`` asks for it (its packages: ``.[http]``)."""
        if not self.config.oracle.http.bind:
            return None
        try:
            from realm.oracle.http import HttpServer
        except ImportError as exc:
            raise RealmError(
                f"oracle.http.bind is set, but its packages are missing ({exc.name}): "
                "pip install 'realm-of-training[http]'"
            ) from None
        from realm.hosts import connect_oracle

        setup = connect_oracle(self.config, self.home, self.config.oracle.node)[2]
        self.http = HttpServer(self.config, self.home, self.control_endpoint, setup).start()
        return self.http

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop_event.set())

    def _info(self) -> OracleInfo:
        from realm.model.loading import resolve_device

        return OracleInfo(
            node=self.config.oracle.node or socket.gethostname(),
            device=str(resolve_device(self.config.oracle.device)),
            pid=os.getpid(),
            started=time.time(),
            version=PROTOCOL_VERSION,
        )
