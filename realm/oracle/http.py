"""An OpenAI-compatible HTTP front on an oracle: ``/v1/models`` and ``/v1/chat/completions``.

It is a thin front: each HTTP request becomes the same ``ChatRequest`` a ZeroMQ client sends,
over the oracle's own control socket, so HTTP and ZeroMQ chats share one worker, one batcher
and one generation path. Streams are server-sent events in OpenAI's chunk format; errors are
OpenAI's ``{"error": {...}}`` shape. Off unless ``oracle.http.bind`` is set; a bearer token is
required whenever ``oracle.http.token`` is set, and the config refuses a bind beyond loopback
without one.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import zmq
import zmq.asyncio

from realm import protocol
from realm.config import RealmConfig
from realm.protocol import (
    CancelRequest,
    ChatDelta,
    ChatEnd,
    ChatRequest,
    ErrorReply,
    Sampling,
    Snapshot,
    SnapshotRequest,
)

log = logging.getLogger("realm.oracle.http")

SERVED = "dio"  # the model id that always means "whatever the oracle serves now"
REPLY_TIMEOUT_S = 300.0  # the longest wait for the next piece of an answer
MAX_STOPS = 4  # OpenAI's limit on stop sequences


class HttpError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


class ContentPart(msgspec.Struct):
    type: str
    text: str = ""


class Message(msgspec.Struct):
    role: str
    content: str | list[ContentPart] | None = None


class CompletionBody(msgspec.Struct):
    """What we read of a chat completion request; fields we do not use are ignored, as OpenAI's are."""

    messages: list[Message]
    model: str = SERVED
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = 1


# --------------------------------------------------------------------------- parsing


def parse_body(raw: bytes) -> CompletionBody:
    try:
        body = msgspec.json.decode(raw, type=CompletionBody)
    except msgspec.ValidationError as exc:
        raise HttpError(400, f"invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise HttpError(400, f"the request body is not JSON: {exc}") from None
    if body.n != 1:
        raise HttpError(400, "n must be 1: this oracle answers each request once", param="n")
    if not body.messages:
        raise HttpError(400, "messages must hold at least one message", param="messages")
    return body


def chat_messages(body: CompletionBody) -> tuple[dict[str, str], ...]:
    """OpenAI messages as the oracle's ``{"role", "content"}`` pairs (text parts joined)."""
    out = []
    for index, message in enumerate(body.messages):
        content = message.content
        if isinstance(content, list):
            if any(part.type != "text" for part in content):
                raise HttpError(400, f"messages[{index}]: only text content parts are supported", param="messages")
            content = "".join(part.text for part in content)
        out.append({"role": message.role, "content": content or ""})
    return tuple(out)


def sampling_of(body: CompletionBody, default_tokens: int) -> Sampling:
    limit = body.max_completion_tokens or body.max_tokens or default_tokens
    return Sampling(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        max_new_tokens=limit,
        seed=body.seed,
    )


def stops_of(body: CompletionBody) -> tuple[str, ...]:
    stops = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    if len(stops) > MAX_STOPS or any(not s for s in stops):
        raise HttpError(400, f"stop takes up to {MAX_STOPS} non-empty strings", param="stop")
    return stops


class StopFilter:
    """Cuts a streamed answer at the first stop sequence, holding back text that may begin one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = stops
        self.pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        self.pending += text
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            out, self.pending = self.pending[: min(hits)], ""
            return out
        keep = max((len(s) - 1 for s in self.stops), default=0)
        keep = next((k for k in range(keep, 0, -1) if any(s.startswith(self.pending[-k:]) for s in self.stops)), 0)
        out, self.pending = self.pending[: len(self.pending) - keep], self.pending[len(self.pending) - keep :]
        return out

    def flush(self) -> str:
        out, self.pending = ("" if self.stopped else self.pending), ""
        return out


# --------------------------------------------------------------------------- the bus side


class OracleLink:
    """One DEALER per HTTP request to the oracle's control socket (they carry a chat each)."""

    def __init__(self, endpoint: str, socket_setup=None, max_message_bytes: int = protocol.MAX_MESSAGE_BYTES) -> None:
        self.endpoint = endpoint
        self.socket_setup = socket_setup
        self.max_message_bytes = max_message_bytes
        self.context = zmq.asyncio.Context.instance()

    def open(self) -> zmq.asyncio.Socket:
        sock = self.context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if self.socket_setup:
            self.socket_setup(sock)
        sock.connect(self.endpoint)
        return sock

    async def send(self, sock: zmq.asyncio.Socket, request) -> None:
        await sock.send_multipart([b"", protocol.encode(request)])

    async def receive(self, sock: zmq.asyncio.Socket, timeout_s: float = REPLY_TIMEOUT_S):
        if not await sock.poll(timeout_s * 1000):
            raise HttpError(504, f"the oracle gave no answer within {timeout_s:g} s", kind="server_error")
        return protocol.decode_oracle_reply((await sock.recv_multipart())[-1], self.max_message_bytes)

    async def snapshot(self) -> Snapshot:
        sock = self.open()
        try:
            await self.send(sock, SnapshotRequest())
            reply = await self.receive(sock, 5.0)
        finally:
            sock.close(linger=0)
        if not isinstance(reply, Snapshot):
            raise HttpError(
                502, f"the oracle answered a snapshot request with {type(reply).__name__}", kind="server_error"
            )
        return reply


# --------------------------------------------------------------------------- the HTTP side


class Front:
    """The Starlette app's handlers, over an ``OracleLink``."""

    def __init__(self, config: RealmConfig, home: Path, link: OracleLink) -> None:
        self.config = config
        self.home = home
        self.link = link
        self.token = config.oracle.http.token

    def app(self):
        from starlette.applications import Starlette
        from starlette.routing import Route

        return Starlette(routes=[
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
        ])  # fmt: skip

    def _authorize(self, request) -> None:
        if not self.token:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
            raise HttpError(
                401,
                "a valid bearer token is required (oracle.http.token)",
                kind="authentication_error",
                code="invalid_api_key",
            )

    async def models(self, request):
        return await self._guarded(request, self._models)

    async def chat_completions(self, request):
        return await self._guarded(request, self._chat_completions)

    async def _guarded(self, request, handler):
        from starlette.responses import JSONResponse

        try:
            self._authorize(request)
            return await handler(request)
        except HttpError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        except protocol.ProtocolError as exc:
            return JSONResponse(
                HttpError(502, f"the oracle's reply was not understood: {exc}", "server_error").body(), status_code=502
            )

    async def _models(self, request):
        from starlette.responses import JSONResponse

        snapshot = await self.link.snapshot()
        serving = snapshot.state.oracle.serving
        now = int(time.time())
        data = [{"id": SERVED, "object": "model", "created": now, "owned_by": "realm",
                 "served": serving.name if serving else None}]  # fmt: skip
        names = [serving.name] if serving else []
        names += [name for name in self._vault_names() if name not in names]
        data += [{"id": name, "object": "model", "created": now, "owned_by": "realm"} for name in names]
        return JSONResponse({"object": "list", "data": data})

    def _vault_names(self) -> list[str]:
        """The vault's checkpoints, when this oracle shares the trainer's data root."""
        db = self.home / "vault" / "realm.db"
        if not db.exists():
            return []
        from realm.vault.ledger import Ledger

        ledger = Ledger(db)
        try:
            return [info.name for info in ledger.present()]
        finally:
            ledger.close()

    async def _chat_completions(self, request):
        from starlette.responses import JSONResponse, StreamingResponse

        body = parse_body(await request.body())
        chat = ChatRequest(
            id=f"chatcmpl-{uuid.uuid4().hex[:24]}",
            messages=chat_messages(body),
            sampling=sampling_of(body, min(self.config.tui.chat_max_new_tokens, self.config.oracle.max_new_tokens)),
            checkpoint="" if body.model in (SERVED, "") else body.model,
        )
        stops = stops_of(body)
        sock = self.link.open()
        try:
            await self.link.send(sock, chat)
            first = await self.link.receive(sock)
            if isinstance(first, ErrorReply):
                raise HttpError(400 if "no checkpoint" not in first.message else 503, first.message)
        except BaseException:
            sock.close(linger=0)
            raise
        answer = Answer(self.link, sock, chat.id, body.model, StopFilter(stops), first)
        if body.stream:
            return StreamingResponse(answer.events(), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})  # fmt: skip
        return JSONResponse(await answer.whole())


class Answer:
    """One chat's replies from the oracle, as OpenAI chunks or one completion object."""

    def __init__(self, link: OracleLink, sock, chat_id: str, model: str, stops: StopFilter, first) -> None:
        self.link, self.sock, self.id, self.model, self.stops = link, sock, chat_id, model, stops
        self.first = first
        self.created = int(time.time())
        self.end: ChatEnd | None = None

    async def _pieces(self) -> AsyncIterator[str]:
        """The answer's text as it comes; ``self.end`` is set at the end. Cancels the chat when
        the stop filter fires or the HTTP client goes away."""
        reply = self.first
        cancelled = False
        try:
            while True:
                if isinstance(reply, ChatDelta):
                    text = self.stops.feed(reply.text)
                    if text:
                        yield text
                    # once: deltas already on their way would each cancel again, and a second cancel of
                    # a chat being cancelled is refused with an error that would end the answer
                    if self.stops.stopped and not cancelled:
                        await self.link.send(self.sock, CancelRequest(id=self.id))
                        cancelled = True
                elif isinstance(reply, ChatEnd):
                    self.end = reply
                    tail = self.stops.flush()
                    if tail:
                        yield tail
                    return
                elif isinstance(reply, ErrorReply):
                    raise HttpError(500, reply.message, kind="server_error")
                reply = await self.link.receive(self.sock)
        finally:
            if self.end is None:  # the client left mid-answer (or an error): free the batch slot
                try:
                    await self.link.send(self.sock, CancelRequest(id=self.id))
                except (zmq.ZMQError, asyncio.CancelledError):
                    pass
            self.sock.close(linger=0)

    def _finish_reason(self) -> str:
        if self.stops.stopped:
            return "stop"
        return "length" if self.end is not None and self.end.reason == "length" else "stop"

    def _model(self) -> str:
        return self.end.checkpoint if self.end and self.end.checkpoint else self.model

    def _usage(self) -> dict:
        prompt = self.end.prompt_tokens if self.end else 0
        completion = self.end.tokens if self.end else 0
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def whole(self) -> dict:
        text = "".join([piece async for piece in self._pieces()])
        return {
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self._model(),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": self._finish_reason()}],
            "usage": self._usage(),
        }  # fmt: skip

    def _chunk(self, delta: dict, finish: str | None = None, usage: dict | None = None) -> str:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self._model(),
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
        if usage is not None:
            chunk["usage"] = usage
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    async def events(self) -> AsyncIterator[str]:
        yield self._chunk({"role": "assistant", "content": ""})
        try:
            async for piece in self._pieces():
                yield self._chunk({"content": piece})
        except HttpError as exc:
            yield f"data: {json.dumps(exc.body())}\n\n"
            return
        yield self._chunk({}, self._finish_reason(), self._usage())
        yield "data: [DONE]\n\n"


# --------------------------------------------------------------------------- serving


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class HttpServer:
    """uvicorn on a thread of the oracle process, serving ``Front``'s app on ``oracle.http.bind``."""

    def __init__(self, config: RealmConfig, home: Path, control_endpoint: str, socket_setup=None) -> None:
        import uvicorn

        host, port = split_bind(config.oracle.http.bind)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as exc:
            self.socket.close()
            raise OSError(f"oracle.http.bind {config.oracle.http.bind}: cannot listen there ({exc.strerror})") from None
        self.socket.listen(64)
        self.port = self.socket.getsockname()[1]
        self.url = f"http://{host}:{self.port}/v1"
        link = OracleLink(_local_endpoint(control_endpoint), socket_setup, config.bus.max_message_bytes)
        app = Front(config, home, link).app()
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="realm-http", daemon=True)  # fmt: skip

    def start(self) -> "HttpServer":
        self.thread.start()
        log.info("OpenAI-compatible HTTP at %s", self.url)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.socket.close()


def _local_endpoint(endpoint: str) -> str:
    """Where this process reaches its own control socket (a wildcard bind is reached on loopback)."""
    for wildcard in ("tcp://*:", "tcp://0.0.0.0:"):
        if endpoint.startswith(wildcard):
            return "tcp://127.0.0.1:" + endpoint[len(wildcard) :]
    return endpoint
