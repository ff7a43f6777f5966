"""Every quest format, and both validation layers: real files, the real DIO-nano tokenizer."""

from __future__ import annotations

import json

import pytest

from realm.config import QuestsConfig
from realm.model.chatml import IGNORE_INDEX, encode_chat
from realm.model.loading import DIO_NANO, load_tokenizer
from realm.quests.formats import (
    QuestFormatError,
    TextExample,
    encode_example,
    read_quest,
)
from realm.quests.validate import (
    DEEP,
    QUICK,
    STANDARD,
    VALIDATOR_NAME,
    VALIDATOR_VERSION,
    Spec,
    check_for_training,
    check_intake,
    register_spec,
    write_quarantine,
)

CHAT = [{"role": "user", "content": "2+3="}, {"role": "assistant", "content": "5"}]
RULES = QuestsConfig()


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(DIO_NANO)


def _write(tmp_path, content, name="quest.jsonl"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _jsonl(*records, end="\n") -> str:
    return end.join(json.dumps(record, ensure_ascii=False) for record in records) + end


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("record", "fmt", "expected"),
    [
        (
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    *CHAT,
                    {"role": "user", "content": "and 3+3?"},
                    {"role": "assistant", "content": "6"},
                ]
            },
            "messages",
            [
                {"role": "system", "content": "Be brief."},
                *CHAT,
                {"role": "user", "content": "and 3+3?"},
                {"role": "assistant", "content": "6"},
            ],
        ),
        (
            {
                "messages": [
                    {"role": "developer", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "2+"}, {"type": "text", "text": "3="}]},
                    {"role": "assistant", "content": "5"},
                ]
            },
            "messages",
            [{"role": "system", "content": "Be brief."}, *CHAT],
        ),
        (
            {
                "conversations": [
                    {"from": "system", "value": "Be brief."},
                    {"from": "human", "value": "2+3="},
                    {"from": "gpt", "value": "5"},
                ]
            },
            "sharegpt",
            [{"role": "system", "content": "Be brief."}, *CHAT],
        ),
        (
            {"instruction": "Add the numbers.", "input": "2 3", "output": "5"},
            "alpaca",
            [{"role": "user", "content": "Add the numbers.\n\n2 3"}, {"role": "assistant", "content": "5"}],
        ),
        ({"instruction": "2+3=", "input": "", "output": "5"}, "alpaca", CHAT),
        ({"prompt": "2+3=", "completion": "5"}, "completion", CHAT),
        ({"text": "Once upon a time."}, "text", TextExample("Once upon a time.")),
    ],
)
def test_every_format_normalises_to_one_example_form(tmp_path, record, fmt, expected):
    quest = read_quest(_write(tmp_path, _jsonl(record)))
    assert quest.format == fmt
    assert quest.examples == [expected]
    assert quest.lines == [1] and quest.problems == []
    assert isinstance(quest.examples[0], TextExample) == (fmt == "text")


def test_bom_crlf_and_blank_lines_in_any_format(tmp_path):
    text = "\ufeff" + _jsonl({"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": "d"}, end="\r\n")
    quest = read_quest(_write(tmp_path, text.replace("\r\n", "\r\n\r\n", 1)))
    assert quest.examples == [
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
        [{"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}],
    ]
    assert quest.lines == [1, 3] and quest.blank_lines == 1 and quest.total_lines == 3


def test_text_examples_train_on_every_token_and_stop(tokenizer):
    encoded = encode_example(tokenizer, TextExample("hello world"), 64)
    assert encoded.labels == encoded.input_ids
    assert encoded.input_ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(encoded.input_ids[:-1]) == "hello world"
    assert encode_chat(tokenizer, TextExample("hello world"), 64) == encoded  # engines may call either
    assert len(encode_example(tokenizer, TextExample("word " * 100), 16).input_ids) == 16


def test_chats_still_train_on_the_assistant_only(tokenizer):
    encoded = encode_example(tokenizer, CHAT, 64)
    assert encoded == encode_chat(tokenizer, CHAT, 64)
    assert IGNORE_INDEX in encoded.labels


# --------------------------------------------------------------------------- layer 1: the spec


def test_a_file_in_no_known_format_is_refused_whole(tmp_path):
    with pytest.raises(QuestFormatError, match=r"no known quest format \(the first record's keys: answer, question\)"):
        read_quest(_write(tmp_path, _jsonl({"question": "q", "answer": "a"})))


def test_each_format_maps_to_a_spec(tmp_path):
    specs = {}
    for record in ({"messages": CHAT}, {"prompt": "a", "completion": "b"}, {"text": "t"}):
        verdict = check_intake(_write(tmp_path, _jsonl(record)), RULES)
        specs[verdict.quest.format] = verdict.spec
    assert specs == {"messages": "chat_v1", "completion": "completion_v1", "text": "text_v1"}


def test_deny_by_default_and_a_registered_spec_may_check_more(tmp_path, tokenizer, monkeypatch):
    monkeypatch.setattr("realm.quests.validate.SPECS", {})
    with pytest.raises(QuestFormatError, match="maps to no known spec"):
        check_intake(_write(tmp_path, _jsonl({"text": "t"})), RULES)

    def no_digits(example) -> str:
        return "the answer protocol forbids digits" if any(c.isdigit() for c in example) else ""

    register_spec(Spec("skill_v1", ("text",), "a skill's text", check=no_digits))
    path = _write(tmp_path, _jsonl(*({"text": f"word {w}"} for w in ["a", "b", "c", "1"])))
    verdict = check_for_training(path, QuestsConfig(max_bad_share=0.5), tokenizer, 64)
    assert verdict.spec == "skill_v1"
    assert [(r.line, r.level, r.reason) for r in verdict.rejections] == [
        (4, DEEP, "the answer protocol forbids digits")
    ]


# --------------------------------------------------------------------------- layer 2: QUICK


def test_quick_quarantines_lines_and_keeps_the_rest(tmp_path):
    good = [json.dumps({"messages": CHAT})] * 18
    lines = good[:5] + ["not json"] + good[5:] + ['{"messages": [{"role": "user"}]}']
    verdict = check_intake(_write(tmp_path, "\n".join(lines) + "\n"), RULES)
    assert verdict.accepted
    assert len(verdict.examples) == 18
    assert [(r.line, r.level) for r in verdict.rejections] == [(6, QUICK), (20, QUICK)]
    assert verdict.rejections[0].reason.startswith("not valid JSON (")
    assert verdict.rejections[1].reason == 'message 1: no "content" string'
    assert verdict.rejections[0].raw == "not json"
    assert (verdict.rejections[0].validator, verdict.rejections[0].version) == (VALIDATOR_NAME, VALIDATOR_VERSION)


def test_more_bad_lines_than_the_threshold_fail_the_file(tmp_path):
    lines = [json.dumps({"messages": CHAT})] * 8 + ["oops", "oops"]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    verdict = check_intake(path, RULES)
    assert not verdict.accepted
    assert verdict.refused.startswith("2 of 10 lines (20%) are bad, over the 10% limit (quests.max_bad_share)")
    assert "line 9: not valid JSON" in verdict.refused
    assert check_intake(path, QuestsConfig(max_bad_share=0.2)).accepted  # "exceeds", not "reaches"


# --------------------------------------------------------------------------- layer 2: STANDARD, DEEP


def _chat(*turns) -> dict:
    return {"messages": [{"role": role, "content": content} for role, content in turns]}


@pytest.mark.parametrize(
    ("record", "level", "reason"),
    [
        (_chat(("usr", "hi"), ("assistant", "yo")), STANDARD, "turn 1: unknown role 'usr' (did you mean 'user'?)"),
        (
            {"conversations": [{"from": "human", "value": "hi"}, {"from": "gtp", "value": "yo"}]},
            STANDARD,
            "turn 2: unknown role 'gtp' (did you mean 'gpt'?)",
        ),
        (
            _chat(("user", "hi"), ("tool", "yo")),
            STANDARD,
            "turn 2: unknown role 'tool' (expected system, user or assistant)",
        ),
        (_chat(("user", "hi"), ("assistant", "  ")), STANDARD, "turn 2 (assistant) is empty"),
        (_chat(("user", ""), ("assistant", "yo")), STANDARD, "turn 1 (user) is empty"),
        (
            _chat(("user", "hi"), ("assistant", "yo"), ("user", "and?")),
            STANDARD,
            "the conversation ends with the user, not the assistant: nothing to learn at its end",
        ),
        ({"text": "   "}, STANDARD, "empty text"),
        (
            _chat(("user", "Translate: the cat sleeps on the mat"), ("assistant", "the cat sleeps on the mat")),
            DEEP,
            "answer leakage: the assistant's answer (turn 2) appears word for word in the prompt",
        ),
        (
            {"prompt": "Q: capital of France? (Paris, France)", "completion": "Paris, France"},
            DEEP,
            "answer leakage: the assistant's answer (turn 2) appears word for word in the prompt",
        ),
    ],
)
def test_content_checks_name_the_line_and_the_level(tmp_path, tokenizer, record, level, reason):
    fine = (
        {"text": "fine"}
        if "text" in record
        else (
            {"prompt": "p", "completion": "c"}
            if "prompt" in record
            else {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}
            if "conversations" in record
            else {"messages": CHAT}
        )
    )
    path = _write(tmp_path, _jsonl(fine, record, fine))
    verdict = check_for_training(path, QuestsConfig(max_bad_share=0.5, duplicates="keep"), tokenizer, 64)
    assert [(r.line, r.level, r.reason) for r in verdict.rejections] == [(2, level, reason)]
    assert verdict.lines == [1, 3]


def test_short_answers_are_not_called_leaks(tmp_path, tokenizer):
    path = _write(tmp_path, _jsonl(_chat(("user", "Is 5 odd? yes or no"), ("assistant", "yes"))))
    assert check_for_training(path, RULES, tokenizer, 64).rejections == []
    off = QuestsConfig(answer_leak=False)
    leak = _write(tmp_path, _jsonl(_chat(("user", "say hello there friend"), ("assistant", "hello there friend"))))
    assert check_for_training(leak, off, tokenizer, 64).accepted
    assert not check_for_training(leak, RULES, tokenizer, 64).accepted


def test_too_long_examples_are_dropped_or_truncated_and_reported(tmp_path, tokenizer):
    long = {"text": "many words " * 200}
    path = _write(tmp_path, _jsonl(*({"text": f"short {i}"} for i in range(9)), long))

    dropped = check_for_training(path, RULES, tokenizer, 32)
    assert [(r.line, r.reason) for r in dropped.rejections] == [
        (10, "longer than train.max_length (32 tokens); dropped (quests.too_long: drop)")
    ]
    assert len(dropped.examples) == 9 and dropped.truncated == []

    kept = check_for_training(path, QuestsConfig(too_long="truncate"), tokenizer, 32)
    assert kept.rejections == [] and kept.truncated == [10] and len(kept.examples) == 10
    assert len(encode_example(tokenizer, kept.examples[-1], 32).input_ids) == 32
    assert "1 truncated to max_length" in kept.summary()


def test_a_5_mb_line_is_judged_without_tokenizing_all_of_it(tmp_path, tokenizer):
    huge = _chat(("user", "summarise: " + "x" * 5_000_000), ("assistant", "a lot of x"))
    path = _write(tmp_path, _jsonl(*(_chat(("user", f"q{i}"), ("assistant", f"a{i}")) for i in range(9)), huge))
    verdict = check_for_training(path, RULES, tokenizer, 64)
    assert [(r.line, r.reason.split(";")[0]) for r in verdict.rejections] == [
        (10, "longer than train.max_length (64 tokens)")
    ]
    truncated = check_for_training(path, QuestsConfig(too_long="truncate"), tokenizer, 64)
    assert truncated.truncated == [10]
    assert len(truncated.examples[-1][0]["content"]) < 10_000  # clipped before it reaches the engine


def test_exact_duplicates_are_reported_not_rejected(tmp_path, tokenizer):
    """The held-out split folds duplicates (realm/quests/split.py); validation only counts them."""
    records = [_chat(("user", f"q{i}"), ("assistant", f"a{i}")) for i in range(9)] + [
        _chat(("user", "q3"), ("assistant", "a3"))
    ]
    path = _write(tmp_path, _jsonl(*records))
    for rule in ("keep", "drop"):
        verdict = check_for_training(path, QuestsConfig(duplicates=rule), tokenizer, 64)
        assert verdict.duplicates == [10] and len(verdict.examples) == 10 and not verdict.rejections
        assert "1 exact duplicate(s)" in verdict.summary()


# --------------------------------------------------------------------------- the quarantine


def test_every_line_is_accounted_for_in_the_quarantine(tmp_path, tokenizer):
    lines = [json.dumps(_chat(("user", f"q{i}"), ("assistant", f"a{i}"))) for i in range(20)]
    lines[3] = "{broken"
    lines[7] = json.dumps(_chat(("user", "hi"), ("asistant", "yo")))
    lines[11] = ""
    lines[15] = json.dumps({"text": "a text line in a chat file"})
    path = _write(tmp_path, "\n".join(lines) + "\n")
    verdict = check_for_training(path, QuestsConfig(max_bad_share=0.2), tokenizer, 64)

    quarantine = write_quarantine(tmp_path / "quarantine", "quest.jsonl", verdict)
    records = [json.loads(line) for line in quarantine.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["level"]) for r in records] == [(4, QUICK), (8, STANDARD), (16, QUICK)]
    assert records[0]["raw"] == "{broken"
    assert "did you mean 'assistant'" in records[1]["reason"]
    assert "mixed formats" in records[2]["reason"]
    assert {r["validator"] for r in records} == {VALIDATOR_NAME}

    quest = verdict.quest
    trained = set(verdict.lines)
    quarantined = {r["line"] for r in records}
    assert len(trained) + len(quarantined) + quest.blank_lines == quest.total_lines == 20
    assert not trained & quarantined
    assert (
        write_quarantine(
            tmp_path / "quarantine", "clean.jsonl", check_intake(_write(tmp_path, _jsonl({"text": "t"})), RULES)
        )
        is None
    )


def test_the_readme_examples_read_as_the_formats_they_claim(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Quest formats") : readme.index("### Validation")]
    rows = re.findall(r"^\| ([^|]+) \| `(\{.*\})` \|", section, re.M)
    claimed = {
        "OpenAI messages": "messages",
        "ShareGPT": "sharegpt",
        "Alpaca": "alpaca",
        "prompt/completion": "completion",
        "raw text": "text",
    }
    assert [title for title, _ in rows] == list(claimed)
    for title, line in rows:
        verdict = check_intake(_write(tmp_path, line + "\n"), RULES)
        assert verdict.quest.format == claimed[title] and len(verdict.examples) == 1


def test_the_token_bound_that_spares_short_examples_the_tokenizer_really_bounds(tokenizer):
    import random

    from realm.quests.validate import token_upper_bound

    rng = random.Random(7)
    alphabet = "ab é🐉\n<|>x①\t"

    def text(n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, n)))

    examples = [[{"role": "user", "content": text(60)}, {"role": "assistant", "content": text(40)}] for _ in range(300)]
    examples += [TextExample(text(80)) for _ in range(300)]
    for example in examples:
        assert len(encode_example(tokenizer, example, 10**6).input_ids) <= token_upper_bound(example)
