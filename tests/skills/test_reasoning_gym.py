"""The reasoning-gym bridge: a YAML skill over a reasoning-gym dataset (needs the dev extra)."""

from __future__ import annotations

import random

import pytest

from realm.skills import curriculum
from realm.skills.registry import SKILLS_DIR, SkillConfigError, load_skill, load_skills

EXAMPLE = SKILLS_DIR / "examples" / "arith.yaml"


def test_the_example_skill_interpolates_its_keyframes_into_the_dataset_config():
    skill = load_skill(EXAMPLE)
    assert skill.params(1)["max_digits"] == 1 and skill.params(10)["max_digits"] == 4
    digits = [skill.params(level)["max_digits"] for level in range(1, 11)]
    assert digits == sorted(digits) and len(set(digits)) == 4
    assert skill.params(5)["dataset"] == "basic_arithmetic"  # inherited, not interpolated


def test_samples_grade_by_score_answer_and_are_deterministic():
    skill = load_skill(EXAMPLE)
    for level in (1, 6, 10):
        params = curriculum.eval_params(skill, level)
        a = [skill.family.generate(params, random.Random(level)) for _ in range(5)]
        b = [skill.family.generate(params, random.Random(level)) for _ in range(5)]
        assert [s.prompt for s in a] == [s.prompt for s in b]
        for s in a:
            assert skill.family.grade(s, s.answer).score == 1.0
            assert skill.family.grade(s, "I think\n" + s.answer).correct  # the last line counts
            wrong = skill.family.grade(s, str(int(s.answer) + 1))
            assert not wrong.correct and s.answer in wrong.explanation
    assert len(curriculum.eval_set(skill, 3)) == 5


def test_a_bad_dataset_config_names_the_level(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "min_terms: 4, max_terms: 6", "min_terms: 4, max_terms: 6, bogus: 1"
    )
    (tmp_path / "arith.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(SkillConfigError, match=r"arith.yaml: levels.10: dataset 'basic_arithmetic'"):
        load_skill(tmp_path / "arith.yaml")


def test_the_shipped_folder_does_not_load_the_example_by_default():
    assert "arith" not in load_skills()
