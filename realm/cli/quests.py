"""``realm quest add | list | retry | remove``: the trainer's quest queue, through the bus; and
``realm quest check``: a quest file checked offline, with the trainer's own layers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec
from rich.console import Console
from rich.text import Text

from realm.cli.common import EXIT_FAIL, EXIT_OK, UsageError, common_options, load_context, trainer_client
from realm.model.chatml import IGNORE_INDEX, EncodedExample
from realm.protocol import QuestListRequest, QuestRemoveRequest, QuestRetryRequest
from realm.quest_files import epochs_count, intake_check, quest_add_request, skipped_note
from realm.quests.check import QuestCheck, check_quest, histogram, loss_runs, summary_lines
from realm.quests.formats import QuestFormatError, encode_example

LOSS_STYLE = "bold black on green"  # the tokens the trainer computes loss on
BAR_WIDTH = 40


def add_parsers(sub) -> None:
    quest = sub.add_parser("quest", help="the quest queue: add, list, retry, remove")
    actions = quest.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = common_options(actions.add_parser("add", help="send a quest file to the trainer (validated at once)"))
    add.add_argument(
        "file", metavar="FILE", help="a JSONL quest (messages, conversations, alpaca, prompt/completion, text)"
    )
    add.add_argument("--priority", choices=("high", "normal", "low"), default="normal")
    add.add_argument(
        "--epochs",
        type=at_least_one,
        default=0,
        metavar="N",
        help="train the quest's lines N times, each pass reshuffled (default: quests.epochs in the config, 1)",
    )
    add.set_defaults(func=cmd_quest_add)
    check = common_options(
        actions.add_parser(
            "check",
            help="check a quest file offline: each line's verdict, token lengths, held-out lines",
            description="Check a quest file without a trainer: the trainer's own validation, the token length of "
            "every example against train.max_length (the HOME's config and model tokenizer), and which lines the "
            "held-out split keeps out of training. Exit 0: every line is fine; 1: some lines would be rejected; "
            "2: the file cannot be read or is not a quest.",
        )
    )
    check.add_argument("file", metavar="FILE", help="the JSONL quest file to check")
    check.add_argument("--json", action="store_true", help="one JSON object, stable for scripts")
    check.add_argument(
        "--show", type=int, metavar="N", help="render line N as ChatML with the loss-bearing tokens highlighted"
    )
    check.set_defaults(func=cmd_quest_check)
    listing = common_options(
        actions.add_parser("list", help="every quest: queued, active, done, skipped, failed, removed")
    )
    listing.add_argument("--json", action="store_true", help="one JSON document, stable for scripts")
    listing.set_defaults(func=cmd_quest_list)
    retry = common_options(actions.add_parser("retry", help="put a failed or skipped quest back in the queue"))
    retry.add_argument("name", metavar="NAME")
    retry.set_defaults(func=_quest_command(lambda args: QuestRetryRequest(name=args.name)))
    remove = common_options(
        actions.add_parser("remove", help="take a queued quest off the queue (kept in quests/removed/)")
    )
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(func=_quest_command(lambda args: QuestRemoveRequest(name=args.name)))


def cmd_quest_add(args) -> int:
    _, config, _ = load_context(args)
    path = Path(args.file)
    request = quest_add_request(path, args.priority, config.bus.max_message_bytes, args.epochs)
    check = intake_check(path, config)
    print(trainer_client(args).request(request).message)
    if check is not None and check.failing:
        print(skipped_note(check))
    return EXIT_OK


def cmd_quest_check(args) -> int:
    from realm.model.loading import load_tokenizer, tokenizer_name  # torch and transformers: only for this command

    _, config, _ = load_context(args)
    path = Path(args.file)
    tokenizer = load_tokenizer(tokenizer_name(config.model))
    try:
        check = check_quest(path, config, tokenizer)
    except QuestFormatError as exc:
        where = f"{path} line {exc.line}" if exc.line is not None else str(path)
        raise UsageError(f"{where}: {exc.reason}") from None
    shown = _shown(check, args.show, tokenizer) if args.show is not None else None
    if args.json:
        sys.stdout.write(msgspec.json.encode(check_document(check, shown, tokenizer)).decode() + "\n")
    else:
        print_check(check, shown, tokenizer)
    return EXIT_OK if check.all_good else EXIT_FAIL


def _shown(check: QuestCheck, line: int, tokenizer) -> tuple[int, EncodedExample]:
    """Line ``line`` encoded as the trainer trains it; UsageError when it holds no example."""
    if line not in check.examples:
        verdicts = {c.line: c for c in check.lines}
        if line in verdicts:
            why = verdicts[line].reason
        elif 1 <= line <= max(verdicts, default=0):
            why = "it is blank"
        else:
            why = f"the file's last line is {max(verdicts, default=0)}"
        raise UsageError(f"--show {line}: {check.path} line {line} holds no example to render ({why})")
    return line, encode_example(tokenizer, check.examples[line], check.max_length)


def check_document(check: QuestCheck, shown: tuple[int, EncodedExample] | None, tokenizer) -> dict:
    """What ``realm quest check --json`` prints."""
    document = {
        "file": str(check.path),
        "format": check.format,
        "spec": check.spec,
        "max_length": check.max_length,
        "ok": check.all_good,
        "refused": check.refused,
        "counts": {verdict: check.count(verdict) for verdict in sorted({c.verdict for c in check.lines})},
        "lines": [c._asdict() for c in check.lines],
        "held_out_lines": [c.line for c in check.lines if c.verdict == "held out"],
        "training_examples": check.training,
        "split": check.split,
        "histogram": [
            {"from": b.low, "to": b.high, "count": b.count} for b in histogram(check.lengths(), check.max_length)
        ],
        "show": None,
    }
    if shown is not None:
        line, encoded = shown
        runs = loss_runs(tokenizer, encoded)
        document["show"] = {
            "line": line,
            "tokens": len(encoded.input_ids),
            "loss_tokens": sum(1 for label in encoded.labels if label != IGNORE_INDEX),
            "runs": [{"text": text, "loss": loss} for text, loss in runs],
        }
    return document


class _PipeConsole(Console):
    """A reader gone early (``| head``) ends the command as every other command's: exit 141, not Rich's 1."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def print_check(check: QuestCheck, shown: tuple[int, EncodedExample] | None, tokenizer) -> None:
    console = _PipeConsole(highlight=False, soft_wrap=True)
    for line in summary_lines(check):
        console.print(Text(line))
    console.print(Text("\nlines:"))
    for c in check.lines:
        tokens = f"{c.tokens} tokens" if c.tokens is not None else "-"
        console.print(Text(f"  {c.line:>5}  {c.verdict:<9} {tokens:>12}  {c.reason}".rstrip()))
    console.print(Text(f"\ntoken lengths against train.max_length {check.max_length}:"))
    bins = histogram(check.lengths(), check.max_length)
    most = max((b.count for b in bins), default=0) or 1
    for b in bins:
        label = f"{b.low}–{b.high}" if b.high is not None else f"over {check.max_length}"
        bar = "█" * round(BAR_WIDTH * b.count / most)
        console.print(Text(f"  {label:>13}  {b.count:>5}  {bar}".rstrip()))
    if shown is not None:
        line, encoded = shown
        loss = sum(1 for label in encoded.labels if label != IGNORE_INDEX)
        console.print(
            Text(f"\nline {line} as the trainer trains it: {len(encoded.input_ids)} tokens, ")
            + Text(f"{loss} carry loss", style=LOSS_STYLE)
        )
        console.print(render_loss(loss_runs(tokenizer, encoded)))


def render_loss(runs: list[tuple[str, bool]]) -> Text:
    """The ChatML text with the loss-bearing runs highlighted."""
    text = Text()
    for run, loss in runs:
        text.append(run, style=LOSS_STYLE if loss else "dim")
    return text


def at_least_one(text: str) -> int:
    try:
        return epochs_count(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_quest_list(args) -> int:
    reply = trainer_client(args).request(QuestListRequest())
    if args.json:
        sys.stdout.write(msgspec.json.encode({"quests": reply.quests}).decode() + "\n")
    else:
        print(format_quest_list(reply.quests))
    return EXIT_OK


def format_quest_list(quests) -> str:
    lines = []
    for state in ("queued", "active", "done", "skipped", "failed", "removed"):
        group = [quest for quest in quests if quest.state == state]
        if not group and state not in ("queued", "active"):
            continue
        lines.append(f"{state} ({len(group)})" + (":" if group else ""))
        for quest in group:
            head = f"{quest.position + 1:>3}. {quest.priority:<6} " if state == "queued" else "     "
            line = f"  {head}{quest.name}  {quest.bytes:,} B"
            if quest.quarantine:
                line += f"  quarantine: {quest.quarantine}"
            lines.append(line)
            if quest.reason:
                lines.append(f"         {quest.reason}")
    return "\n".join(lines)


def _quest_command(make_request):
    def run(args) -> int:
        print(trainer_client(args).request(make_request(args)).message)
        return EXIT_OK

    return run
