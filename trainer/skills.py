"""The trainer's side of skills: eval rounds, level-ups, idle quests, corrections, lineage.

The daemon calls ``SkillRunner`` between optimizer steps: ``after_step`` runs an eval round
when one is due, ``write_idle_quest`` makes the quest an empty queue trains on. Everything the
runner learns goes out as events through ``emit`` (the daemon's publisher), and into SQLite
(``realm.skills.store``) so progress survives restarts.

When a round is due: every ``skills.eval_every`` steps, postponed whenever evals would take
more than ``skills.max_eval_share`` of the time (eval seconds / train seconds, measured).

With ``skills.eval_on: oracle`` a round saves its checkpoint and an oracle generates the answers
on it while training goes on (``trainer.oracle_eval``); they are collected between steps and
graded and recorded here exactly as a local round's. A failed oracle round runs here instead.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from realm.config import ConfigError, RealmConfig, SkillsConfig
from realm.model.chatml import encode_chat
from realm.model.greedy import generate
from realm.protocol import (
    MAX_GENERATED_CHATS,
    LineageCount,
    LineageCounted,
    Notice,
    SkillEvalItem,
    SkillEvalPoint,
    SkillEvaluated,
    SkillLevelUp,
    SkillsLoaded,
    SkillsState,
    SkillState,
)
from realm.skills import curriculum
from realm.skills.base import Sample
from realm.skills.grading import Verdict, accuracy, grade, should_level_up, strata
from realm.skills.registry import SkillConfig, load_skills
from realm.skills.store import EvalRow, SkillStore
from trainer import lineage

log = logging.getLogger("realm.trainer.skills")

CORRECTION_GENERATOR = "self_correction"
CORRECTION_REPEATS = 4  # each wrong probe item appears this many times in its correction quest
SHUTDOWN_WAIT_S = 30.0  # at stop, how long a round still on the oracle is waited for


def check_mix(config: SkillsConfig) -> None:
    """``ConfigError`` when ``skills.mix`` names a skill the folder does not have. A skill file
    that does not load is ``SkillRunner.start``'s to report: the trainer then goes on without skills."""
    try:
        skills = load_skills(config.folder)
    except ValueError:
        return
    problem = _mix_problem(config, skills)
    if problem:
        raise ConfigError(problem)


def _mix_problem(config: SkillsConfig, skills: dict[str, SkillConfig]) -> str:
    unknown = [skill for skill in config.weights() if skill not in skills]
    if not unknown:
        return ""
    return (
        f"skills.mix: {unknown[0]!r} is not a skill in {config.folder or 'configs/skills'}; "
        f"known: {', '.join(sorted(skills)) or 'none'}"
    )


class _Plan(NamedTuple):
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


class SkillRunner:
    """``save_checkpoint()`` (the daemon's) returns the step of a checkpoint holding the current
    weights, saving one when needed, or None; oracle rounds (``skills.eval_on``) name it."""

    def __init__(self, config: RealmConfig, home, engine, emit, save_checkpoint=None) -> None:
        self._realm_config = config
        self.save_checkpoint = save_checkpoint
        self.oracle = None  # trainer.oracle_eval.OracleTarget when evals go to an oracle
        self._pending = None  # the OracleRound in flight
        self._pending_plans: list[_Plan] = []
        self._handoff_seconds = 0.0
        self._oracle_trouble = ""  # the last oracle failure warned about ("" once it works again)
        self.config = config.skills
        self.home = home
        self.engine = engine
        self.emit = emit
        self.skills: dict[str, SkillConfig] = {}
        self.mix: dict[str, float] = {}
        self.store = SkillStore(home.db)
        self.drawers: dict[str, curriculum.Drawer] = {}
        self.next_eval_step = 0
        self._train_seconds = 0.0
        self._last_eval_step = 0

    # ------------------------------------------------------------------ start-up

    def start(self) -> None:
        self.skills = load_skills(self.config.folder)
        problem = _mix_problem(self.config, self.skills)
        if problem:
            raise ValueError(problem)
        self.mix = {s: w for s, w in self.config.weights().items() if w > 0}
        self.drawers = {s: curriculum.Drawer(self.skills[s]) for s in self.mix}
        self.next_eval_step = self.engine.step + self.config.eval_every
        self._last_eval_step = self.engine.step
        self.emit(SkillsLoaded(skills=self._loaded_state()))
        if self.config.eval_on == "oracle":
            self._connect_oracle()

    @property
    def active(self) -> str:
        return next(iter(self.mix), "")

    def _loaded_state(self) -> SkillsState:
        states = []
        for skill_id in self.mix:
            skill = self.skills[skill_id]
            level, _ = self.store.level(skill_id)
            history = self.store.history(skill_id)
            current = [r for r in history if r.level == level and r.at_level == level]
            states.append(
                SkillState(
                    id=skill.id,
                    name=skill.name,
                    short_name=skill.short_name,
                    icon=skill.icon,
                    color=skill.color,
                    level=level,
                    max_level=skill.max_level,
                    accuracy=current[-1].accuracy if current else None,
                    history=tuple(
                        SkillEvalPoint(level=r.level, step=r.step, accuracy=r.accuracy, probe=r.probe) for r in history
                    ),
                    last_items=tuple(SkillEvalItem(**item) for item in (current[-1].items if current else [])),
                    next_eval_step=self.next_eval_step,
                )
            )
        lineage = tuple(LineageCount(generator=g, validator=v, count=n) for g, v, n in self.store.lineage())
        return SkillsState(active=self.active, skills=tuple(states), lineage=lineage)

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ eval rounds

    def after_step(self, seconds: float) -> None:
        self._train_seconds += seconds
        self._guarded(self._collect_or_start)

    def while_paused(self) -> None:
        """Record an oracle round that has answered. A failed one waits for the resume: its
        fallback is a local eval, which a paused trainer must not run."""
        pending = self._pending
        if pending is not None and pending.done.is_set() and not pending.error:
            self._guarded(self._collect)

    def _collect_or_start(self) -> None:
        if self._pending is not None:
            self._collect()
        if self.mix and self._pending is None and self.engine.step >= self.next_eval_step:
            self.eval_round()

    def _guarded(self, work) -> None:
        try:
            work()
        except Exception as exc:  # an eval must never take the trainer down
            log.exception("skill eval failed")
            self._pending = None
            self.next_eval_step = self.engine.step + self.config.eval_every
            self.notice(f"skill eval failed at step {self.engine.step}: {exc}")

    def eval_round(self, local: bool = False) -> None:
        if not local and self.oracle is not None and self._hand_to_oracle():
            return
        step = self.engine.step
        started = time.perf_counter()
        plans = [self._plan(self.skills[s], step) for s in self.mix]
        results = [self._record(plan, step, self._generate_locally(plan)) for plan in plans]
        self._close_round(step, results, time.perf_counter() - started)

    def _close_round(self, step: int, results, seconds: float, **extra) -> None:
        """Schedule the next round and publish this one's events (``extra``: oracle fields)."""
        self.next_eval_step = step + self._eval_interval(seconds, self.engine.step)
        train_seconds, self._train_seconds = self._train_seconds, 0.0
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
        per_step = self._train_seconds / max(1, step - self._last_eval_step)
        if per_step <= 0 or self.config.max_eval_share <= 0:
            return every
        needed = math.ceil(seconds / (self.config.max_eval_share * per_step))
        return max(every, min(needed, every * 20))

    def _plan(self, skill: SkillConfig, step: int) -> "_Plan":
        level, _ = self.store.level(skill.id)
        frozen = curriculum.eval_set(skill, level)
        preview = (
            curriculum.eval_set(skill, level + 1) if self.config.eval_next_level and level < skill.max_level else []
        )
        probe = curriculum.probe(skill, level, skill.eval.probe_size, seed=step)
        return _Plan(skill, level, frozen, preview, probe)

    def _generate_locally(self, plan: "_Plan") -> list[str]:
        return generate(
            self.engine.unwrapped,
            self.engine.tokenizer,
            plan.chats(),
            max_new_tokens=plan.skill.eval.max_new_tokens,
            batch_size=self.config.eval_batch_size,
        )

    def _record(self, plan: "_Plan", step: int, answers: list[str]):
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
        corrections = self._correction_quest(skill, level, step, [v for v in fresh if not v.correct])
        event = SkillEvaluated(
            skill=skill.id,
            level=level,
            step=step,
            accuracy=row.accuracy,
            probe=row.probe,
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

    # ------------------------------------------------------------------ eval rounds on an oracle

    def _connect_oracle(self) -> None:
        from trainer.oracle_eval import connect

        try:
            self.oracle = connect(self._realm_config, self.home.root)
        except ConfigError as exc:
            self.oracle = None
            text = f"skills.eval_on is oracle, but {exc}; skill evals run on the trainer"
            log.error(text)
            self.emit(Notice(level="error", text=text))

    def _hand_to_oracle(self) -> bool:
        """Save the round's checkpoint and start the oracle thread; False when there is no
        checkpoint to name (the save failed), so the round runs here."""
        from trainer.oracle_eval import OracleRound

        started = time.perf_counter()
        step = self.save_checkpoint() if self.save_checkpoint else None
        if step is None:
            self._oracle_failed(self.engine.step, "no checkpoint of this step could be saved for it")
            return False
        plans = [self._plan(self.skills[s], step) for s in self.mix]
        requests = [(plan.chats(), plan.skill.eval.max_new_tokens) for plan in plans]
        self._pending = OracleRound(self.oracle, step, requests, self.config.eval_oracle_timeout_s).start()
        self._pending_plans = plans
        self._handoff_seconds = time.perf_counter() - started
        self.next_eval_step = step + self.config.eval_every
        return True

    def checkpoints_in_use(self) -> tuple[int, ...]:
        """The step of the checkpoint an oracle round is reading, if one is in flight."""
        pending = self._pending
        return (pending.step,) if pending is not None else ()

    def _collect(self) -> None:
        """Between steps (or while paused, an answered one): record a finished oracle round, or
        evaluate here if it failed."""
        pending = self._pending
        if not pending.done.is_set():
            return
        self._pending = None
        if pending.error:
            self._oracle_failed(pending.step, pending.error)
            self.eval_round(local=True)
            return
        if self._oracle_trouble:
            self._oracle_trouble = ""
            self.emit(Notice(level="info", text=f"skill evals run on oracle {pending.target.node} again"))
        started = time.perf_counter()
        results = [
            self._record(plan, pending.step, answers) for plan, answers in zip(self._pending_plans, pending.answers)
        ]
        seconds = self._handoff_seconds + time.perf_counter() - started
        self._close_round(pending.step, results, seconds, oracle=pending.target.node, oracle_seconds=pending.seconds)

    def _oracle_failed(self, step: int, reason: str) -> None:
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
        pending, wait_s = self._pending, SHUTDOWN_WAIT_S
        if pending is None:
            return
        try:
            if pending.done.wait(wait_s):
                self._collect()
            else:
                self._pending = None
                self._oracle_failed(pending.step, f"no answer within {wait_s:g}s of the trainer stopping")
                self.eval_round(local=True)
        except Exception:
            log.exception("skill eval failed at shutdown")
            self._pending = None

    # ------------------------------------------------------------------ quests

    def write_idle_quest(self, folder: Path, n: int) -> Path | None:
        """An idle quest drawn from the mix at each skill's level, with its lineage sidecar.

        Examples longer than ``train.max_length`` are left out (and counted in the lineage as
        rejected by ``too_long``) rather than handed to a validator that would refuse them;
        None when no example fits.
        """
        step = self.engine.step
        rng = random.Random(f"idle:{step}")
        skill_ids = list(self.mix)
        counts_per_skill: Counter[str] = Counter(rng.choices(skill_ids, weights=[self.mix[s] for s in skill_ids], k=n))
        examples: list[dict] = []
        meta_skills = {}
        counted: list[LineageCount] = []
        for skill_id, count in sorted(counts_per_skill.items()):
            skill = self.skills[skill_id]
            level, _ = self.store.level(skill_id)
            batch = curriculum.training_examples(skill, level, count, seed=f"{step}", drawer=self.drawers[skill_id])
            fitting = self._fitting(batch.examples)
            examples += fitting
            generator = f"{skill.generator}@{skill.family.version}"
            if len(fitting) < len(batch.examples):
                counted.append(
                    LineageCount(generator=generator, validator="too_long", count=len(batch.examples) - len(fitting))
                )
            meta_skills[skill_id] = {
                "level": level,
                "generator": skill.generator,
                "generator_version": skill.family.version,
                "counts": batch.counts,
            }
            counted.append(LineageCount(generator=generator, validator="", count=count))
            counted += _rejections(generator, batch.counts)
        if not examples:
            self._count_lineage(counted)
            self.notice(
                f"no skill example fits train.max_length ({self.engine.config.train.max_length} tokens); "
                "raise it for skill quests. Using the placeholder idle quest"
            )
            return None
        random.Random(f"idle-order:{step}").shuffle(examples)
        top = max(counts_per_skill, key=counts_per_skill.get)
        name = f"idle-{top}-L{meta_skills[top]['level']}-{step:08d}.jsonl"
        meta = {
            "kind": "idle",
            "source": "idle",
            "seed": f"idle:{step}",
            "step": step,
            "examples": len(examples),
            "skills": meta_skills,
        }
        path = self._write_quest(folder, name, examples, meta)
        self._count_lineage(counted)
        return path

    def generated_quest(self, skill_id: str, level: int, count: int, seed: str = "") -> tuple[str, bytes, dict]:
        """A quest of ``count`` chats from one skill at one level, asked for over the bus (the
        TUI's quest board): its file name, content and lineage record, for the quest board to
        admit like an added file; the lineage counts are recorded here. Raises ``ValueError``
        saying what is wrong with the ask."""
        skill = self.skills.get(skill_id)
        if skill is None:
            raise ValueError(f"no skill {skill_id!r}; this trainer knows {', '.join(sorted(self.skills)) or 'none'}")
        if not 1 <= level <= skill.max_level:
            raise ValueError(f"skill {skill_id!r} has levels 1..{skill.max_level}, not {level}")
        if not 1 <= count <= MAX_GENERATED_CHATS:
            raise ValueError(f"count must be between 1 and {MAX_GENERATED_CHATS}, not {count}")
        seed = seed or f"{time.time_ns()}"
        batch = curriculum.training_examples(skill, level, count, seed=f"asked:{seed}")
        name = f"{skill.id}-L{level}-{count}x-{seed[-8:]}.jsonl"
        generator = f"{skill.generator}@{skill.family.version}"
        meta = {
            "kind": "asked",
            "source": "generated",
            "skill": skill.id,
            "level": level,
            "generator": skill.generator,
            "generator_version": skill.family.version,
            "seed": f"asked:{seed}",
            "examples": count,
            "counts": batch.counts,
        }
        self._count_lineage(
            [LineageCount(generator=generator, validator="", count=count), *_rejections(generator, batch.counts)]
        )
        return name, _jsonl(batch.examples).encode(), meta

    def _correction_quest(self, skill: SkillConfig, level: int, step: int, wrong: list[Verdict]) -> int:
        if not wrong or not self.config.corrections:
            return 0
        examples = [{"messages": curriculum.chat(skill, v.sample, v.sample.answer)} for v in wrong] * CORRECTION_REPEATS
        random.Random(f"correction:{skill.id}:{step}").shuffle(examples)
        name = f"correction-{skill.id}-L{level}-{step:08d}.jsonl"
        meta = {
            "kind": "correction",
            "source": "correction",
            "generator": CORRECTION_GENERATOR,
            "source_generator": skill.generator,
            "source_generator_version": skill.family.version,
            "skill": skill.id,
            "level": level,
            "step": step,
            "seed": f"probe:{skill.id}:{level}:{step}",
            "examples": len(examples),
            "wrong_items": len(wrong),
            "repeats": CORRECTION_REPEATS,
        }
        self._write_quest(self.home.queued("high"), name, examples, meta)
        self._count_lineage([LineageCount(generator=CORRECTION_GENERATOR, validator="", count=len(examples))])
        return len(wrong)

    def _fitting(self, examples: list[dict]) -> list[dict]:
        limit = self.engine.config.train.max_length
        # encode one token past the limit: encode_chat truncates, so a fitting example stays shorter
        lengths = [len(encode_chat(self.engine.tokenizer, ex["messages"], limit + 1).input_ids) for ex in examples]
        return [example for example, length in zip(examples, lengths) if length <= limit]

    def _write_quest(self, folder: Path, name: str, examples: list[dict], meta: dict) -> Path:
        return lineage.write_quest(self.home, folder, name, _jsonl(examples), meta)

    def _count_lineage(self, counts: list[LineageCount]) -> None:
        for c in counts:
            self.store.count(c.generator, c.validator, c.count)
        if counts:
            self.emit(LineageCounted(counts=tuple(counts)))

    def notice(self, text: str) -> None:
        self.emit(Notice(level="warning", text=text))


def _jsonl(examples: list[dict]) -> str:
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)


def _rejections(generator: str, counts: dict[str, int]) -> list[LineageCount]:
    """The lineage rows for what a drawer's validators rejected (``rejected_NAME`` counts)."""
    return [
        LineageCount(generator=generator, validator=key[len("rejected_") :], count=value)
        for key, value in counts.items()
        if key.startswith("rejected_")
    ]


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
