"""The optional vLLM backend (``oracle.backend: vllm``): vLLM's engine does the batching and the
KV cache; the worker keeps everything else (requests, streaming, cancel, hot swap, evals).

UNTESTED in this project: vLLM needs a CUDA GPU and is not installed in CI. What CI checks is
that asking for it without vLLM installed stops the oracle at start-up with a clear error. The
code follows vLLM's documented ``LLMEngine`` API: ``from_engine_args(EngineArgs(...))``,
``add_request(id, {"prompt_token_ids": ...}, SamplingParams(...))``, ``step()`` returning
``RequestOutput``s with cumulative ``outputs[0].token_ids``, and ``abort_request([id])``.

Each loaded checkpoint is its own engine taking ``oracle.vllm_memory_share`` of the GPU's
memory; a hot swap holds two while the new one loads, and guests (``oracle.guest_models``) one
each, so keep ``share x (2 + guest_models)`` under 1.
"""

from __future__ import annotations

import logging
from pathlib import Path

from realm.errors import RealmError
from realm.oracle.generation import Batcher, Cohort, Served, Session

log = logging.getLogger("realm.oracle")


class BackendUnavailable(RealmError):
    """The configured generation backend cannot run here."""


def require_vllm():
    try:
        import vllm
    except ImportError:
        raise BackendUnavailable(
            "oracle.backend is vllm, but vLLM is not installed here: `pip install vllm` (it needs a CUDA GPU), "
            "or set oracle.backend: native"
        ) from None
    return vllm


def load_served(config, folder: Path, *, step: int, name: str, source: str) -> Served:
    """A checkpoint folder (weights and tokenizer) as a vLLM engine behind a ``Served``."""
    from realm.model.loading import load_tokenizer, resolve_device

    vllm = require_vllm()
    oracle = config.oracle
    args = vllm.EngineArgs(
        model=str(folder),
        tokenizer=str(folder),
        dtype=oracle.dtype,
        gpu_memory_utilization=oracle.vllm_memory_share,
        max_num_seqs=oracle.max_batch,
    )
    engine = vllm.LLMEngine.from_engine_args(args)
    tokenizer = load_tokenizer(str(folder))
    stop_ids = Served.stop_ids_of(tokenizer, getattr(engine.model_config.hf_config, "eos_token_id", None))
    return Served(engine, tokenizer, step, name, source, stop_ids, resolve_device(oracle.device))


class VLLMBatcher(Batcher):
    """The ``Batcher``'s queue, admission, streaming and cancel, with decoding done by each
    checkpoint's vLLM engine: a session is one vLLM request, ``step`` is one engine step."""

    def _prefill(self, session: Session) -> None:
        vllm = require_vllm()
        sampling = session.sampling
        stops = session.served.stop_ids if session.stop_ids is None else session.stop_ids
        params = vllm.SamplingParams(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_new_tokens,
            seed=sampling.seed,
            stop_token_ids=sorted(stops),
            ignore_eos=True,
            detokenize=False,
        )
        session.served.model.add_request(_request_id(session), {"prompt_token_ids": session.prompt_ids}, params)

    def step(self) -> None:
        self._drop_finished()
        self._admit()
        for key, cohort in list(self._cohorts.items()):
            cohort.sessions = [s for s in cohort.sessions if not s.finished]
            if not cohort.sessions:
                del self._cohorts[key]
                continue
            try:
                self._engine_step(cohort)
            except Exception as exc:
                log.exception("vLLM step failed")
                for session in cohort.sessions:
                    self._finish(session, "error", f"{type(exc).__name__}: {exc}")
                del self._cohorts[key]

    def _engine_step(self, cohort: Cohort) -> None:
        sessions = {_request_id(s): s for s in cohort.sessions}
        for output in cohort.served.model.step():
            session = sessions.get(output.request_id)
            if session is None:
                continue
            completion = output.outputs[0]
            for token in list(completion.token_ids)[len(session.generated) :]:
                if session.finished:
                    break
                self._accept(session, int(token))
            if output.finished and not session.finished:
                self._finish(session, "length" if completion.finish_reason == "length" else "stop", "")

    def _finish(self, session: Session, reason: str, message: str) -> None:
        if not session.finished:
            try:  # ended here (cancel, stop, shutdown) before vLLM ended it: free its slot
                session.served.model.abort_request([_request_id(session)])
            except Exception:
                log.debug("abort_request failed", exc_info=True)
        super()._finish(session, reason, message)


def _request_id(session: Session) -> str:
    return session.key.decode("utf-8", "replace")
