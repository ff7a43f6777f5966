"""The oracle's answer to each control request, by the request's type."""

from __future__ import annotations

import time

from realm.bus import Publisher
from realm.oracle.chats import ChatRequests
from realm.oracle.checkpoint_loads import CheckpointLoads
from realm.oracle.generation import Batcher
from realm.protocol import (
    PROTOCOL_VERSION,
    Ack,
    CancelRequest,
    ChatRequest,
    ErrorReply,
    GenerateRequest,
    LoadRequest,
    PingRequest,
    Pong,
    PromoteRequest,
    SnapshotRequest,
    UnloadRequest,
)


class RequestDispatcher:
    def __init__(
        self, run_id: str, publisher: Publisher, loads: CheckpointLoads, chats: ChatRequests, batcher: Batcher
    ) -> None:
        self.run_id = run_id
        self.publisher = publisher
        self.loads = loads
        self.batcher = batcher
        self._handlers = {
            SnapshotRequest: self._snapshot,
            PingRequest: self._ping,
            LoadRequest: self._load,
            PromoteRequest: self._load,
            UnloadRequest: self._unload,
            ChatRequest: chats.chat,
            GenerateRequest: chats.generate,
            CancelRequest: self._cancel,
        }

    def handle(self, identity: bytes, request):
        """The reply to send now, or None when the answer comes later (streams, batches)."""
        handler = self._handlers.get(type(request))
        if handler is None:
            raise ValueError(f"unsupported request {type(request).__name__}")
        return handler(identity, request)

    def _snapshot(self, identity: bytes, request: SnapshotRequest):
        return self.publisher.snapshot()

    def _ping(self, identity: bytes, request: PingRequest) -> Pong:
        return Pong(role="oracle", run=self.run_id, version=PROTOCOL_VERSION, time=time.time())

    def _load(self, identity: bytes, request: LoadRequest | PromoteRequest) -> Ack:
        self.loads.schedule(request.ref, notify=identity)
        return Ack(message=f"loading {request.ref}; the current model serves until it is ready")

    def _unload(self, identity: bytes, request: UnloadRequest) -> Ack:
        return self.loads.unload()

    def _cancel(self, identity: bytes, request: CancelRequest) -> Ack | ErrorReply:
        if self.batcher.cancel(request.id.encode()):
            return Ack(message=f"cancelling {request.id}")
        return ErrorReply(message=f"no running request with id {request.id!r}")
