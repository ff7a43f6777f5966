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
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import zmq

from realm import protocol
from realm.bus import Publisher, close_bound, prepare_endpoint
from realm.config import RealmConfig, oracle_endpoints
from realm.errors import RealmError
from realm.home import Home, hold_lock
from realm.oracle.generation import Batcher, SamplingError, Served, Session, check_sampling
from realm.oracle.gpu import gpu_stats
from realm.oracle.store import ModelStore, NotServing
from realm.oracle.transfer import CheckpointCache, Fetcher
from realm.protocol import (
    PROTOCOL_VERSION,
    Ack,
    CancelRequest,
    ChatDelta,
    ChatEnd,
    ChatRequest,
    ErrorReply,
    GenerateRequest,
    GenerateResult,
    Loaded,
    LoadRequest,
    OracleInfo,
    OracleLoaded,
    OracleLoadFailed,
    OracleLoading,
    OracleServing,
    OracleStarted,
    OracleTelemetry,
    OracleUnloaded,
    PingRequest,
    Pong,
    PromoteRequest,
    ProtocolError,
    RealmState,
    SnapshotRequest,
    UnloadRequest,
)

log = logging.getLogger("realm.oracle")

ROLES = ("system", "user", "assistant")


def _batcher(oracle) -> Batcher:
    """The decoding loop of ``oracle.backend``; vllm that is not installed stops the start here."""
    if oracle.backend == "vllm":
        from realm.oracle.vllm_backend import VLLMBatcher, require_vllm

        require_vllm()
        return VLLMBatcher(oracle.max_batch)
    return Batcher(oracle.max_batch)


RETRY_START_LOAD_S = 5.0  # while nothing is served, how often the start-up load is tried again


class _Loader:
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
        self.bad_requests = 0
        self._unloaded = False
        self.abandoned = 0  # chats cancelled because their requester went away
        self.ready = threading.Event()
        self.http = None  # realm.oracle.http.HttpServer while oracle.http.bind serves
        self._loader = _Loader()
        self._outbox = f"inproc://oracle-out-{self.run_id}"
        self._local = threading.local()
        self._context = zmq.Context.instance()
        self._pushes: list[zmq.Socket] = []
        self._pushes_lock = threading.Lock()

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
        router = self._context.socket(zmq.ROUTER)
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
        outbox = self._context.socket(zmq.PULL)
        outbox.bind(self._outbox)
        generation = threading.Thread(
            target=self.batcher.run, args=(self.stop_event,), name="realm-generate", daemon=True
        )
        generation.start()
        self._install_signal_handlers()
        self.publisher.emit(OracleStarted(info=self._info()))
        if oracle.load_on_start:
            self._schedule_load(oracle.load_on_start, quiet=True)
        log.info("oracle up: control at %s, events at %s", self.control_endpoint, self.pub_endpoint)
        http = None
        try:
            http = self._start_http()
            self.ready.set()
            self._serve(router, outbox)
        finally:
            if http:
                http.stop()
            self.stop_event.set()
            self.batcher.wake()
            generation.join(timeout=10)
            self._drain(router, outbox)
            self._loader.shutdown()
            close_bound(router, self.control_endpoint)
            outbox.close(linger=0)
            with self._pushes_lock:
                for push in self._pushes:
                    push.close(linger=0)
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

    # ------------------------------------------------------------------ the I/O loop

    def _serve(self, router: zmq.Socket, outbox: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(outbox, zmq.POLLIN)
        heartbeat_s = self.config.bus.heartbeat_s
        telemetry_s = self.config.oracle.telemetry_s
        next_telemetry = 0.0
        next_retry = time.time() + RETRY_START_LOAD_S
        while not self.stop_event.is_set():
            ready = dict(poller.poll(50))
            if outbox in ready:
                self._drain(router, outbox)
            if router in ready:
                for _ in range(100):  # a bounded batch so the outbox is never starved
                    try:
                        frames = router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._answer(router, frames)
            now = time.time()
            if now >= next_telemetry:
                self._telemetry()
                next_telemetry = now + telemetry_s
            if now >= next_retry:  # nothing served yet (e.g. a fresh vault): try the start-up load again
                next_retry = now + RETRY_START_LOAD_S
                if self.config.oracle.load_on_start and self.store.serving is None and not self._unloaded:
                    self._schedule_load(self.config.oracle.load_on_start, quiet=True)
            if now - self.publisher.last_sent >= heartbeat_s:
                self.publisher.heartbeat()

    def _drain(self, router: zmq.Socket, outbox: zmq.Socket) -> None:
        while True:
            try:
                identity, frame = outbox.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                router.send_multipart([identity, b"", frame], zmq.NOBLOCK)
            except zmq.ZMQError:  # the requester went away (or stopped reading): stop generating for it
                self._abandon(frame)

    def _abandon(self, frame: bytes) -> None:
        try:
            reply = protocol.decode_oracle_reply(frame)
        except ProtocolError:
            return
        if isinstance(reply, ChatDelta) and self.batcher.cancel(reply.id.encode()):
            self.abandoned += 1
            log.info("cancelled chat %s: its requester is gone", reply.id)

    def _telemetry(self) -> None:
        active, queued = self.batcher.counts()
        gpus, note = gpu_stats()
        self.publisher.emit(
            OracleTelemetry(
                tokens_per_s=self.batcher.tokens_per_s(),
                active=active,
                queued=queued,
                served=self.batcher.served_requests,
                gpus=gpus,
                gpu_note=note,
            )
        )

    def _answer(self, router: zmq.Socket, frames: list[bytes]) -> None:
        if len(frames) < 2:
            self.bad_requests += 1
            return
        identity, payload = frames[0], frames[-1]
        try:
            request = protocol.decode_oracle_request(payload, self.config.bus.max_message_bytes)
            reply = self._handle(identity, request)
        except ProtocolError as exc:
            self.bad_requests += 1
            log.warning("rejected a request: %s", exc)
            reply = ErrorReply(message=str(exc))
        except Exception as exc:  # a handler bug must not take the oracle down
            log.exception("request handler failed")
            reply = ErrorReply(message=f"{type(exc).__name__}: {exc}")
        if reply is not None:
            try:
                router.send_multipart([identity, b"", protocol.encode(reply)], zmq.NOBLOCK)
            except zmq.ZMQError:  # gone already, or not reading: nothing to answer
                pass

    def _handle(self, identity: bytes, request):
        """The reply to send now, or None when the answer comes later (streams, batches)."""
        if isinstance(request, SnapshotRequest):
            return self.publisher.snapshot()
        if isinstance(request, PingRequest):
            return Pong(role="oracle", run=self.run_id, version=PROTOCOL_VERSION, time=time.time())
        if isinstance(request, (LoadRequest, PromoteRequest)):
            self._schedule_load(request.ref, notify=identity)
            return Ack(message=f"loading {request.ref}; the current model serves until it is ready")
        if isinstance(request, UnloadRequest):
            self._unloaded = True  # an explicit unload: no automatic start-up load after it
            old = self.store.unload()
            if old is None:
                return Ack(message="nothing was loaded")
            self.publisher.emit(OracleUnloaded())
            return Ack(message=f"unloaded {old.name}; requests in flight finish on it")
        if isinstance(request, ChatRequest):
            return self._chat(identity, request)
        if isinstance(request, GenerateRequest):
            return self._generate(identity, request)
        if isinstance(request, CancelRequest):
            if self.batcher.cancel(request.id.encode()):
                return Ack(message=f"cancelling {request.id}")
            return ErrorReply(message=f"no running request with id {request.id!r}")
        raise ValueError(f"unsupported request {type(request).__name__}")

    # ------------------------------------------------------------------ loading

    def _schedule_load(self, ref: str, quiet: bool = False, notify: bytes | None = None) -> None:
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

    # ------------------------------------------------------------------ chat and batch generation

    def _chat(self, identity: bytes, request: ChatRequest):
        check = self._check_chat(request.messages, request.sampling)
        if check:
            return ErrorReply(message=check)
        return self._on_model(identity, request, self._submit_chat)

    def _on_model(self, identity: bytes, request, submit):
        """``submit(identity, request, served)`` on the served model now or, when the request names
        a checkpoint, on the loader thread (it may have to load it first)."""
        if request.checkpoint:
            self._loader.submit(self._on_guest, identity, request, submit)
            return None
        try:
            served = self.store.for_chat("")
        except NotServing as exc:
            return ErrorReply(message=str(exc))
        return submit(identity, request, served)

    def _on_guest(self, identity: bytes, request, submit) -> None:
        try:
            served = self.store.for_chat(request.checkpoint)
        except Exception as exc:
            self._send(identity, ErrorReply(message=f"cannot load {request.checkpoint}: {exc}"))
            return
        reply = submit(identity, request, served)
        if reply is not None:
            self._send(identity, reply)

    def _submit_chat(self, identity: bytes, request: ChatRequest, served: Served):
        prompt = served.prompt_ids([dict(m) for m in request.messages])
        if len(prompt) > self.config.oracle.max_prompt_tokens:
            return ErrorReply(
                message=f"the prompt is {len(prompt)} tokens; this oracle takes at most "
                f"{self.config.oracle.max_prompt_tokens} (oracle.max_prompt_tokens)"
            )

        def on_delta(session: Session, text: str) -> None:
            self._send(identity, ChatDelta(id=request.id, text=text, tokens=len(session.generated)))

        def on_end(session: Session, reason: str, message: str) -> None:
            seconds = time.perf_counter() - session.started
            end = ChatEnd(
                id=request.id,
                reason=reason,
                tokens=len(session.generated),
                seconds=seconds,
                checkpoint=served.name,
                message=message,
                prompt_tokens=len(session.prompt_ids),
            )
            self._send(identity, end)

        session = Session(request.id.encode(), served, prompt, request.sampling, on_delta, on_end)
        try:
            self.batcher.submit(session)
        except ValueError as exc:
            return ErrorReply(message=str(exc))
        return None

    def _generate(self, identity: bytes, request: GenerateRequest):
        check = self._check_generate(request)
        if check:
            return ErrorReply(message=check)
        return self._on_model(identity, request, self._submit_generate)

    def _submit_generate(self, identity: bytes, request: GenerateRequest, served: Served):
        if request.chats:  # the skill-eval form: exactly what the trainer's own eval generates
            prompts = [served.eval_prompt_ids([dict(m) for m in chat]) for chat in request.chats]
            stops, text_of = served.eval_stop_ids, served.eval_text
        else:
            prompts = [served.prompt_ids([{"role": "user", "content": text}]) for text in request.prompts]
            stops, text_of = None, lambda session: session.text
        too_long = [i for i, ids in enumerate(prompts) if len(ids) > self.config.oracle.max_prompt_tokens]
        if too_long:
            return ErrorReply(
                message=f"prompt {too_long[0]} exceeds oracle.max_prompt_tokens ({self.config.oracle.max_prompt_tokens})"
            )
        tokens = sum(len(ids) for ids in prompts) + len(prompts) * request.sampling.max_new_tokens
        if tokens > self.config.oracle.max_request_tokens:
            return ErrorReply(
                message=f"the request needs {tokens} tokens (its prompts plus max_new_tokens for each); this oracle "
                f"takes at most {self.config.oracle.max_request_tokens} (oracle.max_request_tokens): send fewer "
                "prompts or ask for fewer new tokens"
            )
        texts: list[str | None] = [None] * len(prompts)
        failures: list[str] = []
        lock = threading.Lock()

        def ender(index: int):
            def on_end(session: Session, reason: str, message: str) -> None:
                with lock:
                    texts[index] = text_of(session) if reason != "error" else ""
                    if reason in ("error", "shutdown"):
                        failures.append(f"prompt {index}: {message or reason}")
                    done = all(t is not None for t in texts)
                if not done:
                    return
                if failures:  # a half-answered batch would grade as wrong answers: say it failed
                    self._send(
                        identity, ErrorReply(message=f"generation failed for {len(failures)} prompt(s): {failures[0]}")
                    )
                else:
                    self._send(identity, GenerateResult(id=request.id, texts=tuple(texts), checkpoint=served.name))

            return on_end

        for index, ids in enumerate(prompts):
            key = f"{request.id}/{index}".encode()
            session = Session(key, served, ids, request.sampling, lambda s, t: None, ender(index), stop_ids=stops)
            self.batcher.submit(session)
        return None

    def _check_generate(self, request: GenerateRequest) -> str:
        if bool(request.prompts) == bool(request.chats):
            return "a generate request needs prompts or chats (one of the two, not both)"
        count = len(request.prompts) + len(request.chats)
        if count > self.config.oracle.max_prompts:
            return (
                f"the request holds {count} prompts; this oracle takes at most {self.config.oracle.max_prompts} "
                "(oracle.max_prompts): split it into smaller requests"
            )
        for index, chat in enumerate(request.chats):
            check = self._check_messages(chat)
            if check:
                return f"chat {index}: {check}"
        return self._check_sampling(request.sampling)

    def _check_chat(self, messages, sampling) -> str:
        return self._check_messages(messages) or self._check_sampling(sampling)

    def _check_messages(self, messages) -> str:
        if not messages:
            return "a chat needs at least one message"
        for index, message in enumerate(messages):
            if set(message) != {"role", "content"}:
                return f"message {index} must have exactly the keys role and content, got {sorted(message)}"
            if message["role"] not in ROLES:
                return f"message {index} has role {message['role']!r}; use one of {', '.join(ROLES)}"
        return ""

    def _check_sampling(self, sampling) -> str:
        try:
            check_sampling(sampling, self.config.oracle.max_new_tokens)
        except SamplingError as exc:
            return f"bad sampling parameters: {exc}"
        return ""

    # ------------------------------------------------------------------ sending from other threads

    def _send(self, identity: bytes, reply) -> None:
        push = getattr(self._local, "push", None)
        if push is None:
            push = self._context.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 0)
            push.connect(self._outbox)
            self._local.push = push
            with self._pushes_lock:
                self._pushes.append(push)
        push.send_multipart([identity, protocol.encode(reply)])
