"""``realm``: the command line. The commands and options here are a contract (see README).

Each command group lives in its own module and registers its parsers here; ``realm.cli.common``
holds what they share (the --home/--config context, the clients, exit codes, error printing)."""

from __future__ import annotations

import argparse
import os
import sys

from realm.cli import doctor, keys, metrics, oracle, quests, settings, shop, skills, trainer, tui, vault
from realm.cli.common import EXIT_PIPE, run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realm",
        description="Realm of Training: an idle RPG whose hero, DIO, is a language model in real training.",
        epilog="Start with `realm play`. Every command takes --home DIR and --config FILE.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    trainer.add_parsers(sub)  # play, trainer
    tui.add_parsers(sub)
    trainer.add_control_parsers(sub)  # status, pause, resume, stop, skip
    quests.add_parsers(sub)
    skills.add_parsers(sub)
    oracle.add_parsers(sub)  # oracle, chat
    vault.add_parsers(sub)
    keys.add_parsers(sub)
    doctor.add_parsers(sub)
    settings.add_parsers(sub)  # config show, config set
    metrics.add_parsers(sub)
    shop.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return run_command(build_parser().parse_args(argv))
        finally:
            sys.stdout.flush()  # a reader gone early (`realm status | head`) shows here, not at exit
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return EXIT_PIPE


def tui_main(argv: list[str] | None = None) -> int:
    """``realm-tui``: the same as ``realm tui``."""
    return main(["tui", *(sys.argv[1:] if argv is None else argv)])
