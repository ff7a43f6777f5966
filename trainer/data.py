"""Quest files in, training tensors out: reading, the ChatML rendering, loss masking, batching.

A quest is JSONL, one chat a line: ``{"messages": [{"role": "user", "content": ...}, ...]}``
(the OpenAI messages shape). Every problem is a ``QuestFormatError`` that names the file and
the line, so the quest board can say exactly what to fix.

DIO is trained on plain ChatML, the same text the tokenizer's chat template writes::

    <|im_start|>{role}\\n{content}<|im_end|>\\n

and learns only what the assistant says: the loss covers each assistant turn's content and its
closing ``<|im_end|>`` (so DIO learns to stop), nothing else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import torch

ROLES = ("system", "user", "assistant")
IGNORE_INDEX = -100
IM_START, IM_END = "<|im_start|>", "<|im_end|>"

# Plain ChatML, no Qwen3 <think> injection. Kept in one place: the DIO-nano build ships it and
# model.load_tokenizer puts it on tokenizers whose own template writes something else.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

Example = list[dict]  # OpenAI messages: [{"role": "user", "content": "..."}, ...]


class QuestFormatError(ValueError):
    """A quest file that cannot be trained on; ``line`` is 1-based, or None for the whole file."""

    def __init__(self, path: Path | str, line: int | None, reason: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{self.path.name} line {line}" if line is not None else self.path.name
        super().__init__(f"{where}: {reason}")


# --- reading -------------------------------------------------------------------------------------


def read_messages_jsonl(path: Path) -> list[Example]:
    """Every chat in ``path``, checked; raise ``QuestFormatError`` at the first problem.

    UTF-8 (a BOM is fine), LF or CRLF, blank lines skipped. Each line is one JSON object with a
    non-empty ``messages`` list of ``{role, content}`` (roles: system, user, assistant; content a
    string) holding at least one assistant turn. The chats come back as plain
    ``{"role", "content"}`` dicts; other keys are dropped.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise QuestFormatError(path, None, "file not found") from None
    except IsADirectoryError:
        raise QuestFormatError(path, None, "is a folder, not a quest file") from None
    except OSError as exc:
        raise QuestFormatError(path, None, f"cannot read the file ({exc.strerror or exc})") from None
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise QuestFormatError(path, line, "binary data (a NUL byte): expected a UTF-8 JSONL text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        reason = f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        raise QuestFormatError(path, line, reason) from None
    if not text.strip():
        raise QuestFormatError(path, None, 'file is empty: expected JSONL, one {"messages": [...]} object per line')
    _reject_whole_file_json(path, text)

    examples: list[Example] = []
    # Split on "\n" only: str.splitlines would also break on U+2028 and friends, which JSON
    # allows raw inside strings.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        examples.append(_parse_line(path, number, line))
    return examples


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


def _parse_line(path: Path, number: int, line: str) -> Example:
    def fail(reason: str) -> QuestFormatError:
        return QuestFormatError(path, number, reason)

    try:
        record = json.loads(line)
    except ValueError as exc:
        detail = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise fail(f"not valid JSON ({detail})") from None
    if isinstance(record, list):
        raise fail("expected JSONL (one JSON object per line), got a JSON array on this line")
    if not isinstance(record, dict):
        raise fail(f'expected a JSON object like {{"messages": [...]}}, got {_json_type(record)}')
    if "messages" not in record:
        keys = ", ".join(sorted(record)) or "none"
        raise fail(f'no "messages" key (keys found: {keys})')
    messages = record["messages"]
    if not isinstance(messages, list):
        raise fail(f'"messages" must be a list, got {_json_type(messages)}')
    if not messages:
        raise fail('"messages" is empty')
    chat: Example = []
    for index, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            raise fail(f"message {index}: expected an object with role and content, got {_json_type(message)}")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            if role is None:
                raise fail(f'message {index}: no "role"')
            raise fail(f"message {index}: unknown role {role!r} (expected system, user or assistant)")
        if not isinstance(content, str):
            if content is None:
                raise fail(f'message {index}: no "content" string')
            raise fail(f'message {index}: "content" must be a string, got {_json_type(content)}')
        chat.append({"role": role, "content": content})
    if not any(message["role"] == "assistant" for message in chat):
        raise fail("no assistant message, so nothing to learn")
    return chat


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


# --- rendering and masking -----------------------------------------------------------------------


class EncodedExample(NamedTuple):
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX where there is no loss; not shifted (HF models shift)


def render_chatml(messages: Example, add_generation_prompt: bool = False) -> str:
    """The ChatML text of ``messages``: what ``CHATML_TEMPLATE`` renders."""
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")


def encode_chat(tokenizer, messages: Example, max_length: int) -> EncodedExample:
    """Token ids of the ChatML rendering, with labels on assistant content + its ``<|im_end|>``.

    The text is exactly ``render_chatml(messages)`` (and the chat template's output). It is
    encoded piece by piece: the ``<|im_start|>role\\n`` header, the content, ``<|im_end|>``,
    ``\\n``. That is the split generation sees (the prompt ends at ``assistant\\n``, and the
    reply is tokenized on its own), and it keeps the mask exact. Control tokens typed inside a
    message's content (a literal ``<|im_end|>``) are encoded as plain text, so content cannot
    forge turn boundaries; added non-special tokens such as ``<think>`` stay single tokens.
    The result is cut to the first ``max_length`` tokens.
    """
    if max_length < 1:
        raise ValueError("max_length must be at least 1")
    start, end, newline = _markers(tokenizer)
    input_ids: list[int] = []
    labels: list[int] = []
    for message in messages:
        head = start + _text_ids(tokenizer, message["role"] + "\n")
        body = _text_ids(tokenizer, message["content"]) if message["content"] else []
        input_ids += head + body + end + newline
        if message["role"] == "assistant":
            labels += [IGNORE_INDEX] * len(head) + body + end + [IGNORE_INDEX] * len(newline)
        else:
            labels += [IGNORE_INDEX] * (len(head) + len(body) + len(end) + len(newline))
        if len(input_ids) >= max_length:
            break
    return EncodedExample(input_ids[:max_length], labels[:max_length])


def _text_ids(tokenizer, text: str) -> list[int]:
    """``text`` as ordinary text: special tokens written in it are not matched."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def _markers(tokenizer) -> tuple[list[int], list[int], list[int]]:
    """Ids of ``<|im_start|>``, ``<|im_end|>`` and ``\\n``.

    The markers are matched as single tokens when the vocabulary has them (DIO-nano, Qwen), and
    encoded as text by tokenizers that lack them.
    """
    start = tokenizer(IM_START, add_special_tokens=False)["input_ids"]
    end = tokenizer(IM_END, add_special_tokens=False)["input_ids"]
    return start, end, _text_ids(tokenizer, "\n")


# --- batching ------------------------------------------------------------------------------------


def collate(examples: list[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad into ``input_ids``, ``attention_mask`` and ``labels`` (IGNORE_INDEX on pads)."""
    if not examples:
        raise ValueError("collate needs at least one example")
    width = max(len(example.input_ids) for example in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(example.labels, dtype=torch.long)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
