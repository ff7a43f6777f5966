"""``realm doctor``: check config, keys, nodes, disk and GPUs, and say what to fix."""

from __future__ import annotations

import json
import sys

from realm.cli.common import EXIT_FAIL, EXIT_OK, common_options, load_context
from realm.doctor import format_table, run_checks


def add_parsers(sub) -> None:
    doctor = common_options(sub.add_parser("doctor", help="check config, keys, nodes, disk, GPUs; say what to fix"))
    doctor.add_argument("--json", action="store_true", help="one JSON document, stable for scripts")
    doctor.set_defaults(func=cmd_doctor)


def cmd_doctor(args) -> int:
    home, config, config_path = load_context(args)
    checks = run_checks(config, home, config_path)
    if args.json:
        sys.stdout.write(json.dumps([c._asdict() for c in checks]) + "\n")
    else:
        print(format_table(checks))
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAIL
