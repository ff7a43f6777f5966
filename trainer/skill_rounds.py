"""Eval rounds: each skill's samples planned, answered, graded, stored, and the level-up decided.

A round is due every ``skills.eval_every`` steps, postponed whenever evals would take more
than ``skills.max_eval_share`` of the time (eval seconds / train seconds, measured).
"""

from __future__ import annotations

import logging
import math
import time
from typing import NamedTuple

from realm.config import SkillsConfig
from realm.model.greedy import generate
from realm.protocol import SkillEvalItem, SkillEvaluated, SkillLevelUp
from realm.skills import curriculum
from realm.skills.base import Sample
from realm.skills.grading import Verdict, accuracy, answer_budget, grade, should_level_up, strata
from realm.skills.history import EvalRow, SkillStore
from realm.skills.registry import SkillConfig

log = logging.getLogger("realm.trainer.skills")


class RoundPlan(NamedTuple):
    """One skill's samples for a round: its frozen set, the next level's, and a fresh probe."""

    skill: SkillConfig
    level: int
    frozen: list[Sample]
    preview: list[Sample]
    probe: list[Sample]

    @property
    def samples(self) -> list[Sample]:
        return self.frozen + self.preview + self.probe

    def chats(self) -> list[list[dict]]:
        return [curriculum.prompt_messages(self.skill, s) for s in self.samples]

    def budget(self, tokenizer) -> int:
        return answer_budget(self.skill, tokenizer, self.samples)


class EvalRounds:
    """Plans, grades and records rounds for the skills in ``mix``, and schedules the next one.

    ``correction_quest(skill, level, step, wrong)`` writes the quest for a round's wrong probe
    items and returns how many it covers."""

    def __init__(
        self,
        config: SkillsConfig,
        engine,
        store: SkillStore,
        emit,
        skills: dict[str, SkillConfig],
        mix: dict[str, float],
        correction_quest,
    ) -> None:
        self.config = config
        self.engine = engine
        self.store = store
        self.emit = emit
        self.skills = skills
        self.mix = mix
        self.correction_quest = correction_quest
        self.next_eval_step = engine.step + config.eval_every
        self.train_seconds = 0.0
        self._last_eval_step = engine.step

    def run_locally(self) -> None:
        step = self.engine.step
        started = time.perf_counter()
        plans = self.plans(step)
        results = [self.record(plan, step, self._generate_locally(plan)) for plan in plans]
        self.close_round(step, results, time.perf_counter() - started)

    def plans(self, step: int) -> list[RoundPlan]:
        return [self._plan(self.skills[s], step) for s in self.mix]

    def close_round(self, step: int, results, seconds: float, **extra) -> None:
        """Schedule the next round and publish this one's events (``extra``: oracle fields)."""
        self.next_eval_step = step + self._eval_interval(seconds, self.engine.step)
        train_seconds, self.train_seconds = self.train_seconds, 0.0
        self._last_eval_step = self.engine.step
        for event, level_up in results:
            log.info(
                "skill %s L%d at step %d: eval %.0f%%, probe %s, next L%d %s (%.1fs; next round at step %d)%s",
                event.skill,
                event.level,
                event.step,
                100 * event.accuracy,
                "-" if event.probe is None else f"{100 * event.probe:.0f}%",
                event.level + 1,
                "-" if event.next_accuracy is None else f"{100 * event.next_accuracy:.0f}%",
                seconds,
                self.next_eval_step,
                f"; answers from oracle {extra['oracle']} in {extra['oracle_seconds']:.1f}s" if extra else "",
            )
            event = _replace(
                event,
                next_eval_step=self.next_eval_step,
                seconds=seconds / len(results),
                train_seconds=train_seconds / len(results),
                **extra,
            )
            self.emit(event)
            if level_up is not None:
                self.emit(level_up)

    def _eval_interval(self, seconds: float, step: int) -> int:
        """``eval_every``, stretched so evals stay under ``max_eval_share`` of the time."""
        every = self.config.eval_every
        per_step = self.train_seconds / max(1, step - self._last_eval_step)
        if per_step <= 0 or self.config.max_eval_share <= 0:
            return every
        needed = math.ceil(seconds / (self.config.max_eval_share * per_step))
        return max(every, min(needed, every * 20))

    def _plan(self, skill: SkillConfig, step: int) -> RoundPlan:
        level, _ = self.store.level(skill.id)
        frozen = curriculum.eval_set(skill, level)
        preview = (
            curriculum.eval_set(skill, level + 1) if self.config.eval_next_level and level < skill.max_level else []
        )
        probe = curriculum.probe(skill, level, skill.eval.probe_size, seed=step)
        return RoundPlan(skill, level, frozen, preview, probe)

    def _generate_locally(self, plan: RoundPlan) -> list[str]:
        return generate(
            self.engine.unwrapped,
            self.engine.tokenizer,
            plan.chats(),
            max_new_tokens=plan.budget(self.engine.tokenizer),
            batch_size=self.config.eval_batch_size,
        )

    def record(self, plan: RoundPlan, step: int, answers: list[str]):
        """Grade one skill's answers, store the round, and say what it gives: (event, level-up or None)."""
        skill, level = plan.skill, plan.level
        verdicts = [grade(skill, s, a) for s, a in zip(plan.samples, answers)]
        at, nxt, fresh = (
            verdicts[: len(plan.frozen)],
            verdicts[len(plan.frozen) : len(plan.frozen) + len(plan.preview)],
            verdicts[len(plan.frozen) + len(plan.preview) :],
        )
        items = [_item(v) for v in at]
        row = EvalRow(
            skill.id,
            level,
            level,
            step,
            time.time(),
            accuracy(at),
            accuracy(fresh) if fresh else None,
            strata(skill, fresh),
            [msgspec_to_dict(i) for i in items],
            len(fresh),
        )
        self.store.record(row)
        if nxt:
            self.store.record(
                EvalRow(
                    skill.id,
                    level + 1,
                    level,
                    step,
                    time.time(),
                    accuracy(nxt),
                    None,
                    {},
                    [msgspec_to_dict(_item(v)) for v in nxt],
                )
            )
        corrections = self.correction_quest(skill, level, step, [v for v in fresh if not v.correct])
        event = SkillEvaluated(
            skill=skill.id,
            level=level,
            step=step,
            accuracy=row.accuracy,
            probe=row.probe,
            probe_items=row.probe_items,
            next_accuracy=accuracy(nxt) if nxt else None,
            items=tuple(items),
            corrections=corrections,
        )
        up, reason = should_level_up(skill, self.store.rounds_at(skill.id, level))
        level_up = None
        if up and level < skill.max_level:
            self.store.set_level(skill.id, level + 1, step)
            level_up = SkillLevelUp(skill=skill.id, level=level + 1, step=step, reason=reason)
            log.info("skill %s: L%d -> L%d at step %d (%s)", skill.id, level, level + 1, step, reason)
        return event, level_up


def _item(v: Verdict) -> SkillEvalItem:
    return SkillEvalItem(
        prompt=v.sample.prompt,
        expected=v.sample.answer,
        response=v.response,
        correct=v.correct,
        explanation=v.explanation,
    )


def msgspec_to_dict(item: SkillEvalItem) -> dict:
    return {
        "prompt": item.prompt,
        "expected": item.expected,
        "response": item.response,
        "correct": item.correct,
        "explanation": item.explanation,
    }


def _replace(event, **changes):
    from msgspec.structs import replace

    return replace(event, **changes)
