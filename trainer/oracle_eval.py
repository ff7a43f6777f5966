"""Skill evals handed to an oracle (``skills.eval_on: oracle``).

The trainer saves the round's checkpoint; an ``OracleRound`` thread asks the oracle to answer
the round's chats on that checkpoint (named by its ledger step, in the skill-eval form of
``GenerateRequest``) while training goes on. The trainer collects the answers between steps and
grades them exactly as a local round does (``trainer.skills``). An oracle that is unreachable,
refuses or runs past ``skills.eval_oracle_timeout_s`` leaves ``error`` set, and the trainer
evaluates the round itself instead.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from realm.protocol import Sampling

log = logging.getLogger("realm.trainer.skills")


@dataclass(frozen=True)
class OracleTarget:
    """The oracle evals go to: its registry name and a client on its control endpoint."""

    node: str
    client: object  # realm.oracle.client.OracleClient


def connect(config, home) -> OracleTarget:
    """The oracle named by ``skills.eval_oracle`` (else ``oracle.node``, else the first listed),
    found through the host registry like every other command. Raises ``ConfigError``."""
    from realm.hosts import connect_oracle, oracle_node
    from realm.oracle.client import OracleClient

    name = config.skills.eval_oracle or None
    node = oracle_node(config, home, name)[0]
    _, control, setup = connect_oracle(config, home, name)
    client = OracleClient(control, timeout_s=config.bus.timeout_s, retries=config.bus.retries, socket_setup=setup)
    return OracleTarget(node=node, client=client)


class OracleRound:
    """One round's generation on an oracle thread. ``requests`` holds, per skill, its chats and
    its answer budget; when ``done`` is set, ``answers`` has one list of texts per request, or
    ``error`` says why not."""

    def __init__(
        self, target: OracleTarget, step: int, requests: list[tuple[list[list[dict]], int]], timeout_s: float
    ) -> None:
        self.target = target
        self.step = step
        self.requests = requests
        self.timeout_s = timeout_s
        self.answers: list[list[str]] = []
        self.error = ""
        self.seconds = 0.0
        self.done = threading.Event()
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="realm-oracle-eval", daemon=True)

    def start(self) -> "OracleRound":
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        try:
            for chats, max_new_tokens in self.requests:
                result = self.target.client.generate(
                    [],
                    Sampling(temperature=0.0, max_new_tokens=max_new_tokens),
                    checkpoint=str(self.step),
                    chats=chats,
                    wait_s=max(0.1, deadline - time.monotonic()),
                )
                if len(result.texts) != len(chats):
                    raise ValueError(f"the oracle sent {len(result.texts)} answers for {len(chats)} chats")
                self.answers.append(list(result.texts))
        except Exception as exc:  # any failure means: evaluate on the trainer instead
            self.error = str(exc) or type(exc).__name__
            log.debug("oracle eval at step %d failed", self.step, exc_info=True)
        finally:
            self.seconds = time.perf_counter() - self._started
            self.done.set()
