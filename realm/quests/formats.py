"""Quest files in, examples out: reading every quest format (the trainer, ``realm quest check``
and the TUI's Add dialog all read a quest here).

A quest is JSONL, one example a line, in one of the ``FORMATS`` (OpenAI messages, ShareGPT,
Alpaca, prompt/completion, raw text). ``read_quest`` normalises every line to a chat or a
``TextExample``; a line that does not fit becomes a ``LineProblem`` naming the line (validation
quarantines it), and a file that cannot be a quest at all raises ``QuestFormatError`` naming the
file, so the quest board can say exactly what to fix. Examples are encoded as ChatML with loss
labels by ``realm.model.chatml``, which the oracle's eval prompts share.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from realm.files import UnreadableFile, read_bytes
from realm.model.chatml import EncodedExample, Example, encode_chat, encode_text

ROLES = ("system", "user", "assistant")


class QuestFormatError(ValueError):
    """A quest file that cannot be trained on; ``line`` is 1-based, or None for the whole file."""

    def __init__(self, path: Path | str, line: int | None, reason: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{self.path.name} line {line}" if line is not None else self.path.name
        super().__init__(f"{where}: {reason}")


# --- reading -------------------------------------------------------------------------------------


def _reject_whole_file_json(path: Path, text: str) -> None:
    """A JSON array, or one object pretty-printed over many lines, is a common near miss."""
    stripped = text.strip()
    if stripped[0] not in "[{" or "\n" not in stripped:
        return
    try:
        whole = json.loads(stripped)
    except ValueError:
        return
    if isinstance(whole, list):
        raise QuestFormatError(
            path,
            None,
            "expected JSONL (one JSON object per line), got a JSON array; write each element on its own line",
        )
    if isinstance(whole, dict):
        raise QuestFormatError(
            path, None, "expected JSONL (one JSON object per line), got one JSON object spread over several lines"
        )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    names = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }
    return names.get(type(value), type(value).__name__)


# --- every quest format --------------------------------------------------------------------------
#
# ``read_quest`` reads a quest in any supported format and normalises every line into one of two
# example forms the engine encodes: a chat (``list[dict]``, loss on the assistant turns) or a
# ``TextExample`` (raw text, loss on every token). It is lenient line by line: a line that does
# not parse or fit the file's format becomes a ``LineProblem`` (line number, reason, the raw
# line) instead of stopping the read, so validation can quarantine it and account for it.
# Whole-file problems (missing, empty, binary, a JSON array, no known format) still raise
# ``QuestFormatError``.

BINARY_SNIFF_BYTES = 8192  # a NUL byte in the first 8 KiB marks a binary file (git's rule)


class TextExample(str):
    """A raw-text example: trained on all of its tokens (plus the end-of-text token)."""

    __slots__ = ()


class LineProblem(NamedTuple):
    line: int  # 1-based
    reason: str
    raw: str  # the line as read; undecodable bytes shown with backslash escapes


class _Reject(ValueError):
    """A line that does not fit its format; the message is the reason."""


def _chat_messages(record: dict) -> Example:
    messages = record["messages"]
    if not isinstance(messages, list):
        raise _Reject(f'"messages" must be a list, got {_json_type(messages)}')
    chat: Example = []
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            raise _Reject(f"message {index}: expected an object with role and content, got {_json_type(message)}")
        role = message.get("role")
        if not isinstance(role, str):
            raise _Reject(f'message {index}: no "role" string')
        chat.append({"role": OPENAI_ROLE_ALIASES.get(role, role), "content": _content(message.get("content"), index)})
    return chat


OPENAI_ROLE_ALIASES = {"developer": "system"}  # OpenAI's newer name for the system turn
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def _content(content: object, index: int) -> str:
    """A message's text; OpenAI content parts (``[{"type": "text", "text": ...}]``) are joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str) for part in content
    ):
        return "".join(part["text"] for part in content)
    if content is None:
        raise _Reject(f'message {index}: no "content" string')
    raise _Reject(f'message {index}: "content" must be a string (or text parts), got {_json_type(content)}')


def _sharegpt(record: dict) -> Example:
    turns = record["conversations"]
    if not isinstance(turns, list):
        raise _Reject(f'"conversations" must be a list, got {_json_type(turns)}')
    chat: Example = []
    system = record.get("system")
    if isinstance(system, str) and system:
        chat.append({"role": "system", "content": system})
    for index, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict):
            raise _Reject(f'turn {index}: expected an object with "from" and "value", got {_json_type(turn)}')
        speaker, value = turn.get("from"), turn.get("value")
        if not isinstance(speaker, str):
            raise _Reject(f'turn {index}: no "from" string')
        if not isinstance(value, str):
            raise _Reject(f'turn {index}: "value" must be a string, got {_json_type(value)}')
        chat.append({"role": SHAREGPT_ROLES.get(speaker, speaker), "content": value})
    return chat


def _alpaca(record: dict) -> Example:
    fields = {key: record.get(key, "") for key in ("instruction", "input", "output", "system")}
    for key, value in fields.items():
        if not isinstance(value, str):
            raise _Reject(f'"{key}" must be a string, got {_json_type(value)}')
    prompt = fields["instruction"] + (f"\n\n{fields['input']}" if fields["input"] else "")
    chat = [{"role": "system", "content": fields["system"]}] if fields["system"] else []
    return chat + [{"role": "user", "content": prompt}, {"role": "assistant", "content": fields["output"]}]


def _prompt_completion(record: dict) -> Example:
    for key in ("prompt", "completion"):
        if not isinstance(record[key], str):
            raise _Reject(f'"{key}" must be a string, got {_json_type(record[key])}')
    return [{"role": "user", "content": record["prompt"]}, {"role": "assistant", "content": record["completion"]}]


def _text(record: dict) -> TextExample:
    if not isinstance(record["text"], str):
        raise _Reject(f'"text" must be a string, got {_json_type(record["text"])}')
    return TextExample(record["text"])


class QuestFormat(NamedTuple):
    name: str
    title: str  # how the README and the reasons name it
    keys: tuple[str, ...]  # a record with all of these keys is in this format
    normalise: object  # record -> Example | TextExample, raising _Reject


# Checked in this order: the first format whose keys a record has is the record's format.
FORMATS: tuple[QuestFormat, ...] = (
    QuestFormat("messages", "OpenAI messages", ("messages",), _chat_messages),
    QuestFormat("sharegpt", "ShareGPT conversations", ("conversations",), _sharegpt),
    QuestFormat("alpaca", "Alpaca instruction/input/output", ("instruction", "output"), _alpaca),
    QuestFormat("completion", "prompt/completion", ("prompt", "completion"), _prompt_completion),
    QuestFormat("text", "raw text", ("text",), _text),
)
KNOWN_SHAPES = "; ".join(f"{f.title} ({'+'.join(f.keys)})" for f in FORMATS)


def format_of(record: dict) -> QuestFormat | None:
    return next((f for f in FORMATS if all(key in record for key in f.keys)), None)


class Quest(NamedTuple):
    """A quest file read line by line: its examples, and every line that did not make it."""

    path: Path
    format: str  # the FORMATS name the file's lines mostly use
    examples: list  # Example (a chat) or TextExample, in file order
    lines: list[int]  # the source line of each example
    problems: list[LineProblem]  # lines that do not parse or do not fit the format
    total_lines: int  # every line of the file, blank ones included
    blank_lines: int


def read_quest(path: Path) -> Quest:
    """Read a quest file in any known format; bad lines become ``problems``, not errors.

    UTF-8 with or without a BOM, LF or CRLF; each line is decoded on its own, so one line of
    Latin-1 costs that line, not the file. The file's format is the one most of its lines use
    (ties: the earliest); lines in another format are problems ("mixed formats"). Raises
    ``QuestFormatError`` when the file as a whole cannot be a quest.
    """
    path = Path(path)
    data = _read_bytes(path)
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        if _utf16(data):
            raise QuestFormatError(path, None, "UTF-16 text (a NUL byte beside each letter): save the file as UTF-8")
        raise QuestFormatError(path, line, "binary data (a NUL byte): expected a UTF-8 JSONL text file")
    data = data.removeprefix(b"\xef\xbb\xbf")
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # the newline that ends the last line does not start another
    if not data.strip():
        raise QuestFormatError(path, None, f"file is empty: expected JSONL, one object per line ({KNOWN_SHAPES})")
    truncated_last = not data.endswith(b"\n")
    try:
        _reject_whole_file_json(path, data.decode("utf-8"))
    except UnicodeDecodeError:
        pass  # not one JSON document: each line's bad bytes are reported with its number below

    problems: list[LineProblem] = []
    records: list[tuple[int, str, dict]] = []
    blank = 0
    for number, raw in enumerate(raw_lines, start=1):
        raw = raw.removesuffix(b"\r")
        text, problem = _decode_line(number, raw)
        if problem:
            problems.append(problem)
        elif not text.strip():
            blank += 1
        else:
            last = truncated_last and number == len(raw_lines)
            record, problem = _parse_record(number, text, last)
            if problem:
                problems.append(problem)
            else:
                records.append((number, text, record))
    if not records:
        _refuse_whole_file(path, problems)

    chosen = _majority_format(records)
    if chosen is None:
        keys = ", ".join(sorted(records[0][2])) or "none"
        raise QuestFormatError(
            path, None, f"no known quest format (the first record's keys: {keys}); expected one of: {KNOWN_SHAPES}"
        )
    examples, lines = _normalised(records, chosen, problems)
    problems.sort(key=lambda problem: problem.line)
    return Quest(path, chosen.name, examples, lines, problems, len(raw_lines), blank)


def _normalised(
    records: list[tuple[int, str, dict]], chosen: QuestFormat, problems: list[LineProblem]
) -> tuple[list, list[int]]:
    """The records in the file's format as examples, with their line numbers; every other
    record is added to ``problems``."""
    examples, lines = [], []
    for number, text, record in records:
        found = format_of(record)
        if found is None:
            keys = ", ".join(sorted(record)) or "none"
            problems.append(LineProblem(number, f"no known quest format (keys found: {keys})", text))
            continue
        if found is not chosen:
            reason = f"mixed formats: this line is {found.title} but the file is {chosen.title}; one format per file"
            problems.append(LineProblem(number, reason, text))
            continue
        try:
            examples.append(chosen.normalise(record))
            lines.append(number)
        except _Reject as exc:
            problems.append(LineProblem(number, str(exc), text))
    return examples, lines


def _utf16(data: bytes) -> bool:
    """A byte order mark of UTF-16, or the NUL half of each ASCII letter at every other byte."""
    head = data[:64]
    return head[:2] in (b"\xff\xfe", b"\xfe\xff") or (
        len(head) >= 8 and max(head[0::2].count(0), head[1::2].count(0)) * 2 >= len(head) - 1
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return read_bytes(path)
    except UnreadableFile as exc:
        raise QuestFormatError(path, None, exc.reason) from None


def _decode_line(number: int, raw: bytes) -> tuple[str, LineProblem | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1}); save the file as UTF-8"
        return "", LineProblem(number, reason, raw.decode("utf-8", errors="backslashreplace"))


def _parse_record(number: int, text: str, last_unterminated: bool) -> tuple[dict | None, LineProblem | None]:
    try:
        record = json.loads(text)
    except RecursionError:
        return None, LineProblem(number, "JSON nested too deep to read (thousands of [ or { inside each other)", text)
    except ValueError as exc:
        # the one other ValueError json.loads raises: an integer past Python's digit limit
        detail = f"{exc.msg}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "a number too long"
        hint = "; the last line has no newline and looks cut off" if last_unterminated else ""
        return None, LineProblem(number, f"not valid JSON ({detail}){hint}", text)
    if "\\u" in text and not _encodable(record):
        return None, LineProblem(
            number, "a \\u escape of half a UTF-16 pair (such as \\ud800), which is not text", text
        )
    if isinstance(record, list):
        return None, LineProblem(
            number, "expected JSONL (one JSON object per line), got a JSON array on this line", text
        )
    if not isinstance(record, dict):
        return None, LineProblem(number, f"expected a JSON object, got {_json_type(record)}", text)
    return record, None


def _encodable(record: object) -> bool:
    """No lone surrogate in a parsed record: JSON's ``\\ud800`` decodes to one, which no UTF-8
    tokenizer or file can take."""
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_whole_file(path: Path, problems: list[LineProblem]) -> None:
    first = problems[0]
    if len(problems) == 1:
        raise QuestFormatError(path, first.line, first.reason)
    reason = f"none of its {len(problems)} lines holds a quest record; first, line {first.line}: {first.reason}"
    raise QuestFormatError(path, None, reason)


def _majority_format(records: list[tuple[int, str, dict]]) -> QuestFormat | None:
    counts: dict[QuestFormat | None, int] = {}
    for _, _, record in records:
        found = format_of(record)
        counts[found] = counts.get(found, 0) + 1
    return max(counts, key=counts.get)  # dicts keep insertion order: ties go to the earliest


def encode_example(tokenizer, example, max_length: int) -> EncodedExample:
    """A chat or a ``TextExample``, whichever ``example`` is."""
    if isinstance(example, str):
        return encode_text(tokenizer, example, max_length)
    return encode_chat(tokenizer, example, max_length)
