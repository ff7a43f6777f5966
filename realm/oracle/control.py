"""The oracle's control socket: the I/O loop that answers requests, forwards what the other
threads send (through an inproc PULL socket), and sends heartbeats and telemetry."""

from __future__ import annotations

import logging
import threading
import time

import zmq

from realm import protocol
from realm.bus import Publisher
from realm.config import RealmConfig
from realm.gpu import read_gpus
from realm.oracle.checkpoint_loads import CheckpointLoads
from realm.oracle.dispatch import RequestDispatcher
from realm.oracle.generation import Batcher
from realm.protocol import ChatDelta, ErrorReply, OracleTelemetry, ProtocolError

log = logging.getLogger("realm.oracle")

RETRY_START_LOAD_S = 5.0  # while nothing is served, how often the start-up load is tried again


class Outbox:
    """Replies from the threads that do not own the ROUTER socket: each thread pushes through its
    own PUSH socket to the inproc PULL socket the I/O loop drains."""

    def __init__(self, endpoint: str) -> None:
        self._endpoint = endpoint
        self._local = threading.local()
        self._context = zmq.Context.instance()
        self._pushes: list[zmq.Socket] = []
        self._pushes_lock = threading.Lock()

    def bind(self) -> zmq.Socket:
        outbox = self._context.socket(zmq.PULL)
        outbox.bind(self._endpoint)
        return outbox

    def close_pushes(self) -> None:
        with self._pushes_lock:
            for push in self._pushes:
                push.close(linger=0)

    def send(self, identity: bytes, reply) -> None:
        push = getattr(self._local, "push", None)
        if push is None:
            push = self._context.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 0)
            push.connect(self._endpoint)
            self._local.push = push
            with self._pushes_lock:
                self._pushes.append(push)
        push.send_multipart([identity, protocol.encode(reply)])


class ControlLoop:
    def __init__(
        self,
        config: RealmConfig,
        publisher: Publisher,
        dispatcher: RequestDispatcher,
        loads: CheckpointLoads,
        batcher: Batcher,
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.dispatcher = dispatcher
        self.loads = loads
        self.batcher = batcher
        self.bad_requests = 0
        self.abandoned = 0  # chats cancelled because their requester went away

    def serve(self, router: zmq.Socket, outbox: zmq.Socket, stop_event: threading.Event) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(outbox, zmq.POLLIN)
        heartbeat_s = self.config.bus.heartbeat_s
        telemetry_s = self.config.oracle.telemetry_s
        next_telemetry = 0.0
        next_retry = time.time() + RETRY_START_LOAD_S
        while not stop_event.is_set():
            ready = dict(poller.poll(50))
            if outbox in ready:
                self.drain(router, outbox)
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
                self.loads.retry_start_load()
            if now - self.publisher.last_sent >= heartbeat_s:
                self.publisher.heartbeat()

    def drain(self, router: zmq.Socket, outbox: zmq.Socket) -> None:
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
        gpus, note = read_gpus()
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
            reply = self.dispatcher.handle(identity, request)
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
