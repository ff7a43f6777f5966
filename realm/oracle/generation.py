"""Continuous batching over a Hugging Face causal LM: every active session advances one token
per step, and sessions join and leave between steps.

Sessions on the same model form a *cohort* decoded in one forward pass over a left-padded
batch KV cache. The batch cache is rebuilt only when the cohort changes (a session joins or
leaves); between changes each step appends one column. A new session is prefilled on its own
(no padding), so its first token is exactly what a plain ``generate`` would give.

A session keeps the model it was admitted with, so a hot swap lets in-flight sessions finish on
the old model while new ones start on the new.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from realm.model.greedy import cache_keyword, cache_of
from realm.protocol import Sampling

log = logging.getLogger("realm.oracle")

TOKENS_WINDOW_S = 5.0  # tokens/s is measured over this sliding window


class SamplingError(ValueError):
    """Sampling parameters out of bounds; the message names the parameter and its bounds."""


def check_sampling(sampling: Sampling, max_new_tokens: int) -> None:
    if not (math.isfinite(sampling.temperature) and 0.0 <= sampling.temperature <= 5.0):
        raise SamplingError(f"temperature must be between 0 (greedy) and 5, got {sampling.temperature}")
    if not (math.isfinite(sampling.top_p) and 0.0 < sampling.top_p <= 1.0):
        raise SamplingError(f"top_p must be in (0, 1], got {sampling.top_p}")
    if not 1 <= sampling.max_new_tokens <= max_new_tokens:
        raise SamplingError(f"max_new_tokens must be between 1 and {max_new_tokens}, got {sampling.max_new_tokens}")
    if sampling.seed is not None and not 0 <= sampling.seed < 2**63:
        raise SamplingError(f"seed must be between 0 and 2**63 - 1, got {sampling.seed}")


@dataclass(eq=False)
class Served:
    """One loaded checkpoint: the model, its tokenizer and the ids that end an answer."""

    model: torch.nn.Module
    tokenizer: object
    step: int
    name: str
    source: str
    stop_ids: frozenset[int]
    device: torch.device

    @classmethod
    def wrap(cls, model, tokenizer, *, step: int, name: str, source: str) -> "Served":
        model.eval()
        stop_ids = cls.stop_ids_of(tokenizer, getattr(model.generation_config, "eos_token_id", None))
        device = next(model.parameters()).device
        return cls(model, tokenizer, step, name, source, stop_ids, device)

    @staticmethod
    def stop_ids_of(tokenizer, configured) -> frozenset[int]:
        """The tokens that end an answer: EOS, ``<|im_end|>`` and the model's configured EOS ids."""
        stop = {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")}
        stop |= set(configured) if isinstance(configured, (list, tuple)) else {configured}
        return frozenset(i for i in stop if isinstance(i, int) and i >= 0)

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        ids = self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # some tokenizers return a BatchEncoding
            ids = ids["input_ids"]
        return list(ids)

    # the skill-eval form: the trainer's own encoding, stop token and decoding (realm.model.greedy)

    def eval_prompt_ids(self, messages: list[dict]) -> list[int]:
        from realm.model.greedy import prompt_ids

        return prompt_ids(self.tokenizer, messages)

    @property
    def eval_stop_ids(self) -> frozenset[int]:
        from realm.model.greedy import stop_id

        return frozenset({stop_id(self.tokenizer)})

    def eval_text(self, session: "Session") -> str:
        ids = [t for t in session.generated if t not in self.eval_stop_ids]
        return self.tokenizer.decode(ids, skip_special_tokens=False)


@dataclass(eq=False)
class Session:
    """One request being answered. ``on_delta(session, text)`` and ``on_end(session, reason,
    message)`` are called on the generation thread."""

    key: bytes
    served: Served
    prompt_ids: list[int]
    sampling: Sampling
    on_delta: Callable[["Session", str], None]
    on_end: Callable[["Session", str, str], None]
    generated: list[int] = field(default_factory=list)
    sent_chars: int = 0
    length: int = 0  # tokens in this session's KV cache
    next_token: int | None = None  # sampled, not yet fed to the model
    cancelled: bool = False
    finished: bool = False
    kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # own cache while outside a batch
    generator: torch.Generator | None = None
    started: float = field(default_factory=time.perf_counter)
    stop_ids: frozenset[int] | None = None  # None: the served model's

    @property
    def text(self) -> str:
        ids = [t for t in self.generated if t not in self.served.stop_ids]
        return self.served.tokenizer.decode(ids, skip_special_tokens=True)


class Cohort:
    """The sessions decoding on one model, with their left-padded batch cache."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.sessions: list[Session] = []
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None
        self.dirty = False
        self.rows: dict[int, int] = {}  # session -> its row in the batch cache

    def rebuild(self) -> None:
        """Re-pad every session's KV into one batch cache (after a join or a leave)."""
        for session in self.sessions:
            if session.kv is None:  # still in the old batch: cut its rows out
                session.kv = self._slice(self.rows[id(session)], session.length)
        self.cache, self.mask = None, None
        if self.sessions:
            width = max(s.length for s in self.sessions)
            cache = DynamicCache()
            for layer in range(len(self.sessions[0].kv)):
                keys = torch.cat([_left_pad(s.kv[layer][0], width) for s in self.sessions])
                values = torch.cat([_left_pad(s.kv[layer][1], width) for s in self.sessions])
                cache.update(keys, values, layer)
            mask = torch.zeros(len(self.sessions), width, dtype=torch.long, device=self.served.device)
            for row, session in enumerate(self.sessions):
                mask[row, width - session.length :] = 1
            self.cache, self.mask = cache, mask
        for session in self.sessions:
            session.kv = None
        self.rows = {id(s): row for row, s in enumerate(self.sessions)}
        self.dirty = False

    def _slice(self, row: int, length: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        width = self.mask.shape[1]
        return [
            (layer.keys[row : row + 1, :, width - length :], layer.values[row : row + 1, :, width - length :])
            for layer in self.cache.layers
        ]


class _Step:
    """A forward pass's last-position logits and the cache it grew."""

    def __init__(self, logits: torch.Tensor, cache: DynamicCache) -> None:
        self.logits = logits
        self.cache = cache
        self.layers = cache.layers


def _forward(model, *, cache: DynamicCache, **inputs) -> "_Step":
    out = model(**inputs, **{cache_keyword(type(model)): cache}, use_cache=True)
    grown = cache_of(out)
    return _Step(out.logits[:, -1, :], grown)


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - tensor.shape[2]
    if missing == 0:
        return tensor
    pad = tensor.new_zeros(tensor.shape[0], tensor.shape[1], missing, tensor.shape[3])
    return torch.cat([pad, tensor], dim=2)


class Batcher:
    """Admits sessions first come first served up to ``max_batch`` at once and decodes them
    together. ``submit`` and ``cancel`` may be called from any thread; ``run`` owns the models."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self._lock = threading.Condition()
        self._waiting: collections.deque[Session] = collections.deque()
        self._by_key: dict[bytes, Session] = {}
        self._cohorts: dict[int, Cohort] = {}
        self._token_times: collections.deque[tuple[float, int]] = collections.deque()
        self.served_requests = 0

    # ------------------------------------------------------------------ any thread

    def submit(self, session: Session) -> None:
        with self._lock:
            if session.key in self._by_key:
                raise ValueError("a request with this id is already running; ids must be unique per client")
            self._by_key[session.key] = session
            self._waiting.append(session)
            self._lock.notify()

    def cancel(self, key: bytes) -> bool:
        """True when this call cancelled a running session; False when none runs under ``key``
        or it is already being cancelled (so a requester that went away is counted once)."""
        with self._lock:
            session = self._by_key.get(key)
            if session is None or session.cancelled:
                return False
            session.cancelled = True
            self._lock.notify()
            return True

    def counts(self) -> tuple[int, int]:
        """(active, queued)."""
        with self._lock:
            return sum(len(c.sessions) for c in self._cohorts.values()), len(self._waiting)

    def tokens_per_s(self) -> float:
        with self._lock:
            now = time.monotonic()
            while self._token_times and self._token_times[0][0] < now - TOKENS_WINDOW_S:
                self._token_times.popleft()
            if not self._token_times:
                return 0.0
            span = max(now - self._token_times[0][0], 1.0)
            return sum(n for _, n in self._token_times) / span

    def wake(self) -> None:
        with self._lock:
            self._lock.notify()

    # ------------------------------------------------------------------ the generation thread

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self._lock:
                if not self._waiting and not self._cohorts:
                    self._lock.wait(0.5)
                    continue
            self.step()
        self._end_all("shutdown", "the oracle is shutting down")

    @torch.inference_mode()
    def step(self) -> None:
        """One scheduling round: drop finished sessions, admit waiting ones, decode one token each."""
        self._drop_finished()
        self._admit()
        for key, cohort in list(self._cohorts.items()):
            if cohort.dirty:
                cohort.rebuild()
            if not cohort.sessions:
                del self._cohorts[key]
                continue
            try:
                self._decode(cohort)
            except Exception as exc:  # e.g. out of memory: fail these sessions, keep serving
                log.exception("decoding failed")
                for session in cohort.sessions:
                    self._finish(session, "error", f"{type(exc).__name__}: {exc}")
                del self._cohorts[key]

    def _drop_finished(self) -> None:
        for cohort in self._cohorts.values():
            for session in cohort.sessions:
                if session.cancelled and not session.finished:
                    self._finish(session, "cancelled", "")
            kept = [s for s in cohort.sessions if not s.finished]
            if len(kept) != len(cohort.sessions):
                cohort.sessions = kept
                cohort.dirty = True

    def _admit(self) -> None:
        while True:
            with self._lock:
                active = sum(len(c.sessions) for c in self._cohorts.values())
                if not self._waiting or active >= self.max_batch:
                    return
                session = self._waiting.popleft()
            if session.cancelled:
                self._finish(session, "cancelled", "")
                continue
            try:
                self._prefill(session)
            except Exception as exc:
                log.exception("prefill failed")
                self._finish(session, "error", f"{type(exc).__name__}: {exc}")
                continue
            if session.finished:
                continue
            cohort = self._cohorts.get(id(session.served))
            if cohort is None:
                cohort = self._cohorts[id(session.served)] = Cohort(session.served)
            cohort.sessions.append(session)
            cohort.dirty = True

    def _prefill(self, session: Session) -> None:
        served = session.served
        if session.sampling.seed is not None:
            session.generator = torch.Generator(device=served.device).manual_seed(session.sampling.seed)
        ids = torch.tensor([session.prompt_ids], device=served.device)
        out = _forward(served.model, input_ids=ids, cache=DynamicCache(), logits_to_keep=1)
        session.kv = [(layer.keys, layer.values) for layer in out.layers]
        session.length = ids.shape[1]
        token = self._sample(out.logits, [session])[0]
        self._accept(session, token)

    def _decode(self, cohort: Cohort) -> None:
        sessions = cohort.sessions
        device = cohort.served.device
        ids = torch.tensor([[s.next_token] for s in sessions], device=device)
        positions = torch.tensor([[s.length] for s in sessions], device=device)
        mask = torch.cat([cohort.mask, torch.ones(len(sessions), 1, dtype=cohort.mask.dtype, device=device)], dim=1)
        out = _forward(
            cohort.served.model, input_ids=ids, attention_mask=mask, position_ids=positions, cache=cohort.cache
        )
        cohort.cache, cohort.mask = out.cache, mask
        for session in sessions:
            session.length += 1
        tokens = self._sample(out.logits, sessions)
        for session, token in zip(sessions, tokens):
            self._accept(session, token)
        if any(s.finished for s in sessions):
            cohort.sessions = [s for s in sessions if not s.finished]
            cohort.dirty = True

    def _sample(self, logits: torch.Tensor, sessions: list[Session]) -> list[int]:
        logits = logits.float()
        greedy = logits.argmax(dim=-1).tolist()
        tokens = []
        for row, session in enumerate(sessions):
            sampling = session.sampling
            if sampling.temperature == 0.0:
                tokens.append(greedy[row])
                continue
            probs = torch.softmax(logits[row] / sampling.temperature, dim=-1)
            if sampling.top_p < 1.0:
                ordered, order = probs.sort(descending=True)
                keep = ordered.cumsum(0) - ordered < sampling.top_p  # always keeps the top token
                probs = torch.zeros_like(probs).scatter(0, order[keep], ordered[keep])
            tokens.append(int(torch.multinomial(probs, 1, generator=session.generator)))
        return tokens

    def _accept(self, session: Session, token: int) -> None:
        session.generated.append(token)
        session.next_token = token
        with self._lock:
            self._token_times.append((time.monotonic(), 1))
        stopped = token in (session.served.stop_ids if session.stop_ids is None else session.stop_ids)
        if not stopped:
            text = session.text
            if not text.endswith("\ufffd"):  # half a UTF-8 character: wait for the rest
                delta = text[session.sent_chars :]
                if delta:
                    session.sent_chars = len(text)
                    session.on_delta(session, delta)
        if session.cancelled:
            self._finish(session, "cancelled", "")
        elif stopped:
            self._finish(session, "stop", "")
        elif len(session.generated) >= session.sampling.max_new_tokens:
            self._finish(session, "length", "")

    def _finish(self, session: Session, reason: str, message: str) -> None:
        if session.finished:
            return
        session.finished = True
        session.kv = None
        if reason in ("stop", "length", "cancelled"):
            text = session.text
            if len(text) > session.sent_chars:  # flush a held-back tail
                session.on_delta(session, text[session.sent_chars :])
                session.sent_chars = len(text)
        with self._lock:
            self._by_key.pop(session.key, None)
            self.served_requests += 1
        try:
            session.on_end(session, reason, message)
        except Exception:
            log.exception("a session's end callback failed")

    def _end_all(self, reason: str, message: str) -> None:
        with self._lock:
            waiting = list(self._waiting)
            self._waiting.clear()
        for session in waiting + [s for c in self._cohorts.values() for s in c.sessions]:
            self._finish(session, reason, message)
        self._cohorts.clear()
