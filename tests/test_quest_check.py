"""The offline quest check: the trainer's layers, token lengths, the held-out split, --show's
loss highlighting, and ``realm quest check`` / ``realm quest add``'s intake as a user runs them."""

from __future__ import annotations

import json

import msgspec
import pytest
from quest_files_fixtures import all_bad, good, malformed, mixed, too_long, unknown_format
from test_cli import realm, realm_to_a_reader_gone, write_config

from realm.config import QuestsConfig, RealmConfig, TrainConfig
from realm.model.chatml import IGNORE_INDEX
from realm.model.loading import DIO_NANO, load_tokenizer
from realm.quest_files import QuestFileError, intake_check, skipped_note
from realm.quests.check import check_quest, histogram, loss_runs, summary_lines
from realm.quests.formats import QuestFormatError, encode_example
from realm.quests.validate import check_for_training

DEFAULT_MAX_LENGTH = TrainConfig().max_length


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(DIO_NANO)


def test_a_good_file_is_all_ok_and_its_held_out_lines_are_the_splits(tmp_path, tokenizer):
    check = check_quest(good(tmp_path), RealmConfig(), tokenizer)
    assert (check.format, check.spec, check.refused) == ("messages", "chat_v1", "")
    assert check.all_good and len(check.lines) == 30
    held = [c.line for c in check.lines if c.verdict == "held out"]
    assert len(held) == 3  # one in ten of 30 distinct examples
    assert check.training == 27
    assert "3 of 30 distinct examples held out" in check.split
    # the lengths are the trainer's own encoding of each line
    verdict = check_for_training(check.path, RealmConfig().quests, tokenizer, 256)
    first = len(encode_example(tokenizer, verdict.examples[0], 256).input_ids)
    assert check.lines[0].tokens == first


def test_a_mixed_file_names_each_bad_line_with_the_validators_reason(tmp_path, tokenizer):
    check = check_quest(mixed(tmp_path), RealmConfig(), tokenizer)
    bad = {c.line: c for c in check.failing}
    assert sorted(bad) == [31, 32, 33]
    assert bad[31].reason == "turn 2: unknown role 'asistant' (did you mean 'assistant'?)"
    assert bad[31].level == "standard" and bad[31].tokens is not None
    assert bad[32].reason.startswith("not valid JSON") and bad[32].level == "quick" and bad[32].tokens is None
    assert "ends with the user" in bad[33].reason
    assert check.refused == ""  # 3 of 33 lines: under quests.max_bad_share 10 %
    summary = summary_lines(check)
    assert summary[0] == "mixed.jsonl: messages (chat_v1), 33 lines: 30 ok, 3 rejected"
    assert "  1 × turn 2: unknown role 'asistant' (did you mean 'assistant'?)" in summary


def test_over_length_lines_are_dropped_or_truncated_as_the_config_says(tmp_path, tokenizer):
    path = too_long(tmp_path)
    short = RealmConfig(train=TrainConfig(max_length=256))
    dropped = check_quest(path, short, tokenizer)
    long_line = dropped.lines[-1]
    assert long_line.line == 21 and long_line.verdict == "rejected" and long_line.tokens > 256
    assert long_line.reason.startswith("longer than train.max_length (256 tokens); dropped")
    bins = histogram(dropped.lengths(), 256)
    assert bins[-1].low == 257 and bins[-1].high is None and bins[-1].count == 1
    assert sum(b.count for b in bins) == 21
    assert "train.max_length 256: 1 over" in "\n".join(summary_lines(dropped))
    truncated = check_quest(path, msgspec.structs.replace(short, quests=QuestsConfig(too_long="truncate")), tokenizer)
    assert truncated.lines[-1].verdict == "truncated" and truncated.all_good
    encoded = encode_example(tokenizer, truncated.examples[21], 256)
    assert len(encoded.input_ids) == 256


def test_loss_runs_cover_exactly_the_tokens_the_trainer_computes_loss_on(tokenizer):
    example = [{"role": "user", "content": "2+3="}, {"role": "assistant", "content": "five ünïcode"}]
    encoded = encode_example(tokenizer, example, 256)
    runs = loss_runs(tokenizer, encoded)
    assert "".join(text for text, _ in runs) == tokenizer.decode(encoded.input_ids, clean_up_tokenization_spaces=False)
    assert [text for text, loss in runs if loss] == ["five ünïcode<|im_end|>"]
    loss_ids = [i for i, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE_INDEX]
    assert tokenizer.decode(loss_ids) == "five ünïcode<|im_end|>"


def test_whole_file_errors_are_the_readers(tmp_path, tokenizer):
    with pytest.raises(QuestFormatError, match="no known quest format"):
        check_quest(unknown_format(tmp_path), RealmConfig(), tokenizer)
    with pytest.raises(QuestFormatError) as caught:
        check_quest(malformed(tmp_path), RealmConfig(), tokenizer)
    assert caught.value.line == 1 and caught.value.reason.startswith("not valid JSON")


def test_intake_refuses_a_file_that_would_fail_and_counts_the_lines_a_mixed_one_skips(tmp_path):
    with pytest.raises(QuestFileError) as caught:
        intake_check(all_bad(tmp_path), RealmConfig())
    message = str(caught.value)
    assert message.startswith(f"not sent, {tmp_path / 'all-bad.jsonl'} line 1: turn 2: unknown role 'asistant'")
    assert "(5 of 5 lines would be rejected" in message and "see `realm quest check " in message
    check = intake_check(mixed(tmp_path), RealmConfig())
    assert not check.measured and len(check.failing) == 3
    assert skipped_note(check).startswith("3 of 33 lines will be skipped (first, line 31: turn 2: unknown role")
    assert intake_check(unknown_format(tmp_path), RealmConfig()) is None  # the trainer refuses it and keeps it


# ------------------------------------------------------------------ the command, as a user runs it


def test_quest_check_command_text_json_show_and_exit_codes(tmp_path):
    home = ("--home", str(tmp_path / "home"))
    path = mixed(tmp_path)
    text = realm("quest", "check", str(path), "--show", "31", *home)
    assert text.returncode == 1, text.stderr
    out = text.stdout
    assert out.startswith("mixed.jsonl: messages (chat_v1), 33 lines: 30 ok, 3 rejected\n")
    assert "     31  rejected" in out and "unknown role 'asistant'" in out
    assert f"token lengths against train.max_length {DEFAULT_MAX_LENGTH}:" in out
    assert "line 31 as the trainer trains it:" in out and "carry loss" in out
    assert "<|im_start|>user\nhi<|im_end|>\n<|im_start|>asistant\nhello<|im_end|>" in out

    gone = realm_to_a_reader_gone("quest", "check", str(path), *home)  # `realm quest check FILE | head -0`
    assert (gone.returncode, gone.stderr) == (141, ""), (
        "a reader gone early, as for every command; not 1: lines rejected"
    )

    ok = realm("quest", "check", str(good(tmp_path)), "--json", "--show", "1", *home)
    assert ok.returncode == 0, ok.stderr
    document = json.loads(ok.stdout)
    assert (document["format"], document["ok"], document["max_length"]) == ("messages", True, DEFAULT_MAX_LENGTH)
    assert len(document["lines"]) == 30 and len(document["held_out_lines"]) == 3
    assert sum(b["count"] for b in document["histogram"]) == 30
    assert [r["text"] for r in document["show"]["runs"] if r["loss"]] == ["It is 0.<|im_end|>"]


def test_quest_check_says_what_and_where_for_unusable_files_and_arguments(tmp_path):
    home = ("--home", str(tmp_path / "home"))
    config = write_config(tmp_path / "realm.yaml", train={"max_length": 64})
    cases = [
        (malformed(tmp_path), (), f"realm: {tmp_path / 'malformed.jsonl'} line 1: not valid JSON"),
        (unknown_format(tmp_path), (), f"realm: {tmp_path / 'unknown.jsonl'}: no known quest format"),
        (tmp_path / "missing.jsonl", (), f"realm: {tmp_path / 'missing.jsonl'}: "),
        (good(tmp_path), ("--show", "99"), "realm: --show 99: "),
    ]
    for path, extra, expected in cases:
        result = realm("quest", "check", str(path), *extra, *home, "--config", str(config))
        assert result.returncode == 2, (path, result.stdout)
        assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1, result.stderr
    long = realm("quest", "check", str(too_long(tmp_path, words=40)), *home, "--config", str(config))
    assert long.returncode == 1 and "train.max_length 64: 1 over" in long.stdout


def test_quest_add_refuses_an_all_bad_file_before_sending_it(tmp_path):
    result = realm("quest", "add", str(all_bad(tmp_path)), "--home", str(tmp_path / "home"))
    assert result.returncode == 1
    assert result.stderr.startswith("realm: not sent, ") and result.stderr.count("\n") == 1
    assert "line 1: turn 2: unknown role 'asistant'" in result.stderr and "realm quest check" in result.stderr


def test_copies_of_a_line_are_folded_as_the_split_folds_them(tmp_path, tokenizer):
    from quest_files_fixtures import chat, write

    records = [chat(f"What is {i} plus {i}?", f"It is {2 * i}.") for i in range(10)]
    records += [records[0], chat("WHAT is 1  plus 1?", "it is 2.")]  # an exact copy, and one in other case
    path = write(tmp_path / "copies.jsonl", records)
    folded = check_quest(path, RealmConfig(), tokenizer)
    assert [(c.line, c.verdict, c.reason) for c in folded.lines[10:]] == [
        (11, "duplicate", "repeats line 1: trained once (quests.duplicates: drop)"),
        (12, "duplicate", "repeats line 2: trained once (quests.duplicates: drop)"),
    ]
    assert folded.all_good and folded.training == 10
    kept = check_quest(path, RealmConfig(quests=QuestsConfig(duplicates="keep")), tokenizer)
    assert [c.verdict for c in kept.lines[10:]] == ["ok", "ok"] and kept.training == 12
