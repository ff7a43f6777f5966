"""``realm metrics``: the loss and eval history from HOME/logs/metrics.jsonl, offline."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from realm.cli.common import EXIT_OK, UsageError, common_options, load_context
from realm.metrics_history import METRICS_FILE, read_records


def add_parsers(sub) -> None:
    metrics = sub.add_parser("metrics", help="the loss and eval history on disk (no trainer needed)")
    metrics_sub = metrics.add_subparsers(dest="metrics_command", metavar="ACTION", required=True)
    export = common_options(
        metrics_sub.add_parser(
            "export",
            help="write the history as CSV or JSON",
            description="Write every record of HOME/logs/metrics.jsonl and its rotated files (metrics.jsonl.N, "
            "oldest first) as CSV or JSON. Reads files only: works with or without a running trainer.",
            epilog="Examples: `realm metrics export --csv --out loss.csv`; "
            "`realm metrics export --json --since 500 | jq '.[] | select(.kind==\"val\")'`. "
            "Record kinds: step (train loss, lr, throughput), val (quest val loss), suite (scores), "
            "skill (a skill round's accuracies) and level_up. "
            "A bad line is skipped with a warning naming its file and line.",
        )
    )
    fmt = export.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--csv", dest="format", action="store_const", const="csv", help="CSV, one column per field")
    fmt.add_argument("--json", dest="format", action="store_const", const="json", help="one JSON array of records")
    export.add_argument("--since", metavar="STEP", type=int, default=None, help="only records at this step or later")
    export.add_argument("--out", metavar="FILE", default=None, help="write here instead of standard output")
    export.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    home, _, _ = load_context(args)
    path = home / "logs" / METRICS_FILE
    records = [r for r in read_records(path, _warn_bad_line) if _since(r, args.since)]
    if not records and not path.exists() and not path.with_name(METRICS_FILE + ".1").exists():
        raise UsageError(f"no metrics log at {path}: train with `realm play` or `realm trainer` first")
    if args.out is None:
        _write(records, args.format, sys.stdout)
    else:
        with Path(args.out).open("w", encoding="utf-8", newline="") as out:
            _write(records, args.format, out)
    return EXIT_OK


def _since(record: dict, step: int | None) -> bool:
    return step is None or (isinstance(record.get("step"), int) and record["step"] >= step)


def _warn_bad_line(file: Path, line_no: int) -> None:
    print(f"realm: skipped a bad line in {file} line {line_no}", file=sys.stderr)


def _write(records: list[dict], fmt: str, out) -> None:
    if fmt == "json":
        json.dump(records, out)
        out.write("\n")
        return
    columns = list(dict.fromkeys(key for record in records for key in record))  # first seen first
    writer = csv.DictWriter(out, fieldnames=columns, restval="", extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in record.items()})
