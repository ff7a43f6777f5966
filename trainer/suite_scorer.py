"""Every checkpoint scored on the evaluation suite (``trainer.suite``), and the champion that
the scores make, published as they change."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import msgspec

from realm.config import RealmConfig
from realm.home import Home
from realm.protocol import ChampionChanged, CheckpointScored, Notice
from realm.vault.champion import board, champion
from trainer import suite as evaluation_suite

log = logging.getLogger("realm.trainer")

# Test hook: seconds to sleep inside a suite scoring (scored, not yet recorded), so a test can
# SIGKILL the trainer mid-scoring deterministically. Unset in normal use.
SCORE_PAUSE_ENV = "REALM_TEST_SCORE_PAUSE_S"


class SuiteScorer:
    """Scores the engine's weights as a checkpoint is saved, once per suite version."""

    def __init__(
        self,
        home: Home,
        ledger,
        engine,
        emit,
        metrics_log,
        *,
        config: Callable[[], RealmConfig],
        skills: Callable[[], list],
    ) -> None:
        self.home = home
        self.ledger = ledger
        self.engine = engine
        self.emit = emit
        self.metrics_log = metrics_log
        self.config = config  # the live config
        self.skills = skills  # the skills in the mix, whose frozen items the suite holds
        best = champion(ledger, config().champion)
        self.champion = best.step if best else None  # the champion last published
        self._suite: evaluation_suite.Suite | None = None
        self._suite_stamp: tuple | None = None

    def score(self, step: int) -> None:
        """Score the weights saved as ``step`` (the engine's own) on the evaluation suite, once
        per suite version. The score is one ledger row, written whole or not at all."""
        suite = self.suite()
        if suite.empty or self.ledger.score_of(step, suite.version) is not None:
            return
        started = time.perf_counter()
        try:
            result = evaluation_suite.score(suite, self.engine, self.config().skills.eval_batch_size)
        except Exception as exc:  # a failed evaluation must not end training: the checkpoint stays unranked
            log.exception("suite evaluation failed")
            self.emit(Notice(level="error", text=f"checkpoint {step}: suite evaluation failed: {exc}"))
            return
        seconds = time.perf_counter() - started
        if os.environ.get(SCORE_PAUSE_ENV):
            time.sleep(float(os.environ[SCORE_PAUSE_ENV]))
        if self.ledger.record_score(step, result, time.time()):
            self.emit(CheckpointScored(step=step, suite=result, seconds=seconds))
            self.metrics_log.write(
                {
                    "kind": "suite",
                    "time": time.time(),
                    "step": step,
                    "seconds": seconds,
                    **msgspec.structs.asdict(result),
                }
            )
        self.publish_champion()

    def suite(self) -> evaluation_suite.Suite:
        """The suite, rebuilt when a validation file or the skill mix changed."""
        skills = self.skills()
        stamp = (evaluation_suite.folder_stamp(self.home.validation), tuple(s.id for s in skills))
        if self._suite is None or stamp != self._suite_stamp:
            old = self._suite.version if self._suite else None
            self._suite = evaluation_suite.build(self.home.validation, self.config(), self.engine.tokenizer, skills)
            self._suite_stamp = stamp
            for problem in self._suite.problems:
                self.emit(Notice(level="warning", text=f"evaluation suite: {problem}; left out"))
            if old is not None and old != self._suite.version:
                text = (
                    f"evaluation suite changed ({old} -> {self._suite.version}): checkpoints are ranked "
                    "against others scored on the new suite only"
                )
                self.emit(Notice(level="info", text=text))
        return self._suite

    def publish_champion(self) -> None:
        best = board(self.ledger, self.config().champion)
        step = best[0].checkpoint.step if best and best[0].rank == 1 else None
        if step != self.champion:
            self.champion = step
            self.emit(ChampionChanged(step=step, score=best[0].score if step is not None else None))
