"""The ZeroMQ bus: the trainer's side (PUB + ROUTER) and the clients' side.

Reliable pub/sub follows the ZeroMQ guide's *Clone* pattern. The trainer applies each event
to its state and publishes it with a per-run sequence number, under one lock, so a snapshot
(state + sequence) always matches the stream. A subscriber subscribes first, then fetches a
snapshot, drops buffered events at or below its sequence, and fetches a new snapshot when it
sees a gap, a heartbeat ahead of it, another run id, or silence past three heartbeats.

Requests follow *Lazy Pirate*: each try uses a fresh socket, waits a bounded time, and the
caller gets a clear ``TrainerUnreachable`` after the last one.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import zmq
import zmq.asyncio

from realm import protocol
from realm.errors import RealmError
from realm.protocol import (
    Envelope,
    ErrorReply,
    Event,
    Heartbeat,
    ProtocolError,
    RealmState,
    Reply,
    Request,
    Snapshot,
    SnapshotRequest,
)
from realm.state import apply

log = logging.getLogger(__name__)

MISSED_HEARTBEATS = 3  # silence for this many heartbeat periods means the trainer is gone
# A client has at most one request in flight (Lazy Pirate, the mirror), so a handful of queued
# replies is plenty; a peer that asks and never reads costs at most this many, the rest are dropped.
REPLY_HWM = 8
REQUEST_HWM = 8  # requests queued from one peer before ZeroMQ stops reading its socket
LONG_REQUESTS = 4  # long requests waiting for the worker thread; one more is answered "busy"


class TrainerUnreachable(ConnectionError):
    """Nothing answered at the endpoint within the tries allowed."""


class RequestFailed(RuntimeError):
    """The trainer answered, and the answer was an error."""


class UnsafeEndpoint(RealmError):
    """An ipc endpoint in a folder that is not the realm's own to make private."""


def prepare_endpoint(endpoint: str) -> None:
    """For an ipc endpoint, a private folder (0700) to bind in.

    A missing folder is created 0700. One that exists must already be this user's alone: the
    realm never changes the mode of a folder it did not make (a shared /tmp would lose its
    sticky bit), and a socket in a folder others can enter is open to them.
    """
    path = socket_file(endpoint)
    if path is None:
        return
    folder = path.parent
    try:
        folder.mkdir(parents=True, mode=0o700)
        return
    except FileExistsError:
        pass
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise UnsafeEndpoint(
            f"{endpoint}: the folder {folder} is not the realm's own (owner uid {info.st_uid}, mode "
            f"{stat.S_IMODE(info.st_mode):o}) and is left as it is; give the socket a folder of its own "
            "(the realm creates a missing one with mode 700)"
        )


def close_bound(sock: zmq.Socket, endpoint: str) -> None:
    """Close a socket bound at ``endpoint``, and remove its ipc socket file (libzmq leaves it)."""
    sock.close(linger=0)
    path = socket_file(endpoint)
    if path is not None:
        path.unlink(missing_ok=True)


def socket_file(endpoint: str) -> Path | None:
    """The file an ipc endpoint binds; None for other transports and Linux abstract sockets (``ipc://@name``)."""
    if not endpoint.startswith("ipc://") or endpoint.startswith("ipc://@"):
        return None
    return Path(endpoint[len("ipc://") :])


def _bind(sock: zmq.Socket, endpoint: str) -> None:
    prepare_endpoint(endpoint)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        raise OSError(f"cannot bind {endpoint}: {exc}") from None


# --------------------------------------------------------------------------- trainer side


class Publisher:
    """The trainer's PUB socket and the state it publishes, kept consistent by one lock.

    ``emit`` may be called from any thread; the socket is only ever used under the lock.
    """

    def __init__(
        self,
        endpoint: str,
        run: str,
        state: RealmState | None = None,
        *,
        context: zmq.Context | None = None,
        sndhwm: int = 100_000,
        socket_setup: Callable[[zmq.Socket], None] | None = None,
    ) -> None:
        self.run = run
        self.endpoint = endpoint
        self.seq = 0
        self.state = state if state is not None else RealmState(run=run)
        self.last_sent = 0.0
        self._closed = False
        self._lock = threading.Lock()
        self._snapshot = b""
        self._snapshot_seq = -1
        self._sock = (context or zmq.Context.instance()).socket(zmq.PUB)
        self._sock.setsockopt(zmq.SNDHWM, sndhwm)
        self._sock.setsockopt(zmq.LINGER, 0)
        if socket_setup:  # e.g. CURVE server keys (realm.security)
            socket_setup(self._sock)
        _bind(self._sock, endpoint)

    def emit(self, event: Event) -> Envelope:
        with self._lock:
            self.seq += 1
            now = time.time()
            self.state = apply(self.state, event, now)
            envelope = Envelope(run=self.run, seq=self.seq, time=now, event=event)
            self._send(envelope, now)
            return envelope

    def heartbeat(self) -> None:
        with self._lock:
            now = time.time()
            self._send(Heartbeat(run=self.run, seq=self.seq, time=now, status=self.state.battle.status), now)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(run=self.run, seq=self.seq, state=self.state)

    def snapshot_frame(self) -> bytes:
        """The encoded snapshot, built once per state version however many peers ask for it."""
        with self._lock:
            if self._snapshot_seq != self.seq:
                self._snapshot = protocol.encode(Snapshot(run=self.run, seq=self.seq, state=self.state))
                self._snapshot_seq = self.seq
            return self._snapshot

    def _send(self, message, now: float) -> None:
        if self._closed:  # e.g. a ControlServer's heartbeat racing the trainer's shutdown
            return
        try:
            self._sock.send(protocol.encode(message), zmq.NOBLOCK)
        except zmq.Again:  # a PUB socket drops at its high-water mark; subscribers heal gaps
            pass
        self.last_sent = now

    def close(self) -> None:
        with self._lock:
            self._closed = True
            close_bound(self._sock, self.endpoint)


class Later(NamedTuple):
    """A handler's answer to a request too long for the control thread: ``work()`` runs on the
    server's worker thread, one at a time, and the reply it returns is sent when it is ready."""

    work: Callable[[], Reply]


class ControlServer:
    """A ROUTER socket served by a background thread, which also sends the heartbeats.

    ``handler`` turns a decoded request into a reply. A frame that does not decode, or a
    handler that raises, gets an ``ErrorReply``: the server never dies of bad input. Snapshot
    requests are answered from the publisher's encoded snapshot. A peer that does not read its
    replies gets at most ``REPLY_HWM`` of them queued; the others are dropped and counted in
    ``dropped_replies``, as are replies to peers that are gone. A handler returning ``Later``
    hands the work to a worker thread, so heartbeats and other requests never wait for it.
    """

    def __init__(
        self,
        endpoint: str,
        handler: Callable[[Request], Reply],
        publisher: Publisher | None = None,
        *,
        heartbeat_s: float = 1.0,
        max_message_bytes: int = protocol.MAX_MESSAGE_BYTES,
        context: zmq.Context | None = None,
        socket_setup: Callable[[zmq.Socket], None] | None = None,
    ) -> None:
        self.handler = handler
        self.endpoint = endpoint
        self.publisher = publisher
        self.heartbeat_s = heartbeat_s
        self.max_message_bytes = max_message_bytes
        self.bad_requests = 0
        self.replies_sent = 0
        self.dropped_replies = 0
        self._context = context or zmq.Context.instance()
        self._sock = self._context.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes + 1024)
        self._sock.setsockopt(zmq.SNDHWM, REPLY_HWM)
        self._sock.setsockopt(zmq.RCVHWM, REQUEST_HWM)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a full or gone peer is an error we count, not a silent drop
        if socket_setup:
            socket_setup(self._sock)
        _bind(self._sock, endpoint)
        self._done_endpoint = f"inproc://realm-control-done-{id(self):x}"
        self._done = self._context.socket(zmq.PULL)  # replies of the long requests, from the worker
        self._done.bind(self._done_endpoint)
        self._long: queue.Queue = queue.Queue(maxsize=LONG_REQUESTS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="realm-control", daemon=True)
        self._worker = threading.Thread(target=self._work, name="realm-control-work", daemon=True)

    def start(self) -> "ControlServer":
        self._worker.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._thread, self._worker):
            if thread.is_alive():
                thread.join(timeout=5)
        close_bound(self._sock, self.endpoint)
        self._done.close(linger=0)

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._done, zmq.POLLIN)
        tick_ms = max(10, int(self.heartbeat_s * 1000 / 4))
        while not self._stop.is_set():
            ready = dict(poller.poll(tick_ms))
            if self._done in ready:
                identity, frame = self._done.recv_multipart()
                self._send(identity, frame)
            if self._sock in ready:
                self._answer(self._sock.recv_multipart())
            if self.publisher and time.time() - self.publisher.last_sent >= self.heartbeat_s:
                self.publisher.heartbeat()

    def _work(self) -> None:
        """The worker thread: run the long requests in order, hand each reply to the control thread."""
        done = self._context.socket(zmq.PUSH)
        done.setsockopt(zmq.LINGER, 0)
        done.connect(self._done_endpoint)
        try:
            while not self._stop.is_set():
                try:
                    identity, later = self._long.get(timeout=0.1)
                except queue.Empty:
                    continue
                done.send_multipart([identity, self._run(later)])
        finally:
            done.close(linger=0)

    def _run(self, later: Later) -> bytes:
        try:
            return protocol.encode(later.work())
        except Exception as exc:  # as on the control thread: a bug in the work is answered, not fatal
            log.exception("a long request failed")
            return protocol.encode(ErrorReply(message=f"{type(exc).__name__}: {exc}"))

    def _answer(self, frames: list[bytes]) -> None:
        if len(frames) < 2:
            self.bad_requests += 1
            return
        identity, payload = frames[0], frames[-1]
        try:
            frame = self._reply_frame(identity, protocol.decode_request(payload, self.max_message_bytes))
            if frame is None:
                return  # the worker answers it
        except ProtocolError as exc:
            self.bad_requests += 1
            log.warning("rejected a request: %s", exc)
            frame = protocol.encode(ErrorReply(message=str(exc)))
        except Exception as exc:  # a bug in a handler must not take the trainer down
            log.exception("request handler failed")
            frame = protocol.encode(ErrorReply(message=f"{type(exc).__name__}: {exc}"))
        self._send(identity, frame)

    def _reply_frame(self, identity: bytes, request: Request) -> bytes | None:
        """The encoded reply, or None when the request went to the worker thread."""
        if isinstance(request, SnapshotRequest) and self.publisher is not None:
            return self.publisher.snapshot_frame()
        reply = self.handler(request)
        if not isinstance(reply, Later):
            return protocol.encode(reply)  # a handler returning junk is a handler bug too
        try:
            self._long.put_nowait((identity, reply))
        except queue.Full:
            busy = f"the trainer is busy with {LONG_REQUESTS} long requests; try again in a moment"
            return protocol.encode(ErrorReply(message=busy))
        return None

    def _send(self, identity: bytes, frame: bytes) -> None:
        try:
            # copy=False: a large frame (the shared snapshot) is referenced by every queue, not copied
            self._sock.send_multipart([identity, b"", frame], zmq.NOBLOCK, copy=False)
        except zmq.ZMQError:  # EAGAIN: the peer's queue is full; EHOSTUNREACH: the peer is gone
            self.dropped_replies += 1
            if self.dropped_replies % 1000 == 1:
                log.warning("dropped %d replies so far to clients that do not read them", self.dropped_replies)
            return
        self.replies_sent += 1


# --------------------------------------------------------------------------- client side


class LazyPirateClient:
    """A client of a ROUTER in the Lazy Pirate habits: every try gets a fresh socket (no linger,
    the caller's ``socket_setup`` such as CURVE client keys, connected to ``endpoint``), waits at
    most ``timeout_s``, and ``retries`` more tries follow silence before the caller gives up."""

    socket_type = zmq.DEALER

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = 2.0,
        retries: int = 2,
        context: zmq.Context | None = None,
        socket_setup: Callable[[zmq.Socket], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.retries = retries
        self.context = context or zmq.Context.instance()
        self.socket_setup = socket_setup

    def _socket(self) -> zmq.Socket:
        sock = self.context.socket(self.socket_type)
        sock.setsockopt(zmq.LINGER, 0)
        if self.socket_setup:
            self.socket_setup(sock)
        sock.connect(self.endpoint)
        return sock


class RealmClient(LazyPirateClient):
    """Blocking requests to the trainer, for the CLI."""

    socket_type = zmq.REQ

    def request(self, request: Request) -> Reply:
        frame = protocol.encode(request)
        for _ in range(self.retries + 1):
            with self._socket() as sock:
                sock.send(frame)
                if sock.poll(int(self.timeout_s * 1000), zmq.POLLIN):
                    reply = protocol.decode_reply(sock.recv())
                    if isinstance(reply, ErrorReply):
                        raise RequestFailed(reply.message)
                    return reply
        waited = (self.retries + 1) * self.timeout_s
        raise TrainerUnreachable(
            f"no trainer answered at {self.endpoint} ({self.retries + 1} tries, {waited:g}s); "
            "is `realm play` or `realm trainer` running with the same --home/--config?"
        )

    def snapshot(self) -> Snapshot:
        reply = self.request(SnapshotRequest())
        if not isinstance(reply, Snapshot):
            raise RequestFailed(f"expected a snapshot, got {type(reply).__name__}")
        return reply


async def request_async(
    context: zmq.asyncio.Context,
    endpoint: str,
    request: Request,
    timeout_s: float = 2.0,
    socket_setup: Callable[[zmq.Socket], None] | None = None,
) -> Reply | None:
    """One try of a request from asyncio code; None when nothing answered in time."""
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if socket_setup:  # e.g. CURVE client keys
        socket_setup(sock)
    try:
        sock.connect(endpoint)
        await sock.send_multipart([b"", protocol.encode(request)])
        if await sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            frames = await sock.recv_multipart()
            return protocol.decode_reply(frames[-1])
        return None
    finally:
        sock.close(linger=0)


class StateMirror:
    """A live copy of the trainer's state for the TUI: the Clone pattern's client.

    ``run()`` is a coroutine that never returns on its own. It keeps ``state``, ``seq`` and
    ``connected`` current and appends each applied envelope to ``recent`` (bounded), which a
    UI drains on its own repaint tick; it never calls back into the UI.
    """

    def __init__(
        self,
        pub_endpoint: str,
        control_endpoint: str,
        *,
        heartbeat_s: float = 1.0,
        request_timeout_s: float = 1.0,
        rcvhwm: int = 100_000,
        context: zmq.asyncio.Context | None = None,
        recent_limit: int = 1000,
        batch: int = 500,
        socket_setup: Callable[[zmq.Socket], None] | None = None,
    ) -> None:
        self.pub_endpoint = pub_endpoint
        self.socket_setup = socket_setup  # e.g. CURVE client keys, for both sockets
        self.control_endpoint = control_endpoint
        self.heartbeat_s = heartbeat_s
        self.request_timeout_s = request_timeout_s
        self.rcvhwm = rcvhwm
        self.batch = batch  # most messages applied per turn of the event loop
        self.context = context or zmq.asyncio.Context.instance()
        self.state = RealmState()
        self.seq = 0
        self.connected = False
        self.snapshots = 0  # how many snapshots were fetched: 1 + resyncs
        self.bad_messages = 0
        self.last_heard = 0.0
        self.recent: collections.deque[Envelope] = collections.deque(maxlen=recent_limit)

    async def run(self) -> None:
        while True:
            sub = self.context.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.RCVHWM, self.rcvhwm)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            if self.socket_setup:
                self.socket_setup(sub)
            sub.connect(self.pub_endpoint)
            try:
                while await self._sync(sub):
                    pass
            finally:
                sub.close(linger=0)
            self.connected = False

    async def _sync(self, sub: zmq.asyncio.Socket) -> bool:
        """Fetch a snapshot, then follow the stream until it breaks; False means reconnect."""
        try:
            snapshot = await request_async(
                self.context, self.control_endpoint, SnapshotRequest(), self.request_timeout_s, self.socket_setup
            )
            answered = snapshot is not None
        except ProtocolError as exc:  # something answered, but not with a reply we can read
            self.bad_messages += 1
            log.warning("ignored a bad snapshot reply: %s", exc)
            snapshot, answered = None, True
        if not isinstance(snapshot, Snapshot):
            self.connected = False
            if answered:  # an error came back at once: wait before asking again, don't spin
                await asyncio.sleep(self.request_timeout_s)
            return False
        self.snapshots += 1
        self.state, self.seq = snapshot.state, snapshot.seq
        self.connected = True
        self.last_heard = time.monotonic()
        silence_ms = int(self.heartbeat_s * MISSED_HEARTBEATS * 1000)
        # Read what is already queued through a plain (blocking-API) view of the same socket:
        # a trip through the event loop per message costs ~10x the reducer. A batch is
        # bounded so the UI sharing this loop still gets a turn under a flood.
        queued = zmq.Socket.shadow(sub.underlying)
        while True:
            if not await sub.poll(silence_ms, zmq.POLLIN):
                self.connected = False
                return False
            self.last_heard = time.monotonic()
            for _ in range(self.batch):
                try:
                    frame = queued.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                try:
                    message = protocol.decode_published(frame)
                except ProtocolError as exc:
                    self.bad_messages += 1
                    log.warning("ignored a bad message on the bus: %s", exc)
                    continue
                if message.run != snapshot.run:
                    return True  # the trainer restarted: a new run, a new snapshot
                if isinstance(message, Heartbeat):
                    if message.seq > self.seq:
                        return True  # events were lost while it was quiet
                    continue
                if message.seq <= self.seq:
                    continue  # already in the snapshot
                if message.seq != self.seq + 1:
                    return True  # a gap
                self.state = apply(self.state, message.event, message.time)
                self.seq = message.seq
                self.recent.append(message)
            else:
                await asyncio.sleep(0)  # a full batch: let the UI have its turn before the next
