"""Eval rounds on an oracle (``skills.eval_on: oracle``): a round saves its checkpoint and an
oracle generates the answers on it while training goes on (``trainer.oracle_eval``); they are
collected between steps and graded and recorded exactly as a local round's. A failed oracle
round runs on the trainer instead.
"""

from __future__ import annotations

import logging
import time

from realm.config import ConfigError, RealmConfig
from realm.protocol import Notice
from trainer.skill_rounds import EvalRounds, RoundPlan

log = logging.getLogger("realm.trainer.skills")

SHUTDOWN_WAIT_S = 30.0  # at stop, how long a round still on the oracle is waited for


class OracleRounds:
    """Hands rounds to an oracle and collects them. ``save_checkpoint()`` (the daemon's) returns
    the step of a checkpoint holding the current weights, saving one when needed, or None;
    ``notice(text)`` warns on the bus."""

    def __init__(self, config: RealmConfig, home, engine, rounds: EvalRounds, emit, notice, save_checkpoint) -> None:
        self._realm_config = config
        self.config = config.skills
        self.home = home
        self.engine = engine
        self.rounds = rounds
        self.emit = emit
        self.notice = notice
        self.save_checkpoint = save_checkpoint
        self.target = None  # trainer.oracle_eval.OracleTarget when evals go to an oracle
        self.pending = None  # the OracleRound in flight
        self._pending_plans: list[RoundPlan] = []
        self._handoff_seconds = 0.0
        self._oracle_trouble = ""  # the last oracle failure warned about ("" once it works again)

    def connect(self) -> None:
        from trainer.oracle_eval import connect

        try:
            self.target = connect(self._realm_config, self.home.root)
        except ConfigError as exc:
            self.target = None
            text = f"skills.eval_on is oracle, but {exc}; skill evals run on the trainer"
            log.error(text)
            self.emit(Notice(level="error", text=text))

    def hand_over(self) -> bool:
        """Save the round's checkpoint and start the oracle thread; False when there is no
        checkpoint to name (the save failed), so the round runs here."""
        from trainer.oracle_eval import OracleRound

        started = time.perf_counter()
        step = self.save_checkpoint() if self.save_checkpoint else None
        if step is None:
            self._failed(self.engine.step, "no checkpoint of this step could be saved for it")
            return False
        plans = self.rounds.plans(step)
        requests = [(plan.chats(), plan.budget(self.engine.tokenizer)) for plan in plans]
        self.pending = OracleRound(self.target, step, requests, self.config.eval_oracle_timeout_s).start()
        self._pending_plans = plans
        self._handoff_seconds = time.perf_counter() - started
        self.rounds.next_eval_step = step + self.config.eval_every
        return True

    def checkpoints_in_use(self) -> tuple[int, ...]:
        """The step of the checkpoint an oracle round is reading, if one is in flight."""
        pending = self.pending
        return (pending.step,) if pending is not None else ()

    def collect(self) -> None:
        """Between steps (or while paused, an answered one): record a finished oracle round, or
        evaluate here if it failed."""
        pending = self.pending
        if not pending.done.is_set():
            return
        self.pending = None
        if pending.error:
            self._failed(pending.step, pending.error)
            self.rounds.run_locally()
            return
        if self._oracle_trouble:
            self._oracle_trouble = ""
            self.emit(Notice(level="info", text=f"skill evals run on oracle {pending.target.node} again"))
        started = time.perf_counter()
        results = [
            self.rounds.record(plan, pending.step, answers)
            for plan, answers in zip(self._pending_plans, pending.answers)
        ]
        seconds = self._handoff_seconds + time.perf_counter() - started
        self.rounds.close_round(
            pending.step, results, seconds, oracle=pending.target.node, oracle_seconds=pending.seconds
        )

    def _failed(self, step: int, reason: str) -> None:
        """Warn (once per distinct reason on the bus; every time in the log)."""
        text = (
            f"oracle eval of step {step} failed: {reason}; "
            f"this round is evaluated on the trainer at step {self.engine.step}"
        )
        log.warning(text)
        if reason != self._oracle_trouble:
            self._oracle_trouble = reason
            self.notice(text)

    def finish(self) -> None:
        """At shutdown: collect a round still on the oracle (waiting up to ``SHUTDOWN_WAIT_S``),
        so no round is lost; one that does not come back in time is evaluated here."""
        pending, wait_s = self.pending, SHUTDOWN_WAIT_S
        if pending is None:
            return
        try:
            if pending.done.wait(wait_s):
                self.collect()
            else:
                self.pending = None
                self._failed(pending.step, f"no answer within {wait_s:g}s of the trainer stopping")
                self.rounds.run_locally()
        except Exception:
            log.exception("skill eval failed at shutdown")
            self.pending = None
