"""BIN, Binary Alchemy: binary arithmetic in circled notation (⓪ U+24EA, ① U+2460).

The per-level parameters come from ``configs/skills/bin.yaml``:

* ``width``: operand width in bits.
* ``ops``: the operations a sample may use (drawn uniformly); see ``OPS``.
* ``chain``: ``[lo, hi]`` — from L16 a sample is a chain of ``lo..hi`` operations.
* ``symbol_share``: the share of samples written in a symbol language instead of circled
  digits: one of 8 glyphs that always mean 0 and one of 8 that always mean 1 (64 languages); the
  prompt starts with its key (``key: ▲=0 ●=1``) and every operand and binary answer uses those two
  glyphs, so DIO works one structure in 65 notations. A glyph never changes its value: reading a
  key that assigns values afresh each problem is an induction circuit (match a glyph to its copy in
  the key, take the value after it) that DIO-nano did not form in 15,500 steps of that task alone.
* ``tiers``: output tiers drawn uniformly: ``brief`` (the answer alone), ``columns`` (for
  add, wrap, sub and the bitwise ops: one line per column, rightmost first, ``a+b+carry=carry bit``
  or ``a-b-borrow=borrow bit``; for the conversions one line per bit, doubling from the left
  for to_dec, ``5*2+⓪=10``, halving for from_dec, ``10=5*2+⓪``; for compare, min and max one line
  per bit from the left up to the first that differs, ``①=①``, ``⓪<①``, and for min and max then
  the winner, ``min is the first``, and its bits a column from the right, ``⓪,①:⓪``; for the
  shifts by k, k numbered shifts by one, ``1: ⓪①①⓪``; then the answer; other ops answer brief),
  ``work`` (the decimal steps, then the answer) and ``trace`` (each operand in decimal, every
  step, then the answer). The prompt asks for the tier: nothing, ``(columns)``, ``(show work)``,
  ``(full trace)``.

Canonical form (what the grader accepts, exactly):

1. Only the last non-empty line of the response is graded; work and trace lines are not.
2. That line is trimmed of surrounding whitespace and NFC-normalised; nothing else is
   forgiven: no inner spaces, no prefixes.
3. A binary result is written with exactly the result's width in bits, leading zeros kept,
   in the sample's own two symbols. Result widths: ``w`` for and/or/xor/sub/not/shifts/
   min/max/wrap/neg/from_dec and chains; ``w+1`` for add; ``2w`` for multiply.
4. A decimal result has no leading zeros, no ``+``, and ``-`` for a negative number.
5. compare answers one of ``<``, ``=``, ``>`` (how the first operand compares to the second);
   overflow answers ``yes`` or ``no``.

The grader is NFKC-aware: a response equal to the answer only after NFKC (``0110`` for
``⓪①①⓪``: NFKC maps circled digits to plain ones) is wrong, and the explanation says the
value is right but the notation is not.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from realm.skills.base import Grade, Sample, register

ZERO, ONE = "\u24ea", "\u2460"  # ⓪ ①
# The symbol languages' glyphs: NFKC-stable, single characters, none a digit or an operator
# character (tests check that NFKC leaves each one alone). Each is one token of DIO-nano's tokenizer,
# added in this order.
SYMBOLS = "▲●■◆★○△□◇♠♣♥♦☀☂♪"
ZERO_GLYPHS, ONE_GLYPHS = SYMBOLS[0::2], SYMBOLS[1::2]  # ▲■★△◇♣♦☂ always 0, ●◆○□♠♥☀♪ always 1

CHAIN_OPS = ("add", "sub", "and", "or", "xor")
OPS = (
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
)
TIERS = ("brief", "columns", "work", "trace")
_TIER_SUFFIX = {"brief": "", "columns": " (columns)", "work": " (show work)", "trace": " (full trace)"}
_COLUMN_OPS = {"add": "+", "wrap": "+", "sub": "-", "and": "&", "or": "|", "xor": "^"}
_INFIX = {"add": "+", "sub": "-", "and": "AND", "or": "OR", "xor": "XOR", "mul": "*"}
# the ops in words, grouped, in the order a level's description lists them
OP_GROUPS = (
    ("add", ("add",)),
    ("sub", ("sub",)),
    ("mul", ("mul",)),
    ("signed", ("sadd", "ssub", "neg", "overflow")),
    ("logic", ("and", "or", "xor", "not")),
    ("shifts", ("shl", "shr")),
    ("compare", ("cmp", "min", "max")),
    ("wrap", ("wrap",)),
    ("conversions", ("to_dec", "from_dec")),
)
_GROUP_OF = {op: group for group, ops in OP_GROUPS for op in ops}


class BinFamily:
    id = "bin"
    version = "1.7.0"

    # -------------------------------------------------------------- parameters

    def check_params(self, params: Mapping[str, Any]) -> None:
        width = params.get("width")
        widths = width if isinstance(width, list) and len(width) == 2 else [width, width]
        if not all(isinstance(w, int) and 2 <= w <= 64 for w in widths) or widths[0] > widths[1]:
            raise ValueError(f"width: expected an integer 2..64 or [lo, hi], got {width!r}")
        ops = params.get("ops")
        if not ops or not isinstance(ops, list):
            raise ValueError("ops: expected a non-empty list of operations")
        unknown = [op for op in ops if op not in OPS]
        if unknown:
            raise ValueError(f"ops: unknown operation {unknown[0]!r} (known: {', '.join(OPS)})")
        chain = params.get("chain", [1, 1])
        if not (isinstance(chain, list) and len(chain) == 2 and 1 <= chain[0] <= chain[1] <= 8):
            raise ValueError(f"chain: expected [lo, hi] with 1 <= lo <= hi <= 8, got {chain!r}")
        share = params.get("symbol_share", 0.0)
        if not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise ValueError(f"symbol_share: expected a number 0..1, got {share!r}")
        tiers = params.get("tiers", ["brief"])
        if not tiers or any(t not in TIERS for t in tiers):
            raise ValueError(f"tiers: expected a non-empty list of {', '.join(TIERS)}, got {tiers!r}")

    def describe(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """What a level's ``params`` practise, longest first: ``5-bit add, sub, logic, conversions``,
        ``8-bit, 13 ops, newest compare``, ``8-bit, 13 ops``, ``8-bit``; ``17-bit chains of 2 ops``."""
        width = params["width"]
        bits = f"{width[0]}-{width[1]}-bit" if isinstance(width, list) else f"{width}-bit"
        lo, hi = params.get("chain", [1, 1])
        if lo > 1:
            return (f"{bits} chains of {lo if lo == hi else f'{lo}-{hi}'} ops", bits)
        ops = params["ops"]
        if set(ops) == set(OPS):
            return (f"{bits}, all {len(OPS)} ops", bits)
        groups = [group for group, members in OP_GROUPS if any(op in ops for op in members)]
        listed = f"{bits} {', '.join(groups)}"
        if len(groups) == 1:
            return (listed,)
        counted = f"{bits}, {len(ops)} ops"
        return (listed, f"{counted}, newest {_GROUP_OF[ops[-1]]}", counted, bits)

    # -------------------------------------------------------------- generation

    def generate(self, params: Mapping[str, Any], rng: random.Random) -> Sample:
        width = params["width"]
        if isinstance(width, list):  # [lo, hi]: a training mix of widths (see bin.yaml's `train`)
            width = rng.randint(width[0], width[1])
        lo, hi = params.get("chain", [1, 1])
        tier = rng.choice(params.get("tiers", ["brief"]))
        symbolic = rng.random() < params.get("symbol_share", 0.0)
        zero, one = (rng.choice(ZERO_GLYPHS), rng.choice(ONE_GLYPHS)) if symbolic else (ZERO, ONE)
        length = rng.randint(lo, hi)
        if length > 1:
            problem = _chain(rng, width, length)
        else:
            problem = _BUILDERS[rng.choice(params["ops"])](rng, width)
        kind, value, rwidth = problem.kind, problem.value, problem.rwidth
        bits = lambda v, w: _bits(v, w, zero, one)  # noqa: E731
        prompt = problem.text.format(*(bits(v, w) for v, w in problem.operands))
        if symbolic:
            prompt = f"key: {zero}=0 {one}=1\n{prompt}"
        prompt += _TIER_SUFFIX[tier]
        final = bits(value, rwidth) if kind == "bits" else str(value)
        lines: list[str] = []
        if tier == "columns" and problem.op in _COLUMN_OPS:
            lines += _columns(problem, zero, one)
        elif tier == "columns" and problem.op in ("to_dec", "from_dec"):
            lines += _doublings(problem, zero, one)
        elif tier == "columns" and problem.op == "cmp":
            lines += _bit_comparisons(problem, zero, one)
        elif tier == "columns" and problem.op in ("min", "max"):
            lines += _bit_comparisons(problem, zero, one) + _bit_picks(problem, zero, one)
        elif tier == "columns" and problem.op in ("shl", "shr"):
            lines += _single_shifts(problem, zero, one)
        if tier == "trace":
            lines += [f"{bits(v, w)} = {v}" for v, w in problem.operands]
        if tier in ("work", "trace"):
            lines += problem.steps
        answer = "\n".join([*lines, final])
        meta = {
            "op": problem.op,
            "width": width,
            "chain": length,
            "tier": tier,
            "language": "symbols" if symbolic else "circled",
            "zero": zero,
            "one": one,
            "kind": kind,
            "result_width": rwidth,
            "value": value,
            "key": problem.key,
            "steps": list(problem.steps),
        }
        return Sample(prompt=prompt, answer=answer, meta=meta)

    def canonical_key(self, sample: Sample) -> str:
        """The problem itself, whatever its notation and tier: what eval exclusion compares."""
        return sample.meta["key"]

    def perturb(self, sample: Sample, rng: random.Random) -> str:
        """A near-miss wrong answer (for discrimination quests): one bit flipped, a number off
        by a little, or another verdict."""
        meta = sample.meta
        final = _last_line(sample.answer)
        if meta["kind"] == "bits":
            i = rng.randrange(len(final))
            flipped = meta["one"] if final[i] == meta["zero"] else meta["zero"]
            return final[:i] + flipped + final[i + 1 :]
        if meta["kind"] == "decimal":
            return str(int(final) + rng.choice((-3, -2, -1, 1, 2, 3)))
        choices = ("<", "=", ">") if meta["op"] == "cmp" else ("yes", "no")
        return rng.choice([c for c in choices if c != final])

    # -------------------------------------------------------------- grading

    def grade(self, sample: Sample, response: str) -> Grade:
        expected = _last_line(sample.answer)
        got = unicodedata.normalize("NFC", _last_line(response))
        if got == expected:
            return Grade(score=1.0, correct=True)
        return Grade(score=0.0, correct=False, explanation=_explain(sample, expected, got))


def _columns(problem: "_Problem", zero: str, one: str) -> list[str]:
    """Column by column, rightmost first: ``a+b+carry=carry,bit`` for add and wrap (whose answer drops
    the last carry), ``a-b-borrow=borrow,bit`` for sub, ``a&b=r`` etc."""
    (a, width), (b, _) = problem.operands
    glyph = (zero, one)
    symbol = _COLUMN_OPS[problem.op]
    lines, carry = [], 0
    for i in range(width):
        x, y = (a >> i) & 1, (b >> i) & 1
        if problem.op in ("add", "wrap"):
            total = x + y + carry
            lines.append(f"{glyph[x]}+{glyph[y]}+{glyph[carry]}={glyph[total >> 1]}{glyph[total & 1]}")
            carry = total >> 1
        elif problem.op == "sub":
            diff = x - y - carry
            lines.append(f"{glyph[x]}-{glyph[y]}-{glyph[carry]}={glyph[int(diff < 0)]}{glyph[diff & 1]}")
            carry = int(diff < 0)
        else:
            r = {"and": x & y, "or": x | y, "xor": x ^ y}[problem.op]
            lines.append(f"{glyph[x]}{symbol}{glyph[y]}={glyph[r]}")
    return lines


def _doublings(problem: "_Problem", zero: str, one: str) -> list[str]:
    """A conversion one bit a line. to_dec reads the bits from the left, doubling the value so far
    and adding the bit: ``5*2+⓪=10``; from_dec states the same facts backwards, halving, one line a
    bit of the width: ``10=5*2+⓪``, so the answer is the bits of the lines read from the last one up."""
    glyph = (zero, one)
    if problem.op == "to_dec":
        (a, width), value, lines = problem.operands[0], 0, []
        for i in reversed(range(width)):
            bit = (a >> i) & 1
            lines.append(f"{value}*2+{glyph[bit]}={value * 2 + bit}")
            value = value * 2 + bit
        return lines
    return [f"{n}={n >> 1}*2+{glyph[n & 1]}" for n in (problem.value >> i for i in range(problem.rwidth))]


def _bit_comparisons(problem: "_Problem", zero: str, one: str) -> list[str]:
    """A comparison bit by bit from the left, one line a bit up to the first that differs:
    ``①=①``, ``⓪<①``; every bit when the operands are equal. That bit decides compare, min and max."""
    (a, width), (b, _) = problem.operands
    glyph = (zero, one)
    lines = []
    for i in reversed(range(width)):
        x, y = (a >> i) & 1, (b >> i) & 1
        relation = "<" if x < y else ">" if x > y else "="
        lines.append(f"{glyph[x]}{relation}{glyph[y]}")
        if x != y:
            break
    return lines


def _bit_picks(problem: "_Problem", zero: str, one: str) -> list[str]:
    """min and max after the comparison: which operand wins (``min is the first``), then the pair of
    bits and the winner's bit a column, rightmost first: ``⓪,①:⓪``. The answer is those bits read
    from the last line up, as for and/or, so no line copies a whole operand."""
    (a, width), (b, _) = problem.operands
    glyph = (zero, one)
    first = (a <= b) == (problem.op == "min")
    lines = [f"{problem.op} is the {'first' if first else 'second'}"]
    for i in range(width):
        x, y = (a >> i) & 1, (b >> i) & 1
        lines.append(f"{glyph[x]},{glyph[y]}:{glyph[x if first else y]}")
    return lines


def _single_shifts(problem: "_Problem", zero: str, one: str) -> list[str]:
    """A shift by k as k shifts by one, each line numbered: ``1: ⓪①①⓪``; the last line before the
    answer is the answer, so no step moves a bit by more than one place."""
    (a, width), k = problem.operands[0], problem.amount
    mask = (1 << width) - 1
    lines, value = [], a
    for i in range(1, k + 1):
        value = (value << 1) & mask if problem.op == "shl" else value >> 1
        lines.append(f"{i}: {_bits(value, width, zero, one)}")
    return lines


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _explain(sample: Sample, expected: str, got: str) -> str:
    meta = sample.meta
    if not got:
        return f"no answer; expected {expected}"
    if unicodedata.normalize("NFKC", got) == unicodedata.normalize("NFKC", expected):
        return f"right value but wrong notation: write it as {expected} (the sample's own symbols)"
    if meta["kind"] != "bits":
        return f"expected {expected}, got {got!r}"
    zero, one = meta["zero"], meta["one"]
    stray = sorted({ch for ch in got if ch not in (zero, one)})
    if stray:
        return f"expected {meta['result_width']} digits of {zero}/{one}; found other characters {''.join(stray)!r}"
    if len(got) != meta["result_width"]:
        return (
            f"wrong width: the result is {meta['result_width']} bits (keep leading zeros), got {len(got)}; "
            f"expected {expected}"
        )
    value = int(got.replace(zero, "0").replace(one, "1"), 2)
    return f"wrong value: got {value}, expected {meta['value']} ({expected})"


# ------------------------------------------------------------------ problems


@dataclass(frozen=True, slots=True)
class _Problem:
    op: str
    text: str  # the prompt with {0}, {1}, ... where the operands go
    kind: str  # bits | decimal | symbol
    value: Any
    rwidth: int  # the result's width in bits (bits answers only)
    steps: list[str]  # the worked steps, in decimal
    operands: list[tuple[int, int]]  # (value, width) for each {i}
    key: str  # the canonical key: the problem whatever its notation and tier
    amount: int = 0  # a shift's places


def _problem(op, text, kind, value, rwidth, steps, operands, width, key=None) -> _Problem:
    key = key or f"{op}|w{width}|" + ",".join(str(v) for v, _ in operands)
    return _Problem(op, text, kind, value, rwidth, steps, operands, key)


def _bits(value: int, width: int, zero: str, one: str) -> str:
    return format(value, f"0{width}b").replace("0", zero).replace("1", one)


def _signed(value: int, width: int) -> int:
    return value - (1 << width) if value >> (width - 1) else value


def _pair(rng: random.Random, width: int) -> tuple[int, int]:
    top = (1 << width) - 1
    return rng.randint(0, top), rng.randint(0, top)


def _binary(op: str, fn, rwidth_of, symbol: str):
    def build(rng: random.Random, width: int) -> _Problem:
        a, b = _pair(rng, width)
        value = fn(a, b, width)
        rwidth = rwidth_of(width)
        steps = [f"{a} {symbol} {b} = {value}"]
        return _problem(op, "{0} " + symbol + " {1} =", "bits", value, rwidth, steps, [(a, width), (b, width)], width)

    return build


def _sub(rng: random.Random, width: int) -> _Problem:
    a, b = sorted(_pair(rng, width), reverse=True)
    return _problem(
        "sub", "{0} - {1} =", "bits", a - b, width, [f"{a} - {b} = {a - b}"], [(a, width), (b, width)], width
    )


def _not(rng: random.Random, width: int) -> _Problem:
    a = rng.randint(0, (1 << width) - 1)
    value = a ^ ((1 << width) - 1)
    return _problem(
        "not", "NOT {0} =", "bits", value, width, [f"{(1 << width) - 1} - {a} = {value}"], [(a, width)], width
    )


def _shift(op: str):
    def build(rng: random.Random, width: int) -> _Problem:
        a = rng.randint(0, (1 << width) - 1)
        k = rng.randint(1, width - 1)
        mask = (1 << width) - 1
        value = (a << k) & mask if op == "shl" else a >> k
        symbol = "<<" if op == "shl" else ">>"
        text = "{0} " + symbol + f" {k} ="
        step = f"{a} {'*' if op == 'shl' else '//'} {1 << k} = {a * (1 << k) if op == 'shl' else value}"
        steps = [step] + ([f"keep {width} bits: {value}"] if op == "shl" else [])
        key = f"{op}|w{width}|{a}|{k}"  # the places too: a << 1 and a << 2 are two problems
        return replace(_problem(op, text, "bits", value, width, steps, [(a, width)], width, key), amount=k)

    return build


def _cmp(rng: random.Random, width: int) -> _Problem:
    a, b = _pair(rng, width)
    value = "<" if a < b else ">" if a > b else "="
    return _problem(
        "cmp", "compare {0} {1} =", "symbol", value, 0, [f"{a} {value} {b}"], [(a, width), (b, width)], width
    )


def _minmax(op: str):
    def build(rng: random.Random, width: int) -> _Problem:
        a, b = _pair(rng, width)
        value = min(a, b) if op == "min" else max(a, b)
        return _problem(
            op,
            op + "({0}, {1}) =",
            "bits",
            value,
            width,
            [f"{op}({a}, {b}) = {value}"],
            [(a, width), (b, width)],
            width,
        )

    return build


def _wrap(rng: random.Random, width: int) -> _Problem:
    a, b = _pair(rng, width)
    value = (a + b) % (1 << width)
    steps = [f"({a} + {b}) mod {1 << width} = {value}"]
    return _problem(
        "wrap", "{0} + {1} mod 2^" + str(width) + " =", "bits", value, width, steps, [(a, width), (b, width)], width
    )


def _to_dec(rng: random.Random, width: int) -> _Problem:
    a = rng.randint(0, (1 << width) - 1)
    return _problem("to_dec", "{0} in decimal =", "decimal", a, 0, [f"{a}"], [(a, width)], width)


def _from_dec(rng: random.Random, width: int) -> _Problem:
    a = rng.randint(0, (1 << width) - 1)
    text = f"{a} in binary, {width} bits ="
    return _problem("from_dec", text, "bits", a, width, [f"{a}"], [], width, key=f"from_dec|w{width}|{a}")


def _signed_op(op: str):
    def build(rng: random.Random, width: int) -> _Problem:
        a, b = _pair(rng, width)
        sa, sb = _signed(a, width), _signed(b, width)
        value = sa + sb if op == "sadd" else sa - sb
        symbol = "+" if op == "sadd" else "-"
        text = "{0} " + symbol + " {1} signed ="
        return _problem(
            op, text, "decimal", value, 0, [f"{sa} {symbol} {sb} = {value}"], [(a, width), (b, width)], width
        )

    return build


def _neg(rng: random.Random, width: int) -> _Problem:
    a = rng.randint(0, (1 << width) - 1)
    value = (-a) % (1 << width)
    steps = [f"-({_signed(a, width)}) = {_signed(value, width)}"]
    return _problem("neg", "negate {0} =", "bits", value, width, steps, [(a, width)], width)


def _overflow(rng: random.Random, width: int) -> _Problem:
    a, b = _pair(rng, width)
    sa, sb = _signed(a, width), _signed(b, width)
    total = sa + sb
    fits = -(1 << (width - 1)) <= total < (1 << (width - 1))
    value = "no" if fits else "yes"
    text = "{0} + {1} overflows signed? ="
    steps = [f"{sa} + {sb} = {total}, range {-(1 << (width - 1))}..{(1 << (width - 1)) - 1}"]
    return _problem("overflow", text, "symbol", value, 0, steps, [(a, width), (b, width)], width)


def _chain(rng: random.Random, width: int, length: int) -> _Problem:
    """((a op b) op c) ...: every + and - wraps at ``width`` bits."""
    modulus = 1 << width
    values = [rng.randint(0, modulus - 1) for _ in range(length + 1)]
    ops = [rng.choice(CHAIN_OPS) for _ in range(length)]
    text = "{0}"
    acc = values[0]
    steps = []
    for index, op in enumerate(ops, start=1):
        b = values[index]
        before = acc
        acc = _apply(op, acc, b) % modulus
        text = ("(" + text + ")" if index > 1 else text) + f" {_INFIX[op]} {{{index}}}"
        wraps = f" mod 2^{width}" if op in ("add", "sub") else ""
        steps.append(f"{before} {_INFIX[op]} {b}{wraps} = {acc}")
    text += " ="
    key = f"chain|w{width}|" + ",".join(ops) + "|" + ",".join(map(str, values))
    return _problem(f"chain{length}", text, "bits", acc, width, steps, [(v, width) for v in values], width, key=key)


def _apply(op: str, a: int, b: int) -> int:
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "and":
        return a & b
    if op == "or":
        return a | b
    return a ^ b


_BUILDERS = {
    "add": _binary("add", lambda a, b, w: a + b, lambda w: w + 1, "+"),
    "and": _binary("and", lambda a, b, w: a & b, lambda w: w, "AND"),
    "or": _binary("or", lambda a, b, w: a | b, lambda w: w, "OR"),
    "xor": _binary("xor", lambda a, b, w: a ^ b, lambda w: w, "XOR"),
    "mul": _binary("mul", lambda a, b, w: a * b, lambda w: 2 * w, "*"),
    "to_dec": _to_dec,
    "from_dec": _from_dec,
    "sub": _sub,
    "not": _not,
    "shl": _shift("shl"),
    "shr": _shift("shr"),
    "cmp": _cmp,
    "min": _minmax("min"),
    "max": _minmax("max"),
    "wrap": _wrap,
    "sadd": _signed_op("sadd"),
    "ssub": _signed_op("ssub"),
    "neg": _neg,
    "overflow": _overflow,
}
assert set(_BUILDERS) == set(OPS)

BIN = register(BinFamily())
