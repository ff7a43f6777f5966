"""Every level of the shipped skills fits DIO-nano's default train.max_length, or idle quests
at that level would drop their examples as too long and DIO could never climb past it."""

from __future__ import annotations

import random

import pytest

from realm.config import RealmConfig
from realm.model.chatml import encode_chat
from realm.model.loading import load_tokenizer
from realm.skills import curriculum
from realm.skills.registry import load_skills

SKILLS = load_skills()


@pytest.mark.parametrize("skill_id", sorted(SKILLS))
def test_every_level_of_a_shipped_skill_fits_the_default_max_length(skill_id):
    skill = SKILLS[skill_id]
    limit = RealmConfig().train.max_length
    tokenizer = load_tokenizer(RealmConfig().model.name)
    rng = random.Random(skill_id)
    longest = {}
    for level in sorted({1, *range(5, skill.max_level + 1, 5), skill.max_level}):
        params = curriculum.training_params(skill, level)
        samples = [skill.family.generate(params, rng) for _ in range(3)]
        longest[level] = max(
            len(encode_chat(tokenizer, curriculum.chat(skill, s, s.answer), limit + 1).input_ids) for s in samples
        )
    too_long = {level: n for level, n in longest.items() if n > limit}
    assert not too_long, f"{skill_id}: levels over train.max_length {limit}: {too_long}"
