"""BIN, property tests over many seeds and every level."""

from __future__ import annotations

import random
import unicodedata

import pytest

from realm.skills.bin import BIN, ONE, ONE_GLYPHS, SYMBOLS, ZERO, ZERO_GLYPHS
from realm.skills.registry import get_skill

SKILL = get_skill("bin")
LEVELS = range(1, SKILL.max_level + 1)
SEEDS = range(40)


def samples(level: int, seeds=SEEDS):
    params = SKILL.params(level)
    params.pop("train", None)
    return [BIN.generate(params, random.Random(f"{level}:{seed}")) for seed in seeds]


@pytest.mark.parametrize("level", LEVELS)
def test_a_samples_own_answer_grades_one_and_perturbed_answers_fail(level):
    rng = random.Random(level)
    for sample in samples(level):
        assert BIN.grade(sample, sample.answer).score == 1.0
        assert BIN.grade(sample, "  " + sample.answer + "\n").correct  # surrounding whitespace is fine
        wrong = BIN.perturb(sample, rng)
        grade = BIN.grade(sample, wrong)
        assert not grade.correct and grade.score == 0.0 and grade.explanation
        assert not BIN.grade(sample, "").correct


@pytest.mark.parametrize("level", [1, 8, 16, 30])
def test_the_same_seed_gives_the_same_sample(level):
    assert samples(level) == samples(level)
    assert samples(level, [1]) != samples(level, [2]) or level == 1  # L1 is tiny: collisions happen


def test_difficulty_rises_with_level_by_measurable_proxies():
    def mean(values):
        return sum(values) / len(values)

    width = [SKILL.params(level)["width"] for level in LEVELS]
    ops = [len(SKILL.params(level)["ops"]) for level in LEVELS]
    chain = [SKILL.params(level).get("chain", [1, 1])[1] for level in LEVELS]
    assert width[0] == 2 and width[-1] == 32 and all(b == a + 1 for a, b in zip(width[:-2], width[1:-1]))
    assert all(b >= a for a, b in zip(ops, ops[1:])) and ops[0] == 1 and ops[-1] == 19
    assert all(b >= a for a, b in zip(chain, chain[1:])) and chain[0] == 1 and chain[-1] == 5
    prompt_length = [mean([len(s.prompt) for s in samples(level)]) for level in (1, 5, 10, 16, 21, 26, 30)]
    assert all(b > a for a, b in zip(prompt_length, prompt_length[1:])), prompt_length
    symbols = [mean([s.meta["language"] == "symbols" for s in samples(level)]) for level in (1, 8, 15, 16, 20)]
    assert symbols[0] == symbols[1] == symbols[2] == 0 and symbols[3] > 0.5 and symbols[4] > 0.5


def test_canonical_form_rules_are_enforced_and_explained():
    params = {"width": 4, "ops": ["add"]}
    sample = BIN.generate(params, random.Random(3))
    answer = sample.answer
    assert len(answer) == 5  # add: width + 1, leading zeros kept
    plain = unicodedata.normalize("NFKC", answer)
    assert set(plain) <= {"0", "1"}
    grade = BIN.grade(sample, plain)
    assert not grade.correct and "notation" in grade.explanation
    short = answer.lstrip(ZERO) or ZERO
    if short != answer:
        grade = BIN.grade(sample, short)
        assert not grade.correct and "width" in grade.explanation
    grade = BIN.grade(sample, answer[:-1] + "x")
    assert not grade.correct and "other characters" in grade.explanation
    # only the last line counts: work lines before it are free
    assert BIN.grade(sample, "I add the columns\n" + answer).correct
    # NFC: a decomposed form of the same text still matches (circled digits have none, but
    # the grader normalises before comparing)
    assert BIN.grade(sample, unicodedata.normalize("NFD", answer)).correct


def test_symbol_languages_are_nfkc_stable_and_distinct():
    assert len(set(SYMBOLS)) == len(SYMBOLS)
    for ch in SYMBOLS + ZERO + ONE:
        if ch in (ZERO, ONE):
            continue
        assert unicodedata.normalize("NFKC", ch) == ch
        assert not ch.isdigit()
    level16 = [s for s in samples(16) if s.meta["language"] == "symbols"]
    assert level16
    for s in level16:
        key = s.prompt.splitlines()[0]
        assert key == f"key: {s.meta['zero']}=0 {s.meta['one']}=1"
        assert ZERO not in s.prompt and ONE not in s.prompt
        assert set(s.answer.splitlines()[-1]) <= {s.meta["zero"], s.meta["one"]} or s.meta["kind"] != "bits"


def test_a_glyph_keeps_its_value_in_every_symbol_language():
    assert sorted(ZERO_GLYPHS + ONE_GLYPHS) == sorted(SYMBOLS) and len(ZERO_GLYPHS) == len(ONE_GLYPHS) == 8
    rng = random.Random(3)
    params = {"width": 6, "ops": ["and", "add", "not"], "symbol_share": 1.0}
    languages = {(s.meta["zero"], s.meta["one"]) for s in (BIN.generate(params, rng) for _ in range(2000))}
    assert {zero for zero, _ in languages} == set(ZERO_GLYPHS) and {one for _, one in languages} == set(ONE_GLYPHS)
    assert len(languages) == 64


@pytest.mark.parametrize(
    "op",
    [
        "add",
        "and",
        "or",
        "xor",
        "to_dec",
        "from_dec",
        "sub",
        "not",
        "shl",
        "shr",
        "cmp",
        "min",
        "max",
        "wrap",
        "mul",
        "sadd",
        "ssub",
        "neg",
        "overflow",
    ],
)
def test_each_operation_computes_what_it_says(op):
    rng = random.Random(op)
    for _ in range(30):
        s = BIN.generate({"width": 6, "ops": [op]}, rng)
        m = s.meta
        final = s.answer.splitlines()[-1]
        operands = [
            int(tok.replace(ZERO, "0").replace(ONE, "1"), 2)
            for tok in s.prompt.replace("(", " ").replace(")", " ").replace(",", " ").split()
            if tok and set(tok) <= {ZERO, ONE}
        ]
        signed = [v - 64 if v >= 32 else v for v in operands]
        expected = {
            "add": lambda: sum(operands),
            "and": lambda: operands[0] & operands[1],
            "or": lambda: operands[0] | operands[1],
            "xor": lambda: operands[0] ^ operands[1],
            "to_dec": lambda: operands[0],
            "from_dec": lambda: int(s.prompt.split()[0]),
            "sub": lambda: operands[0] - operands[1],
            "not": lambda: 63 - operands[0],
            "shl": lambda: (operands[0] << int(s.prompt.split()[2])) & 63,
            "shr": lambda: operands[0] >> int(s.prompt.split()[2]),
            "cmp": lambda: "<" if operands[0] < operands[1] else ">" if operands[0] > operands[1] else "=",
            "min": lambda: min(operands),
            "max": lambda: max(operands),
            "wrap": lambda: sum(operands) % 64,
            "mul": lambda: operands[0] * operands[1],
            "sadd": lambda: signed[0] + signed[1],
            "ssub": lambda: signed[0] - signed[1],
            "neg": lambda: (-operands[0]) % 64,
            "overflow": lambda: "no" if -32 <= signed[0] + signed[1] < 32 else "yes",
        }[op]()
        assert m["value"] == expected, (s.prompt, s.answer)
        if m["kind"] == "bits":
            assert int(final.replace(ZERO, "0").replace(ONE, "1"), 2) == expected
            assert len(final) == m["result_width"]
        else:
            assert final == str(expected)


def test_chains_wrap_at_the_width_and_show_every_step_in_the_trace():
    params = {"width": 8, "ops": ["add"], "chain": [4, 5], "tiers": ["trace"]}
    for seed in range(20):
        s = BIN.generate(params, random.Random(seed))
        lines = s.answer.splitlines()
        assert s.meta["chain"] in (4, 5) and s.meta["op"] == f"chain{s.meta['chain']}"
        assert len(lines) == (s.meta["chain"] + 1) + s.meta["chain"] + 1  # operands, steps, answer
        assert 0 <= s.meta["value"] < 256 and len(lines[-1]) == 8


def test_check_params_names_the_problem():
    with pytest.raises(ValueError, match="ops: unknown operation 'pow'"):
        BIN.check_params({"width": 4, "ops": ["pow"]})
    with pytest.raises(ValueError, match="width"):
        BIN.check_params({"width": 1, "ops": ["add"]})
    with pytest.raises(ValueError, match="tiers"):
        BIN.check_params({"width": 4, "ops": ["add"], "tiers": ["verbose"]})


@pytest.mark.parametrize("op", ["add", "wrap"])
def test_the_columns_tier_adds_column_by_column_with_carries(op):
    rng = random.Random(0)
    for _ in range(50):
        s = BIN.generate({"width": 4, "ops": [op], "tiers": ["columns"]}, rng)
        *columns, final = s.answer.splitlines()
        assert s.prompt.endswith("(columns)") and len(columns) == 4
        carry = ZERO
        bits = []
        for line in columns:
            a, b, c, out = line[0], line[2], line[4], line[6:]
            assert line[1] == line[3] == "+" and line[5] == "=" and c == carry
            total = sum(ch == ONE for ch in (a, b, c))
            assert out == (ONE if total >= 2 else ZERO) + (ONE if total % 2 else ZERO)
            carry, bits = out[0], [out[1], *bits]
        assert final == (carry if op == "add" else "") + "".join(bits) and BIN.grade(s, s.answer).correct


@pytest.mark.parametrize("op", ["to_dec", "from_dec"])
def test_the_columns_tier_converts_one_bit_a_line(op):
    rng = random.Random(0)
    for width in (3, 5, 8):
        for _ in range(30):
            s = BIN.generate({"width": width, "ops": [op], "tiers": ["columns"], "symbol_share": 0.5}, rng)
            *lines, final = s.answer.splitlines()
            zero, one, value = s.meta["zero"], s.meta["one"], s.meta["value"]
            bit = {zero: 0, one: 1}
            assert len(lines) == width
            facts = []  # (half, bit, whole): whole = half*2 + bit
            for line in lines:
                if op == "to_dec":
                    left, whole = line.split("=")
                    half, glyph = left.split("*2+")
                else:
                    whole, right = line.split("=")
                    half, glyph = right.split("*2+")
                facts.append((int(half), bit[glyph], int(whole)))
                assert int(whole) == int(half) * 2 + bit[glyph], line
            bits = [b for _, b, _ in facts]
            if op == "to_dec":  # doubling from the left: each line starts from the last one's value
                assert [h for h, _, _ in facts] == [0] + [w for _, _, w in facts[:-1]] and facts[-1][2] == value
                assert "".join((zero, one)[b] for b in bits) in s.prompt and final == str(value)
            else:  # halving from the number down, the bits read from the last line up
                assert facts[0][2] == value and [w for _, _, w in facts[1:]] == [h for h, _, _ in facts[:-1]]
                assert final == "".join((zero, one)[b] for b in reversed(bits))
            assert BIN.grade(s, s.answer).correct


def glyphs(value: int, width: int, zero: str, one: str) -> str:
    return "".join(one if bit == "1" else zero for bit in format(value, f"0{width}b"))


def columns_samples(op: str, seed: int):
    """(width, sample) for 40 columns-tier samples of ``op`` at 3 and at 8 bits, half in symbol languages."""
    rng = random.Random(seed)
    for width in (3, 8):
        for _ in range(40):
            yield width, BIN.generate({"width": width, "ops": [op], "tiers": ["columns"], "symbol_share": 0.5}, rng)


@pytest.mark.parametrize("op", ["cmp", "min", "max"])
def test_the_columns_tier_compares_bit_by_bit_from_the_left_up_to_the_first_difference(op):
    for width, s in columns_samples(op, seed=0):
        *lines, final = s.answer.splitlines()
        if op != "cmp":
            lines = lines[: -width - 1]
        zero, one = s.meta["zero"], s.meta["one"]
        a, b = (glyphs(int(v), width, zero, one) for v in s.meta["key"].split("|")[-1].split(","))
        verdicts = [line[1] for line in lines]
        assert [line[0] + line[2] for line in lines] == [x + y for x, y in zip(a, b)][: len(lines)]
        assert set(verdicts[:-1]) <= {"="} and (verdicts[-1] != "=" or len(lines) == width)
        for line in lines:
            x, y = (line[0] == one), (line[2] == one)
            assert line[1] == ("<" if x < y else ">" if x > y else "=") and {line[0], line[2]} <= {zero, one}
        decided = verdicts[-1]
        if op == "cmp":
            assert final == decided
        else:
            assert final == (a if (decided in "<=") == (op == "min") else b)
        assert BIN.grade(s, s.answer).correct


@pytest.mark.parametrize("op", ["min", "max"])
def test_min_and_max_name_the_winner_then_pick_its_bits_a_column_from_the_right(op):
    for width, s in columns_samples(op, seed=1):
        winner, *picks, final = s.answer.splitlines()[-width - 2 :]
        zero, one = s.meta["zero"], s.meta["one"]
        a, b = (int(v) for v in s.meta["key"].split("|")[-1].split(","))
        first = (a <= b) == (op == "min")
        assert winner == f"{op} is the {'first' if first else 'second'}"
        a, b = glyphs(a, width, zero, one), glyphs(b, width, zero, one)
        assert picks == [f"{x},{y}:{x if first else y}" for x, y in zip(a[::-1], b[::-1])]
        assert final == "".join(pick[-1] for pick in reversed(picks)) == (a if first else b)
        assert BIN.grade(s, s.answer).correct


@pytest.mark.parametrize("op", ["shl", "shr"])
def test_the_columns_tier_shifts_one_place_a_line(op):
    for width, s in columns_samples(op, seed=0):
        *lines, final = s.answer.splitlines()
        zero = s.meta["zero"]
        operand, places = (int(v) for v in s.meta["key"].split("|")[2:])
        operand = glyphs(operand, width, zero, s.meta["one"])
        assert s.prompt.endswith(f" {places} = (columns)")
        assert [line.split(": ")[0] for line in lines] == [str(i) for i in range(1, places + 1)]
        before = operand
        for line in lines:
            after = line.split(": ")[1]
            assert after == (before[1:] + zero if op == "shl" else zero + before[:-1]), (s.prompt, s.answer)
            before = after
        assert final == before and BIN.grade(s, s.answer).correct


def test_shifts_of_one_operand_by_other_places_are_other_problems():
    rng = random.Random(0)
    samples = [BIN.generate({"width": 6, "ops": ["shl"]}, rng) for _ in range(400)]
    by_key: dict[str, set[str]] = {}
    for s in samples:
        by_key.setdefault(BIN.canonical_key(s), set()).add(s.prompt)
    assert all(len(prompts) == 1 for prompts in by_key.values())
    assert len({s.prompt.split(" <<")[0] for s in samples}) < len(by_key)  # some operand was shifted by two amounts
