"""A level in words (``curriculum.describe_level``) from the shipped skill files, and the quest
titles the trainer builds from it."""

from __future__ import annotations

import random

import pytest

from realm.game.narration import TITLE_WIDTH, skill_quest_title
from realm.skills.bin import OP_GROUPS
from realm.skills.curriculum import describe_level, eval_params
from realm.skills.registry import get_skill, load_skills

BIN = get_skill("bin")
SY = get_skill("sy")
GROUP_OF = {op: group for group, ops in OP_GROUPS for op in ops}


def test_bin_levels_say_the_width_and_the_ops_of_bin_yaml():
    assert describe_level(BIN, 1) == ("2-bit add",)
    assert describe_level(BIN, 1, training=True) == ("2-4-bit add",)  # L1 trains on widths 2..4 (`train:`)
    assert describe_level(BIN, 4)[0] == "5-bit add, sub, logic, conversions"
    assert describe_level(BIN, 7)[1:] == ("8-bit, 13 ops, newest compare", "8-bit, 13 ops", "8-bit")
    assert describe_level(BIN, 11)[0] == "12-bit, all 19 ops"
    assert describe_level(BIN, 26)[0] == "27-bit chains of 4-5 ops"


@pytest.mark.parametrize("level", [2, 4, 6])
def test_the_ops_a_bin_description_names_are_the_ones_its_samples_use(level):
    params = eval_params(BIN, level)
    rng = random.Random(level)
    used = {GROUP_OF[BIN.family.generate(params, rng).meta["op"]] for _ in range(300)}
    listed = describe_level(BIN, level)[0].split(" ", 1)[1].split(", ")
    assert set(listed) == used and describe_level(BIN, level)[0].startswith(f"{params['width']}-bit ")


def test_sy_levels_say_words_syllables_clues_and_herrings_of_sy_yaml():
    assert describe_level(SY, 1)[0] == "1 word of 2 syllables, pattern clues"
    assert describe_level(SY, 4)[0] == "4 words of 2 syllables, definition clues"
    assert describe_level(SY, 10)[0] == "5 words of 2-3 syllables, category clues, 1 red herring"
    assert describe_level(SY, 50)[0] == "12 words of 3-5 syllables, pattern clues, 6 red herrings"
    sample = SY.family.generate(eval_params(SY, 10), random.Random(3))
    assert sample.meta["words"] == 5 and sample.meta["herrings"] == 1 and set(sample.meta["syllables"]) <= {2, 3}


def test_every_shipped_level_makes_a_title_that_fits_the_quest_board():
    for skill in load_skills().values():
        for level in range(1, skill.max_level + 1):
            forms = describe_level(skill, level, training=True)
            assert forms and all(forms), (skill.id, level)
            idle = skill_quest_title("idle", [(skill.short_name, level, 256, forms)])
            assert len(idle) <= TITLE_WIDTH and forms[-1] in idle or idle == f"{skill.short_name} L{level}"
            correction = skill_quest_title("correction", [(skill.short_name, level, 24, forms)], wrong=6)
            assert correction.startswith(f"Correction · {skill.short_name} L{level} · 6 missed")
    assert skill_quest_title("idle", [("BIN", 4, 256, describe_level(BIN, 4, training=True))]) == (
        "BIN L4 · 5-6-bit add, sub, logic, conversions"  # it trains on a bit more than its eval
    )


def test_a_family_without_words_for_its_levels_is_described_by_the_skills_name():
    """The reasoning-gym bridge (the dev extra) has no ``describe``."""
    from realm.skills.registry import SKILLS_DIR, load_skill

    arith = load_skill(SKILLS_DIR / "examples" / "arith.yaml")
    assert describe_level(arith, 1) == describe_level(arith, 10) == ("Mental Arithmetic",)
    assert skill_quest_title("idle", [("ARI", 3, 64, describe_level(arith, 3))]) == "ARI L3 · Mental Arithmetic"
