"""Grading a skill: a model's answers judged against the samples, the accuracy of a round, and
the level-up rule over the rounds at a level.

The trainer's eval rounds (answered locally or by an oracle), the evaluation suite and
``realm skills eval`` all grade here, so an answer gets the same verdict wherever it was generated.
"""

from __future__ import annotations

import math
from collections import defaultdict

from realm.model.chatml import text_ids
from realm.model.greedy import generate
from realm.skills import curriculum
from realm.skills.base import Sample
from realm.skills.history import EvalRow
from realm.skills.profiles import ProtocolError, strip_protocol
from realm.skills.registry import SkillConfig


class Verdict:
    __slots__ = ("sample", "response", "correct", "explanation")

    def __init__(self, sample: Sample, response: str, correct: bool, explanation: str) -> None:
        self.sample, self.response, self.correct, self.explanation = sample, response, correct, explanation


def grade(skill: SkillConfig, sample: Sample, response: str) -> Verdict:
    """Grade ``response``, unwrapping the emoji-think protocol first (malformed: wrong)."""
    try:
        text = strip_protocol(response)
    except ProtocolError as exc:
        return Verdict(sample, response, False, f"protocol: {exc}")
    result = skill.family.grade(sample, text)
    return Verdict(sample, response, result.correct, result.explanation)


ANSWER_HEADROOM = 1.25  # a wrong answer may run longer than the right one and is still graded whole
ANSWER_EXTRA_TOKENS = 16  # the stop token and an emoji-think wrapping


def answer_budget(skill: SkillConfig, tokenizer, samples: list[Sample]) -> int:
    """Tokens each greedy answer of ``samples`` may take: ``eval.max_new_tokens``, or more where the
    longest expected answer needs it. An answer cut by the budget is graded wrong for the eval's
    sake, not DIO's (BIN's column answers outgrow a fixed budget from L4 on)."""
    longest = max((len(text_ids(tokenizer, s.answer)) for s in samples), default=0)
    return max(skill.eval.max_new_tokens, math.ceil(longest * ANSWER_HEADROOM) + ANSWER_EXTRA_TOKENS)


def evaluate(skill: SkillConfig, model, tokenizer, samples: list[Sample], batch_size: int = 64) -> list[Verdict]:
    prompts = [curriculum.prompt_messages(skill, s) for s in samples]
    budget = answer_budget(skill, tokenizer, samples)
    outputs = generate(model, tokenizer, prompts, max_new_tokens=budget, batch_size=batch_size)
    return [grade(skill, s, o) for s, o in zip(samples, outputs)]


def accuracy(verdicts: list[Verdict]) -> float:
    return sum(v.correct for v in verdicts) / len(verdicts) if verdicts else 0.0


def strata(skill: SkillConfig, verdicts: list[Verdict]) -> dict[str, float]:
    groups: dict[str, list[Verdict]] = defaultdict(list)
    for v in verdicts:
        groups[str(v.sample.meta.get(skill.eval.stratify))].append(v)
    return {name: accuracy(group) for name, group in sorted(groups.items())}


def should_level_up(skill: SkillConfig, rounds: list[EvalRow]) -> tuple[bool, str]:
    """The progression rule (see _template.yaml) over the rounds at the current level, oldest first."""
    rule = skill.progression
    window = rounds[-rule.window :]
    if len(window) < rule.window:
        return False, f"{len(window)}/{rule.window} rounds at this level"
    low = [r.accuracy for r in window if r.accuracy < rule.threshold]
    if low:
        return False, f"eval below {rule.threshold:.0%} in the last {rule.window} rounds"
    last = window[-1]
    if last.probe is not None:
        if last.probe < rule.probe_threshold:
            return False, f"probe {last.probe:.0%} < {rule.probe_threshold:.0%}"
        weak = [name for name, acc in last.strata.items() if acc < rule.stratum_floor]
        if weak:
            return False, f"probe stratum {weak[0]} below {rule.stratum_floor:.0%}"
    return True, f"{rule.window} evals >= {rule.threshold:.0%}" + (
        f", probe {last.probe:.0%}" if last.probe is not None else ""
    )
