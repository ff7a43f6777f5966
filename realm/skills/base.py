"""What every skill family provides: deterministic samples and an exact grader.

A family is the code behind a skill; the skill's YAML (``configs/skills/*.yaml``) names the
family with ``generator:`` and gives the per-level parameters it is called with. Families
register themselves in ``FAMILIES`` under their id.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Protocol

import msgspec


class Sample(msgspec.Struct, frozen=True):
    prompt: str  # what DIO is asked (the user turn)
    answer: str  # the canonical answer (the assistant turn); grades 1.0 against itself
    meta: dict[str, Any] = {}  # facts about the item: operation, width, hint tier, ...


class Grade(msgspec.Struct, frozen=True):
    score: float  # 0..1, partial credit where the family has parts (SY: words right)
    correct: bool  # the whole item passes
    explanation: str = ""  # for a wrong answer: what is wrong, in words


class Family(Protocol):
    id: str  # e.g. "bin", "sy": what a skill YAML's ``generator:`` names
    version: str  # bumped whenever the same seed would give another sample

    def generate(self, params: Mapping[str, Any], rng: random.Random) -> Sample:
        """One sample for a level's ``params``; the same rng state gives the same sample."""

    def grade(self, sample: Sample, response: str) -> Grade:
        """Grade DIO's ``response`` to ``sample`` exactly."""


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    if family.id in FAMILIES:
        raise ValueError(f"skill family {family.id!r} is registered twice")
    FAMILIES[family.id] = family
    return family
