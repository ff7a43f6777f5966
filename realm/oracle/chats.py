"""Chat and batch-generate requests: checked, then submitted to the ``Batcher`` on the served model
or on the checkpoint a request names; their answers go back through ``send`` from the generation
thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from realm.config import RealmConfig
from realm.oracle.checkpoint_loads import Loader
from realm.oracle.generation import Batcher, SamplingError, Served, Session, check_sampling
from realm.oracle.model_store import ModelStore, NotServing
from realm.protocol import ChatDelta, ChatEnd, ChatRequest, ErrorReply, GenerateRequest, GenerateResult

ROLES = ("system", "user", "assistant")


class ChatRequests:
    def __init__(
        self,
        config: RealmConfig,
        store: ModelStore,
        batcher: Batcher,
        loader: Loader,
        send: Callable[[bytes, object], None],
    ) -> None:
        self.config = config
        self.store = store
        self.batcher = batcher
        self._loader = loader
        self._send = send

    def chat(self, identity: bytes, request: ChatRequest):
        check = self._check_chat(request.messages, request.sampling)
        if check:
            return ErrorReply(message=check)
        return self._on_model(identity, request, self._submit_chat)

    def generate(self, identity: bytes, request: GenerateRequest):
        check = self._check_generate(request)
        if check:
            return ErrorReply(message=check)
        return self._on_model(identity, request, self._submit_generate)

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
