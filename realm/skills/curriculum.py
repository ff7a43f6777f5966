"""Samples for training and evaluation, drawn from a skill at a level.

* ``eval_set``: the frozen eval items of a level (``eval.samples_per_level``, seeded by
  ``eval.seed``); the same on every machine and every run (a checksum test keeps them).
* ``eval_keys``: the canonical keys of every eval item of a skill, at every level. Training
  samples and probes never use a problem whose key is in there.
* ``probe``: fresh items for an eval round, stratified by ``eval.stratify``.
* ``training_examples``: the chats of an idle quest, with a share from lower levels, the
  discrimination and emoji-think profiles, and counts for the quest's lineage.
"""

from __future__ import annotations

import random
import unicodedata
from collections import Counter, defaultdict
from typing import Any

import msgspec

from realm.skills.base import Sample
from realm.skills.profiles import discrimination_chat, emoji_think, uses_emoji
from realm.skills.registry import SkillConfig

MAX_ATTEMPTS = 200  # draws per wanted sample before a generator is declared unable to comply


class GeneratorExhausted(RuntimeError):
    """A generator could not produce a sample that is not an eval item."""


def canonical_key(skill: SkillConfig, sample: Sample) -> str:
    """The problem whatever its notation: the family's own key, else the NFKC prompt."""
    own = getattr(skill.family, "canonical_key", None)
    if own is not None:
        return f"{skill.id}:{own(sample)}"
    return f"{skill.id}:" + " ".join(unicodedata.normalize("NFKC", sample.prompt).split())


def eval_set(skill: SkillConfig, level: int) -> list[Sample]:
    return list(_eval_set(_skill_fingerprint(skill), skill, level))


_EVAL_CACHE: dict[tuple[str, int], tuple[Sample, ...]] = {}


def _eval_set(fingerprint: str, skill: SkillConfig, level: int) -> tuple[Sample, ...]:
    cached = _EVAL_CACHE.get((fingerprint, level))
    if cached is not None:
        return cached
    params = eval_params(skill, level)
    family = skill.family
    rng = random.Random(f"eval:{skill.eval.seed}:{skill.id}:{level}")
    items: list[Sample] = []
    keys: set[str] = set()
    for _ in range(skill.eval.samples_per_level * MAX_ATTEMPTS):
        sample = family.generate(params, rng)
        key = canonical_key(skill, sample)
        if key not in keys:  # distinct where the level has enough problems
            keys.add(key)
            items.append(sample)
        if len(items) == skill.eval.samples_per_level:
            break
    while len(items) < skill.eval.samples_per_level:  # a tiny level: repeats are unavoidable
        items.append(items[len(items) % max(1, len(keys))])
    result = tuple(items)
    _EVAL_CACHE[(fingerprint, level)] = result
    return result


def eval_keys(skill: SkillConfig) -> frozenset[str]:
    fingerprint = _skill_fingerprint(skill)
    cached = _KEYS_CACHE.get(fingerprint)
    if cached is None:
        cached = frozenset(
            canonical_key(skill, s)
            for level in range(1, skill.max_level + 1)
            for s in _eval_set(fingerprint, skill, level)
        )
        _KEYS_CACHE[fingerprint] = cached
    return cached


_KEYS_CACHE: dict[str, frozenset[str]] = {}


def _skill_fingerprint(skill: SkillConfig) -> str:
    family = skill.family
    what = {
        "id": skill.id,
        "gen": skill.generator,
        "v": family.version,
        "levels": skill.levels,
        "max": skill.max_level,
        "interp": skill.interpolate,
        "eval": skill.eval,
    }
    return msgspec.json.encode(what).decode()


class Drawer:
    """Draws samples of one skill that are never eval items, counting what it rejected."""

    def __init__(self, skill: SkillConfig) -> None:
        self.skill = skill
        self.excluded = eval_keys(skill)
        self.rejected: Counter[str] = Counter()  # validator name -> rejections

    def draw(self, level: int, rng: random.Random, params: dict[str, Any] | None = None) -> Sample:
        params = params or eval_params(self.skill, level)
        family = self.skill.family
        for _ in range(MAX_ATTEMPTS):
            sample = family.generate(params, rng)
            if canonical_key(self.skill, sample) in self.excluded:
                self.rejected["eval_overlap"] += 1
                continue
            if family.grade(sample, sample.answer).score != 1.0:
                self.rejected["self_grade"] += 1
                continue
            return sample
        raise GeneratorExhausted(
            f"{self.skill.id} L{level}: {MAX_ATTEMPTS} draws in a row were eval items or failed their own grade"
        )


def probe(skill: SkillConfig, level: int, size: int, seed: Any) -> list[Sample]:
    """``size`` fresh items, drawn equally (round-robin) from each value of ``eval.stratify``."""
    if size <= 0:
        return []
    drawer = Drawer(skill)
    rng = random.Random(f"probe:{skill.id}:{level}:{seed}")
    params = eval_params(skill, level)
    buckets: dict[Any, list[Sample]] = defaultdict(list)
    for _ in range(size * 8):
        sample = drawer.draw(level, rng, params)
        buckets[sample.meta.get(skill.eval.stratify)].append(sample)
    chosen: list[Sample] = []
    strata = sorted(buckets, key=str)
    while len(chosen) < size and any(buckets.values()):
        for stratum in strata:
            if buckets[stratum] and len(chosen) < size:
                chosen.append(buckets[stratum].pop(0))
    return chosen


def training_params(skill: SkillConfig, level: int) -> dict[str, Any]:
    """A level's params for training draws: its ``train:`` sub-table overrides the rest."""
    return skill.eval_and_training_params(level)[1]


def eval_params(skill: SkillConfig, level: int) -> dict[str, Any]:
    """A level's params for eval draws (the frozen set, the probe): without its ``train:`` sub-table."""
    return skill.eval_and_training_params(level)[0]


def describe_level(skill: SkillConfig, level: int, *, training: bool = False) -> tuple[str, ...]:
    """What DIO practises at ``level``, in words from the level's params, longest first (a screen
    or a title takes the first that fits): ``5-bit add, sub, logic, conversions``, ...,
    ``5-bit``. ``training`` describes the training draws (a level's ``train:`` widths). A family
    without ``describe`` is described by the skill's name."""
    params = training_params(skill, level) if training else eval_params(skill, level)
    describe = getattr(skill.family, "describe", None)
    return (describe(params) if describe is not None else ()) or (skill.name,)


def chat(skill: SkillConfig, sample: Sample, answer: str | None = None) -> list[dict]:
    messages = [{"role": "system", "content": skill.prompt.system}] if skill.prompt.system else []
    messages.append({"role": "user", "content": sample.prompt})
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages


def prompt_messages(skill: SkillConfig, sample: Sample) -> list[dict]:
    return chat(skill, sample)


class TrainingBatch(msgspec.Struct):
    examples: list[dict]  # {"messages": [...]} records
    counts: dict[str, int]  # lineage counts: by level, profile, rejections


def training_examples(skill: SkillConfig, level: int, n: int, seed: Any, drawer: Drawer | None = None) -> TrainingBatch:
    """``n`` chats for an idle quest at ``level``, a ``lower_level_share`` of them from below."""
    drawer = drawer or Drawer(skill)
    before = Counter(drawer.rejected)
    rng = random.Random(f"train:{skill.id}:{level}:{seed}")
    training = skill.training
    counts: Counter[str] = Counter()
    examples: list[dict] = []
    params_by_level: dict[int, dict[str, Any]] = {}
    for index in range(n):
        at = level
        if level > 1 and rng.random() < training.lower_level_share:
            at = rng.randint(1, level - 1)
        params = params_by_level.setdefault(at, training_params(skill, at))
        sample = drawer.draw(at, rng, params)
        counts[f"level_{at}"] += 1
        if training.discrimination_share and rng.random() < training.discrimination_share:
            messages = discrimination_chat(skill, sample, rng)
            counts["discrimination"] += 1
        else:
            answer = sample.answer
            if training.emoji_think and uses_emoji(f"{seed}:{index}"):
                answer = emoji_think(sample, rng)
                counts["emoji_think"] += 1
            messages = chat(skill, sample, answer)
            counts["direct"] += 1
        examples.append({"messages": messages})
    for name, total in drawer.rejected.items():
        if total - before.get(name, 0):
            counts[f"rejected_{name}"] = total - before.get(name, 0)
    return TrainingBatch(examples=examples, counts=dict(counts))
