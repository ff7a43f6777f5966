"""Talking to an oracle: Lazy Pirate requests, and streamed chat over a DEALER socket."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import zmq

from realm import protocol
from realm.bus import LazyPirateClient
from realm.errors import RealmError
from realm.protocol import (
    Ack,
    CancelRequest,
    ChatDelta,
    ChatEnd,
    ChatRequest,
    ErrorReply,
    GenerateRequest,
    GenerateResult,
    Loaded,
    PingRequest,
    Pong,
    PromoteRequest,
    Sampling,
    Snapshot,
    SnapshotRequest,
)

SILENCE_CHECK_S = 5.0  # a chat silent this long pings its oracle


class OracleUnreachable(RealmError, ConnectionError):
    """Nothing answered at the oracle's endpoint in time."""


class OracleRefused(RealmError):
    """The oracle answered with an error."""


class OracleClient(LazyPirateClient):
    def __init__(self, endpoint: str, *, timeout_s: float = 2.0, retries: int = 1, **kwargs) -> None:
        super().__init__(endpoint, timeout_s=timeout_s, retries=retries, **kwargs)

    def _unreachable(self, waited: float) -> OracleUnreachable:
        return OracleUnreachable(
            f"no oracle answered at {self.endpoint} ({waited:g}s); is `realm oracle` running with the same "
            "--home/--config (or listed in the host registry)?"
        )

    def request(self, request):
        """One request, one reply; retried on silence with a fresh socket (Lazy Pirate)."""
        frame = protocol.encode(request)
        for _ in range(self.retries + 1):
            with self._socket() as sock:
                sock.send_multipart([b"", frame])
                if sock.poll(int(self.timeout_s * 1000), zmq.POLLIN):
                    reply = protocol.decode_oracle_reply(sock.recv_multipart()[-1])
                    if isinstance(reply, ErrorReply):
                        raise OracleRefused(reply.message)
                    return reply
        raise self._unreachable((self.retries + 1) * self.timeout_s)

    def ping(self) -> Pong:
        return self.request(PingRequest())

    def snapshot(self) -> Snapshot:
        reply = self.request(SnapshotRequest())
        if not isinstance(reply, Snapshot):
            raise OracleRefused(f"expected a snapshot, got {type(reply).__name__}")
        return reply

    def chat(
        self,
        messages: list[dict],
        sampling: Sampling = Sampling(),
        *,
        checkpoint: str = "",
        on_delta: Callable[[str], None] | None = None,
        request_id: str | None = None,
        wait_s: float = 120.0,
    ) -> tuple[str, ChatEnd]:
        """Stream one answer: ``on_delta`` gets each piece of text; returns (text, end frame).

        ``wait_s`` bounds the silence between frames (a first answer may wait for a model to
        load). The oracle is pinged first, so a dead endpoint fails within ``timeout_s``.
        """
        self.ping()
        request = ChatRequest(
            id=request_id or uuid.uuid4().hex,
            messages=tuple(dict(m) for m in messages),
            sampling=sampling,
            checkpoint=checkpoint,
        )
        pieces: list[str] = []
        with self._socket() as sock:
            sock.send_multipart([b"", protocol.encode(request)])
            while True:
                reply = self._next(sock, wait_s, lambda: self._still_there(len(pieces)))
                if isinstance(reply, ChatDelta) and reply.id == request.id:
                    pieces.append(reply.text)
                    if on_delta:
                        on_delta(reply.text)
                elif isinstance(reply, ChatEnd) and reply.id == request.id:
                    if reply.reason == "error":
                        raise OracleRefused(f"the oracle failed this chat: {reply.message}")
                    return "".join(pieces), reply

    def _still_there(self, pieces: int) -> None:
        """A chat's silence: the oracle's I/O thread answers a ping while it loads or generates."""
        try:
            self.ping()
        except OracleUnreachable:
            raise OracleUnreachable(
                f"the oracle at {self.endpoint} stopped answering mid-chat ({pieces} piece(s) of the answer "
                "came); is `realm oracle` still running?"
            ) from None

    def generate(
        self,
        prompts: list[str],
        sampling: Sampling = Sampling(),
        *,
        checkpoint: str = "",
        chats: list[list[dict]] = (),
        wait_s: float = 300.0,
    ) -> GenerateResult:
        """Answers to ``prompts`` (user messages) or, in the skill-eval form, to ``chats`` (whole
        chats, encoded and decoded as the trainer's own eval does), in order."""
        self.ping()
        request = GenerateRequest(
            id=uuid.uuid4().hex,
            prompts=tuple(prompts),
            sampling=sampling,
            checkpoint=checkpoint,
            chats=tuple(tuple(dict(m) for m in chat) for chat in chats),
        )
        with self._socket() as sock:
            sock.send_multipart([b"", protocol.encode(request)])
            while True:
                reply = self._next(sock, wait_s)
                if isinstance(reply, GenerateResult) and reply.id == request.id:
                    return reply

    def promote(self, ref: str, *, wait_s: float = 300.0) -> Loaded:
        """Ask the oracle to load ``ref`` (hot swap) and wait until it serves; ``Loaded`` says
        what and how fast. A failed load raises ``OracleRefused`` with the reason."""
        self.ping()
        with self._socket() as sock:
            sock.send_multipart([b"", protocol.encode(PromoteRequest(ref=ref))])
            first = self._next(sock, self.timeout_s * (self.retries + 1))
            if not isinstance(first, Ack):
                raise OracleRefused(f"expected an acknowledgement, got {type(first).__name__}")
            while True:
                reply = self._next(sock, wait_s)
                if isinstance(reply, Loaded):
                    return reply

    def cancel(self, request_id: str):
        return self.request(CancelRequest(id=request_id))

    def _next(self, sock: zmq.Socket, wait_s: float, still_there: Callable[[], None] | None = None):
        """The next frame within ``wait_s``; every ``SILENCE_CHECK_S`` of silence ``still_there``
        may raise first (a killed oracle never sends the rest)."""
        started = time.monotonic()
        while not sock.poll(int(min(SILENCE_CHECK_S, wait_s) * 1000), zmq.POLLIN):
            waited = time.monotonic() - started
            if waited >= wait_s:
                raise self._unreachable(waited)
            if still_there is not None:
                still_there()
        reply = protocol.decode_oracle_reply(sock.recv_multipart()[-1])
        if isinstance(reply, ErrorReply):
            raise OracleRefused(reply.message)
        return reply
