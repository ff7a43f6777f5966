"""Two layers of quest validation, and the quarantine that accounts for every rejected line.

Layer 1, the spec (deny by default): a quest file's format must map to a registered spec
(``chat_v1``, ``completion_v1``, ``text_v1``; skills register their own with ``register_spec``)
or the file is refused whole, with the reason.

Layer 2, the content, at three depths:

* QUICK, at intake: every line decodes, parses and fits the file's format (``read_quest``).
* STANDARD, before training: known roles (typos get a suggestion), no empty turns, the
  conversation ends with the assistant, no example longer than ``train.max_length`` tokens
  (dropped or truncated as ``quests.too_long`` says, and reported either way). Exact
  duplicates are listed, not rejected: the held-out split (``realm.quests.split``) folds them.
* DEEP, before training: answer leakage (an assistant answer that appears word for word in
  the prompt before it).

Every rejected line becomes a ``Rejection`` naming the line, the reason, the level and the
validator's name and version (so lineage can count which validator rejects what). A file
whose share of rejected lines exceeds ``quests.max_bad_share`` fails whole.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from realm.config import QuestsConfig
from realm.files import atomic_write
from realm.model.chatml import IM_END, IM_START
from realm.quests.formats import ROLES, SHAREGPT_ROLES, Quest, QuestFormatError, TextExample, encode_example, read_quest
from realm.quests.split import exact_key

SPEC_VALIDATOR_NAME, SPEC_VALIDATOR_VERSION = "spec_validator", "1.0.0"
VALIDATOR_NAME, VALIDATOR_VERSION = "data_validator", "1.0.0"
QUICK, STANDARD, DEEP = "quick", "standard", "deep"


# --------------------------------------------------------------------------- layer 1: specs


class Spec(NamedTuple):
    name: str
    formats: tuple[str, ...]  # realm.quests.formats.FORMATS names this spec accepts
    description: str
    # An extra per-example check for specialised specs (a skill's answer protocol): returns a
    # reason to reject the example, or "" to accept it. Runs at the DEEP level.
    check: Callable[[object], str] | None = None


SPECS: dict[str, Spec] = {}


def register_spec(spec: Spec) -> Spec:
    SPECS[spec.name] = spec
    return spec


register_spec(Spec("chat_v1", ("messages", "sharegpt", "alpaca"), "chats: loss on the assistant turns"))
register_spec(Spec("completion_v1", ("completion",), "prompt/completion pairs: loss on the completion"))
register_spec(Spec("text_v1", ("text",), "raw text: loss on every token"))


def spec_for(quest: Quest) -> Spec:
    """The spec the quest's format maps to; refuse the whole file when none does."""
    for spec in SPECS.values():
        if quest.format in spec.formats:
            return spec
    known = ", ".join(sorted(SPECS))
    raise QuestFormatError(quest.path, None, f"format {quest.format!r} maps to no known spec (known: {known})")


# --------------------------------------------------------------------------- verdicts


class Rejection(NamedTuple):
    line: int
    reason: str
    level: str  # quick | standard | deep
    validator: str
    version: str
    raw: str  # the source line (empty for examples checked after parsing)


class Verdict(NamedTuple):
    """What validation made of one quest file."""

    quest: Quest
    spec: str
    examples: list  # the examples to train on, in file order
    lines: list[int]  # the source line of each
    rejections: list[Rejection]  # lines quarantined
    truncated: list[int]  # lines kept but cut to max_length (quests.too_long: truncate)
    duplicates: list[int]  # lines that repeat an earlier line exactly (the split folds them)
    refused: str  # why the file fails whole; "" when it is accepted

    @property
    def accepted(self) -> bool:
        return not self.refused

    def summary(self) -> str:
        text = f"{len(self.examples)} examples ({self.spec}, {self.quest.format})"
        if self.rejections:
            text += f", {len(self.rejections)} line(s) quarantined"
        if self.truncated:
            text += f", {len(self.truncated)} truncated to max_length"
        if self.duplicates:
            text += f", {len(self.duplicates)} exact duplicate(s)"
        return text


def _quick_rejections(quest: Quest) -> list[Rejection]:
    return [Rejection(p.line, p.reason, QUICK, VALIDATOR_NAME, VALIDATOR_VERSION, p.raw) for p in quest.problems]


def check_intake(path: Path, rules: QuestsConfig) -> Verdict:
    """Layer 1 and QUICK: what the trainer checks as a quest arrives. Raises nothing for bad
    lines; a file that cannot be a quest at all raises ``QuestFormatError``."""
    quest = read_quest(path)
    spec = spec_for(quest)
    return _judge(quest, spec, list(quest.examples), list(quest.lines), _quick_rejections(quest), [], rules)


def check_for_training(path: Path, rules: QuestsConfig, tokenizer, max_length: int) -> Verdict:
    """Both layers at every depth: what the trainer checks right before a battle."""
    return _check(path, rules, tokenizer, max_length)


def check_content(path: Path, rules: QuestsConfig) -> Verdict:
    """Both layers at every depth but the token length: the cheap checks ``realm quest add`` and
    the TUI run before sending a file, with no tokenizer to load."""
    return _check(path, rules, None, 0)


def _check(path: Path, rules: QuestsConfig, tokenizer, max_length: int) -> Verdict:
    quest = read_quest(path)
    spec = spec_for(quest)
    rejections = _quick_rejections(quest)
    budget = (max_length + 1) * longest_token_chars(tokenizer) if tokenizer is not None else 0
    seen: dict[str, int] = {}
    examples, lines, truncated, duplicates = [], [], [], []
    for example, line in zip(quest.examples, quest.lines):

        def reject(reason: str, level: str = STANDARD) -> None:
            rejections.append(Rejection(line, reason, level, VALIDATOR_NAME, VALIDATOR_VERSION, ""))

        reason = standard_problem(example)
        if reason:
            reject(reason)
            continue
        key = exact_key(example)
        if key in seen:
            duplicates.append(line)
        seen.setdefault(key, line)
        reason = deep_problem(example, rules, spec)
        if reason:
            reject(reason, DEEP)
            continue
        clipped = clip_example(example, budget) if tokenizer is not None else example
        if (
            tokenizer is not None
            and token_upper_bound(example) > max_length
            and too_long(tokenizer, clipped, max_length)
        ):
            if rules.too_long == "drop":
                reject(f"longer than train.max_length ({max_length} tokens); dropped (quests.too_long: drop)")
                continue
            truncated.append(line)
            example = clipped
        examples.append(example)
        lines.append(line)
    rejections.sort(key=lambda rejection: rejection.line)
    return _judge(quest, spec, examples, lines, rejections, truncated, rules, duplicates)


def _judge(quest, spec, examples, lines, rejections, truncated, rules: QuestsConfig, duplicates=()) -> Verdict:
    content_lines = max(quest.total_lines - quest.blank_lines, 1)
    share = len(rejections) / content_lines
    refused = ""
    if share > rules.max_bad_share:
        first = rejections[0]
        refused = (
            f"{len(rejections)} of {content_lines} lines ({share:.0%}) are bad, over the "
            f"{rules.max_bad_share:.0%} limit (quests.max_bad_share); first, line {first.line}: {first.reason}"
        )
    elif not examples:
        refused = "no trainable example left after validation"
    return Verdict(quest, spec.name, examples, lines, rejections, truncated, list(duplicates), refused)


# --------------------------------------------------------------------------- layer 2 checks


KNOWN_ROLE_NAMES = (*ROLES, *SHAREGPT_ROLES)


def standard_problem(example) -> str:
    """Why ``example`` is not fit to train on (STANDARD), or ""."""
    if isinstance(example, TextExample):
        return "" if example.strip() else "empty text"
    if not example:
        return "no turns"
    for index, message in enumerate(example, start=1):
        role = message["role"]
        if role not in ROLES:
            close = difflib.get_close_matches(role, KNOWN_ROLE_NAMES, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else " (expected system, user or assistant)"
            return f"turn {index}: unknown role {role!r}{hint}"
        if not message["content"].strip():
            return f"turn {index} ({role}) is empty"
    if example[-1]["role"] != "assistant":
        return f"the conversation ends with the {example[-1]['role']}, not the assistant: nothing to learn at its end"
    return ""


def deep_problem(example, rules: QuestsConfig, spec: Spec) -> str:
    """Why ``example`` would teach the wrong thing (DEEP), or ""."""
    if rules.answer_leak and not isinstance(example, TextExample):
        prompt = ""
        for index, message in enumerate(example, start=1):
            if message["role"] != "assistant":
                prompt += "\n" + message["content"]
                continue
            answer = message["content"].strip()
            if len(answer) >= rules.leak_min_chars and answer in prompt:
                return f"answer leakage: the assistant's answer (turn {index}) appears word for word in the prompt"
    if spec.check is not None:
        return spec.check(example)
    return ""


def token_upper_bound(example) -> int:
    """At most this many tokens: every token covers at least one byte of UTF-8 (byte-level BPE,
    SentencePiece with byte fallback), and each ChatML marker or newline is at most its own
    length in tokens. Short examples, most of them, need no tokenizing to be judged."""
    if isinstance(example, TextExample):
        return len(example.encode("utf-8")) + 1  # + the end-of-text token
    markers = len(IM_START) + len(IM_END) + 2  # the two newlines
    return sum(markers + len(m["role"].encode("utf-8")) + len(m["content"].encode("utf-8")) for m in example)


def too_long(tokenizer, example, max_length: int) -> bool:
    return len(encode_example(tokenizer, example, max_length + 1).input_ids) > max_length


def longest_token_chars(tokenizer) -> int:
    """An upper bound on the characters one token covers: text longer than
    ``(n + 1) * this`` surely has more than ``n`` tokens, so it never needs tokenizing whole."""
    cached = getattr(tokenizer, "_realm_longest_token", None)
    if cached is None:
        cached = max((len(token) for token in tokenizer.get_vocab()), default=1)
        tokenizer._realm_longest_token = cached
    return cached


def clip_example(example, chars: int):
    """``example`` with every text cut to ``chars`` characters (cheap to tokenize)."""
    if isinstance(example, TextExample):
        return TextExample(example[:chars])
    return [{"role": m["role"], "content": m["content"][:chars]} for m in example]


# --------------------------------------------------------------------------- the quarantine


QUARANTINE_SUFFIX = ".quarantine.jsonl"


def quarantine_path(folder: Path, name: str) -> Path:
    return folder / f"{name}{QUARANTINE_SUFFIX}"


def write_quarantine(folder: Path, name: str, verdict: Verdict) -> Path | None:
    """``folder/NAME.quarantine.jsonl``: one record per rejected (or truncated) line, written atomically.

    The quest file itself is never rewritten; this is a copy of its bad lines with the reasons.
    Returns None (and writes nothing) when every line was fine.
    """
    records = [
        {
            "line": r.line,
            "action": "quarantined",
            "level": r.level,
            "reason": r.reason,
            "validator": r.validator,
            "version": r.version,
            "raw": r.raw,
        }
        for r in verdict.rejections
    ]
    records += [
        {
            "line": line,
            "action": "truncated",
            "level": STANDARD,
            "reason": "longer than train.max_length; truncated",
            "validator": VALIDATOR_NAME,
            "version": VALIDATOR_VERSION,
            "raw": "",
        }
        for line in verdict.truncated
    ]
    if not records:
        return None
    records.sort(key=lambda record: record["line"])
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    return atomic_write(quarantine_path(folder, name), text, private=True)  # the lines may be someone's secrets
