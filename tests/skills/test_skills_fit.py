"""Every level of the shipped skills fits DIO-nano's default train.max_length, or idle quests
at that level would drop their examples as too long and DIO could never climb past it; and every
expected answer fits the eval's greedy budget, or a right answer would be cut and graded wrong."""

from __future__ import annotations

import random

import pytest

from realm.config import RealmConfig
from realm.model.chatml import encode_chat, text_ids
from realm.model.loading import load_model, load_tokenizer
from realm.skills import curriculum
from realm.skills.grading import answer_budget, evaluate
from realm.skills.registry import load_skills

SKILLS = load_skills()
SAMPLES_A_LEVEL = 30  # training draws vary in width, op and tier: a long one must be met


@pytest.mark.parametrize("skill_id", sorted(SKILLS))
def test_every_level_of_a_shipped_skill_fits_the_default_max_length(skill_id):
    skill = SKILLS[skill_id]
    limit = RealmConfig().train.max_length
    tokenizer = load_tokenizer(RealmConfig().model.name)
    rng = random.Random(skill_id)
    longest = {}
    for level in range(1, skill.max_level + 1):
        params = curriculum.training_params(skill, level)
        samples = [skill.family.generate(params, rng) for _ in range(SAMPLES_A_LEVEL)]
        longest[level] = max(
            len(encode_chat(tokenizer, curriculum.chat(skill, s, s.answer), limit + 1).input_ids) for s in samples
        )
    too_long = {level: n for level, n in longest.items() if n > limit}
    assert not too_long, f"{skill_id}: levels over train.max_length {limit}: {too_long}"


@pytest.mark.parametrize("skill_id", sorted(SKILLS))
def test_every_frozen_answer_fits_the_eval_budget_of_its_level(skill_id):
    """An expected answer longer than the greedy budget would be cut and graded wrong whatever DIO
    knows: BIN's 5-bit column additions (L4) need 51 tokens, and a fixed budget of 48 held DIO at L4."""
    skill = SKILLS[skill_id]
    config = RealmConfig()
    tokenizer = load_tokenizer(config.model.name)
    short = {}
    for level in range(1, skill.max_level + 1):
        frozen = curriculum.eval_set(skill, level)
        budget = answer_budget(skill, tokenizer, frozen)
        needed = max(len(text_ids(tokenizer, s.answer)) + 1 for s in frozen)  # and the stop token
        if needed > budget or budget > config.oracle.max_new_tokens:
            short[level] = (needed, budget)
    assert not short, f"{skill_id}: levels whose answers (tokens needed, budget) do not fit: {short}"


def test_evaluate_lets_an_answer_run_past_the_skill_budget_when_the_expected_answer_is_longer():
    """A real random-init model rarely stops, so its answers run to the budget: at BIN L4 the
    budget must exceed ``eval.max_new_tokens`` (48), or every long answer is cut."""
    skill = SKILLS["bin"]
    model, tokenizer = load_model(RealmConfig().model, seed=1)
    samples = [s for s in curriculum.eval_set(skill, 4) if len(text_ids(tokenizer, s.answer)) > 48]
    assert samples, "BIN L4's frozen set has an answer longer than 48 tokens"
    verdicts = evaluate(skill, model, tokenizer, samples)
    lengths = [len(text_ids(tokenizer, v.response)) for v in verdicts]
    assert max(lengths) > max(len(text_ids(tokenizer, s.answer)) for s in samples)
