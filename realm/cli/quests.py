"""``realm quest add | list | retry | remove``: the trainer's quest queue, through the bus."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

from realm.cli.common import EXIT_OK, common_options, load_context, trainer_client
from realm.protocol import QuestListRequest, QuestRemoveRequest, QuestRetryRequest
from realm.quest_files import quest_add_request


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
    request = quest_add_request(Path(args.file), args.priority, config.bus.max_message_bytes, args.epochs)
    print(trainer_client(args).request(request).message)
    return EXIT_OK


def at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


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
