"""Real quest files for the quest check's tests: good, mixed, all bad, malformed, unknown, too long."""

from __future__ import annotations

import json
from pathlib import Path


def chat(user: str, assistant: str, role: str = "assistant") -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": role, "content": assistant}]}


def write(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def good(folder: Path, n: int = 30) -> Path:
    return write(folder / "good.jsonl", [chat(f"What is {i} plus {i}?", f"It is {2 * i}.") for i in range(n)])


def mixed(folder: Path) -> Path:
    """30 good lines and 3 bad ones (line 31: a role typo, 32: cut-off JSON, 33: ends with the user)."""
    records = [chat(f"What is {i} plus {i}?", f"It is {2 * i}.") for i in range(30)]
    records += [
        chat("hi", "hello", role="asistant"),
        '{"messages": [',
        {"messages": [{"role": "user", "content": "q"}]},
    ]
    return write(folder / "mixed.jsonl", records)


def all_bad(folder: Path) -> Path:
    return write(folder / "all-bad.jsonl", [chat(f"q{i}", f"a{i}", role="asistant") for i in range(5)])


def malformed(folder: Path) -> Path:
    path = folder / "malformed.jsonl"
    path.write_text('{"messages": [\n', encoding="utf-8")
    return path


def unknown_format(folder: Path) -> Path:
    return write(folder / "unknown.jsonl", [{"question": "q", "answer": "a"}])


def too_long(folder: Path, words: int = 400) -> Path:
    """Lines 1-20 short, line 21 far longer than 256 tokens."""
    records = [chat(f"What is {i} plus {i}?", f"It is {2 * i}.") for i in range(20)]
    records.append(chat("Tell me a long story.", " ".join(f"word{i}" for i in range(words))))
    return write(folder / "long.jsonl", records)
