"""Skill YAML loading, frozen eval sets, exclusion, probes, profiles, the progression rule."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter

import pytest
import yaml

from realm.skills import curriculum
from realm.skills.grading import should_level_up
from realm.skills.history import EvalRow
from realm.skills.profiles import (
    ASK_FIX,
    STOP_EMOJIS,
    THINKING_EMOJIS,
    ProtocolError,
    check_protocol,
    discrimination_chat,
    emoji_think,
    strip_protocol,
    uses_emoji,
)
from realm.skills.registry import SKILLS_DIR, SkillConfigError, get_skill, level_table, load_skill, load_skills
from realm.skills.sy import lexicon as sy_lexicon

BIN = get_skill("bin")
# Changing the generator, bin.yaml's levels or its eval seed changes the frozen sets; if that
# is intended, bump the family's version and update this checksum in the same commit.
BIN_EVAL_SHA256 = "d4df3c9e465522ae90036603c88d365affcc526cf645fc717a24b6717b46be70"


# ------------------------------------------------------------------ YAML


def test_the_shipped_skills_load_and_the_template_documents_every_key():
    skills = load_skills()
    assert "bin" in skills and skills["bin"].max_level == 30 and skills["bin"].icon
    template = yaml.safe_load((SKILLS_DIR / "_template.yaml").read_text(encoding="utf-8"))
    import msgspec

    from realm.skills.registry import SkillConfig

    fields = {f.name for f in msgspec.structs.fields(SkillConfig)} - {"source"}
    assert fields == set(template)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "id: bin\nname: B\ngenerator: bin\nmax_level: two\nlevels: {1: {width: 2, ops: [add]}}\n",
            "bin.yaml: max_level: must be a whole number, not text",
        ),
        (
            "id: bin\nname: B\ngenerator: bin\nmax_level: 2\nlevels: {1: {width: 2, ops: [add]}}\neval: {samples: 5}\n",
            "bin.yaml: eval.samples: unknown key",
        ),
        (
            "id: bin\nname: B\ngenerator: bin\nmax_level: 2\nlevels: {1: {width: 2, ops: [add]}}\nprogression: {window: 0}\n",
            "bin.yaml: progression.window: must be at least 1",
        ),
        (
            "id: bin\nname: B\ngenerator: bin\nmax_level: 2\nlevels: {2: {width: 2, ops: [add]}}\n",
            "bin.yaml: levels: must list level 1",
        ),
        (
            "id: bin\nname: B\ngenerator: bin\nmax_level: 2\nlevels: {1: {width: 2, ops: [add]}, 2: {ops: [pow]}}\n",
            "bin.yaml: levels.2: ops: unknown operation 'pow'",
        ),
        (
            "id: bin\nname: B\ngenerator: bin\nmax_level: 2\nlevels: {1: {width: 2, ops: [add], train: {width: [2, 99]}}}\n",
            "bin.yaml: levels.1.train: width: expected an integer 2..64 or [lo, hi], got [2, 99]",
        ),
        (
            "id: bin\nname: B\ngenerator: nosuch\nmax_level: 2\nlevels: {1: {}}\n",
            "bin.yaml: generator: no skill family 'nosuch'",
        ),
        (
            "id: other\nname: B\ngenerator: bin\nmax_level: 2\nlevels: {1: {width: 2, ops: [add]}}\n",
            "bin.yaml: id: 'other' must match the file name",
        ),
        ("id: bin\nname: [unclosed\n", "bin.yaml: not valid YAML at line"),
        ("- a list\n", "bin.yaml: (top level): expected a mapping"),
    ],
)
def test_a_bad_skill_yaml_names_the_file_and_the_key(tmp_path, text, message):
    with pytest.raises(SkillConfigError) as info:
        load_skill(_write(tmp_path / "bin.yaml", text))
    assert message in str(info.value)


def test_adding_a_skill_of_a_known_family_is_adding_a_yaml_file(tmp_path):
    _write(
        tmp_path / "bits.yaml",
        "id: bits\nname: Bits\ngenerator: bin\nmax_level: 3\nlevels: {1: {width: 3, ops: [xor]}, 3: {width: 5}}\n",
    )
    skill = load_skills(tmp_path)["bits"]
    assert skill.params(2) == {"width": 3, "ops": ["xor"]} and skill.params(3)["width"] == 5
    sample = skill.family.generate(curriculum.eval_params(skill, 3), random.Random(0))
    assert "XOR" in sample.prompt


def test_levels_inherit_and_interpolate():
    table = level_table({1: {"a": 1, "x": 0.0, "k": "s"}, 5: {"a": 9, "x": 1.0}}, 6, ["a", "x"])
    assert [row["a"] for row in table] == [1, 3, 5, 7, 9, 9]
    assert table[2]["x"] == 0.5 and table[5]["k"] == "s"


# ------------------------------------------------------------------ eval sets


def test_the_frozen_eval_sets_do_not_change():
    digest = hashlib.sha256()
    for level in range(1, BIN.max_level + 1):
        items = curriculum.eval_set(BIN, level)
        assert len(items) == BIN.eval.samples_per_level
        for s in items:
            digest.update(json.dumps([level, s.prompt, s.answer], ensure_ascii=False).encode())
    assert digest.hexdigest() == BIN_EVAL_SHA256, (
        f"BIN's frozen sets changed: bump its version, freeze {digest.hexdigest()}"
    )


def test_eval_items_are_distinct_and_excluded_from_training_by_canonical_key():
    keys = curriculum.eval_keys(BIN)
    for level in (1, 2, 3):
        items = curriculum.eval_set(BIN, level)
        assert len({curriculum.canonical_key(BIN, s) for s in items}) == 5
    # at L1 (16 distinct problems) a few thousand draws meet every non-eval problem, never an eval one
    drawer = curriculum.Drawer(BIN)
    rng = random.Random(0)
    seen = {curriculum.canonical_key(BIN, drawer.draw(1, rng)) for _ in range(2000)}
    assert len(seen) == 11 and not seen & keys
    assert drawer.rejected["eval_overlap"] > 0
    # the key ignores notation: the same problem in a symbol language is the same key
    sample = curriculum.eval_set(BIN, 1)[0]
    params = {"width": 2, "ops": ["add"], "symbol_share": 1.0}
    rng = random.Random(1)
    twins = [s for s in (BIN.family.generate(params, rng) for _ in range(500)) if s.meta["key"] == sample.meta["key"]]
    assert twins and all(curriculum.canonical_key(BIN, t) in keys for t in twins)


def test_the_probe_is_fresh_and_stratified():
    probe = curriculum.probe(BIN, 5, 40, seed=7)
    keys = curriculum.eval_keys(BIN)
    assert len(probe) == 40 and not {curriculum.canonical_key(BIN, s) for s in probe} & keys
    ops = Counter(s.meta["op"] for s in probe)
    assert set(ops) == set(BIN.params(5)["ops"])
    assert max(ops.values()) - min(ops.values()) <= 1  # equal shares, not what chance gives
    assert curriculum.probe(BIN, 5, 40, seed=7) == probe


def test_training_examples_mix_lower_levels_and_count_for_lineage():
    batch = curriculum.training_examples(BIN, 6, 400, seed=1)
    assert len(batch.examples) == 400
    lower = sum(n for key, n in batch.counts.items() if key.startswith("level_") and key != "level_6")
    assert 40 <= lower <= 130  # lower_level_share 0.2
    assert batch.counts["direct"] == 400
    assert all(e["messages"][-1]["role"] == "assistant" for e in batch.examples)


def test_a_levels_train_table_widens_its_training_draws_only():
    sy = get_skill("sy")
    wide, own = curriculum.training_params(sy, 1), curriculum.eval_params(sy, 1)
    assert "train" not in wide and "train" not in own
    assert wide["zipf"][0] < own["zipf"][0] and {k: v for k, v in wide.items() if k != "zipf"} == {
        k: v for k, v in own.items() if k != "zipf"
    }
    batch = curriculum.training_examples(sy, 1, 200, seed=1)
    answers = {json.loads(e["messages"][-1]["content"])["answers"][0] for e in batch.examples}
    lex = sy_lexicon()
    assert any(lex.by_word[a.lower()].zipf < own["zipf"][0] for a in answers), "no draw from the wider window"
    probed = [s.meta["answers"][0] for s in curriculum.probe(sy, 1, 50, seed=2)]
    assert all(lex.by_word[a.lower()].zipf >= own["zipf"][0] for a in probed), "the probe left the level's window"


# ------------------------------------------------------------------ profiles


def test_discrimination_items_are_40_60_and_the_fix_is_the_right_answer():
    rng = random.Random(0)
    kinds = Counter()
    for sample in curriculum.probe(BIN, 9, 200, seed=1):
        chat = discrimination_chat(BIN, sample, rng)
        verdict = chat[1]["content"]
        kinds[verdict] += 1
        proposed = chat[0]["content"].split("Proposed answer: ")[1].split("\n")[0]
        assert BIN.family.grade(sample, proposed).correct == (verdict == "CORRECT")
        if verdict == "INCORRECT":
            assert chat[2]["content"] == ASK_FIX and BIN.family.grade(sample, chat[3]["content"]).correct
    assert 0.3 < kinds["CORRECT"] / 200 < 0.5


def test_emoji_think_is_a_deterministic_half_and_the_validator_enforces_the_protocol():
    share = sum(uses_emoji(f"s:{i}") for i in range(2000)) / 2000
    assert 0.45 < share < 0.55 and uses_emoji("s:1") == uses_emoji("s:1")
    sample = curriculum.eval_set(BIN, 16)[0]
    reply = emoji_think(sample, random.Random(0))
    assert reply.startswith(THINKING_EMOJIS) and reply.endswith(STOP_EMOJIS)
    assert check_protocol(reply) == "emoji" and BIN.family.grade(sample, strip_protocol(reply)).correct
    assert check_protocol(sample.answer) == "direct"
    with pytest.raises(ProtocolError, match="does not end with a stop emoji"):
        check_protocol("🤔 thinking\n" + sample.answer)


def test_an_emoji_think_skill_writes_both_modes(tmp_path):
    text = (SKILLS_DIR / "bin.yaml").read_text(encoding="utf-8").replace("emoji_think: false", "emoji_think: true")
    skill = load_skill(_write(tmp_path / "bin.yaml", text))
    batch = curriculum.training_examples(skill, 3, 200, seed=0)
    modes = Counter(check_protocol(e["messages"][-1]["content"]) for e in batch.examples)
    assert modes["emoji"] == batch.counts["emoji_think"] and 60 < modes["emoji"] < 140


# ------------------------------------------------------------------ the progression rule


def _rounds(accuracies, probe=0.9, strata=None):
    return [EvalRow("bin", 1, 1, i, 0.0, a, probe, strata or {"add": probe}, []) for i, a in enumerate(accuracies)]


@pytest.mark.parametrize(
    ("accuracies", "probe", "strata", "up"),
    [
        ([0.8, 0.8, 1.0], 0.9, None, True),
        ([1.0, 1.0], 0.9, None, False),  # fewer than the window
        ([0.6, 1.0, 1.0, 1.0], 0.9, None, True),  # only the last three count
        ([1.0, 0.6, 1.0], 0.9, None, False),  # not consecutive
        ([1.0, 1.0, 1.0], 0.7, None, False),  # the probe is below 80 %
        ([1.0, 1.0, 1.0], 0.85, {"add": 1.0, "xor": 0.4}, False),  # one operation is weak
    ],
)
def test_the_progression_rule(accuracies, probe, strata, up):
    assert should_level_up(BIN, _rounds(accuracies, probe, strata))[0] is up
