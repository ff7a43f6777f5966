"""The offline check of a quest file: what the trainer would make of every line, without a trainer.

It runs the trainer's own layers (``validate.check_for_training``), measures each example in
tokens with the trainer's tokenizer, and runs the held-out ``split`` on what would train, so
``realm quest check`` and the TUI's Add dialog show what a battle would do with the file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import NamedTuple

from realm.config import RealmConfig
from realm.model.chatml import IGNORE_INDEX, EncodedExample
from realm.quests.formats import encode_example
from realm.quests.split import normal_key, split
from realm.quests.validate import Verdict, check_content, check_for_training

UNLIMITED = 10**9  # tokens: encode a whole example, to measure it
OK, REJECTED, TRUNCATED, HELD_OUT, FOLDED = "ok", "rejected", "truncated", "held out", "duplicate"
FAILING = (REJECTED,)


class LineCheck(NamedTuple):
    line: int  # 1-based, in the file
    verdict: str  # ok | rejected | truncated | held out | duplicate
    reason: str  # why (rejected), or a note ("" for a plain ok)
    level: str  # the validation depth that rejected it: quick | standard | deep; "" otherwise
    tokens: int | None  # the whole example in tokens; None for a line that did not parse


class Bin(NamedTuple):
    low: int
    high: int | None  # None: the open bin over max_length
    count: int


class QuestCheck(NamedTuple):
    path: Path
    format: str  # the FORMATS name the file uses
    spec: str
    max_length: int
    lines: list[LineCheck]  # every non-blank line, in file order
    refused: str  # why the trainer would fail the file whole; "" when it would train it
    split: str  # the held-out split's one-line summary
    training: int  # examples that would train (held-out ones and folded copies excluded)
    examples: dict[int, object]  # line -> its example as the trainer would encode it
    measured: bool  # token lengths were measured (a tokenizer was given)

    def count(self, verdict: str) -> int:
        return sum(1 for line in self.lines if line.verdict == verdict)

    @property
    def failing(self) -> list[LineCheck]:
        return [line for line in self.lines if line.verdict in FAILING]

    @property
    def all_good(self) -> bool:
        return not self.refused and not self.failing

    def lengths(self) -> list[int]:
        return [line.tokens for line in self.lines if line.tokens is not None]


def check_quest(path: Path, config: RealmConfig, tokenizer) -> QuestCheck:
    """The trainer's verdict on every line of ``path``; ``QuestFormatError`` when the file as a
    whole cannot be a quest (as the trainer would refuse it). With ``tokenizer`` None only the
    cheap checks run (no token lengths): what ``realm quest add`` checks before sending."""
    max_length = config.train.max_length
    if tokenizer is None:  # the cheap checks only: no lengths, nothing dropped for length
        verdict = check_content(path, config.quests)
        tokens = {}
    else:
        verdict = check_for_training(path, config.quests, tokenizer, max_length)
        tokens = {
            line: len(encode_example(tokenizer, example, UNLIMITED).input_ids)
            for example, line in zip(verdict.quest.examples, verdict.quest.lines)
        }
    keep = config.quests.duplicates == "keep"
    parts = split(verdict.examples, max_held_out=config.train.val_examples, keep_duplicates=keep)
    held = {normal_key(example) for example in parts.held_out}
    checks = [_line_check(r.line, REJECTED, r.reason, r.level, tokens) for r in verdict.rejections]
    checks += _kept_lines(verdict, held, keep, max_length, tokens)
    checks.sort(key=lambda check: check.line)
    return QuestCheck(
        Path(path),
        verdict.quest.format,
        verdict.spec,
        max_length,
        checks,
        verdict.refused,
        parts.summary(),
        len(parts.train),
        dict(zip(verdict.quest.lines, verdict.quest.examples)) | dict(zip(verdict.lines, verdict.examples)),
        tokenizer is not None,
    )


def _line_check(line: int, verdict: str, reason: str, level: str, tokens: dict[int, int]) -> LineCheck:
    return LineCheck(line, verdict, reason, level, tokens.get(line))


def _kept_lines(verdict: Verdict, held: set[str], keep: bool, max_length: int, tokens: dict[int, int]):
    truncated = set(verdict.truncated)
    first_of: dict[str, int] = {}
    for example, line in zip(verdict.examples, verdict.lines):
        key = normal_key(example)
        first = first_of.setdefault(key, line)
        if key in held:
            yield _line_check(line, HELD_OUT, "kept out of training for the quest's val loss", "", tokens)
        elif first != line and not keep:
            yield _line_check(line, FOLDED, f"repeats line {first}: trained once (quests.duplicates: drop)", "", tokens)
        elif line in truncated:
            reason = f"longer than train.max_length: its first {max_length} tokens train (quests.too_long: truncate)"
            yield _line_check(line, TRUNCATED, reason, "", tokens)
        else:
            yield _line_check(line, OK, "", "", tokens)


def histogram(lengths: list[int], max_length: int, bins: int = 8) -> list[Bin]:
    """``bins`` equal bins from 1 to ``max_length`` tokens, and one for everything longer."""
    width = max(1, -(-max_length // bins))
    edges = [(low, min(low + width - 1, max_length)) for low in range(1, max_length + 1, width)]
    counted = [Bin(low, high, sum(1 for n in lengths if low <= n <= high)) for low, high in edges]
    return counted + [Bin(max_length + 1, None, sum(1 for n in lengths if n > max_length))]


def top_reasons(check: QuestCheck, n: int = 3) -> list[tuple[str, int]]:
    """The most common rejection reasons, with how many lines each."""
    return Counter(line.reason for line in check.failing).most_common(n)


def summary_lines(check: QuestCheck) -> list[str]:
    """A few lines for the player: format, verdicts, top reasons, length against max_length, split."""
    failing = len(check.failing)
    lines = [
        f"{check.path.name}: {check.format} ({check.spec}), {len(check.lines)} lines: "
        f"{len(check.lines) - failing} ok, {failing} rejected"
    ]
    lines += [f"  {count} × {reason}" for reason, count in top_reasons(check)]
    lengths = check.lengths()
    if not check.measured:
        lines.append(f"length: not measured (train.max_length {check.max_length})")
    elif lengths:
        over = sum(1 for n in lengths if n > check.max_length)
        lines.append(
            f"length: {min(lengths)}–{max(lengths)} tokens (median {sorted(lengths)[len(lengths) // 2]}), "
            f"train.max_length {check.max_length}: {over} over"
        )
    lines.append(f"split: {check.split}")
    if check.refused:
        lines.append(f"the trainer would fail the whole file: {check.refused}")
    return lines


def loss_runs(tokenizer, encoded: EncodedExample) -> list[tuple[str, bool]]:
    """The encoded example as text runs, each with whether its tokens carry loss (the labels the
    trainer trains with). A run is decoded whole, so characters split across tokens read right."""
    runs: list[tuple[str, bool]] = []
    start = 0
    ids, labels = encoded.input_ids, encoded.labels
    for end in range(1, len(ids) + 1):
        if end == len(ids) or (labels[end] != IGNORE_INDEX) != (labels[start] != IGNORE_INDEX):
            text = tokenizer.decode(ids[start:end], clean_up_tokenization_spaces=False)
            runs.append((text, labels[start] != IGNORE_INDEX))
            start = end
    return runs
