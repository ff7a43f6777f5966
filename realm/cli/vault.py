"""``realm vault list | promote | export | delete``: the checkpoints of ``--home``.

List and export read the ledger of ``--home`` directly (the trainer's data root); promote talks
to the oracle; delete goes through the running trainer when there is one, so its published vault
stays true.
"""

from __future__ import annotations

import json
import sys
from contextlib import closing
from pathlib import Path

import msgspec

from realm.bus import RealmClient, RequestFailed, TrainerUnreachable
from realm.cli.common import EXIT_OK, checkpoint_reference, common_options, load_context, oracle_client
from realm.errors import RealmError
from realm.home import Home
from realm.hosts import connect_trainer
from realm.protocol import DeleteCheckpointRequest
from realm.vault import champion
from realm.vault.ledger import Ledger
from realm.vault.service import delete_checkpoint, export_checkpoint, served_step


def add_parsers(sub) -> None:
    vault = sub.add_parser("vault", help="checkpoints: list (the champion board), promote, export, delete")
    actions = vault.add_subparsers(dest="vault_command", metavar="ACTION", required=True)
    listing = common_options(actions.add_parser("list", help="every checkpoint ranked by the champion score"))
    listing.add_argument("--json", action="store_true", help="one JSON document, stable for scripts")
    listing.set_defaults(func=cmd_vault_list)
    promote = common_options(actions.add_parser("promote", help="the oracle serves STEP (hot swap)"))
    promote.add_argument("step", metavar="STEP", help="a step, canonical name, latest or champion")
    promote.add_argument("--json", action="store_true", help="one JSON document, stable for scripts")
    promote.add_argument("--oracle", metavar="NODE", help="the oracle node in the host registry (default: oracle.node)")
    promote.set_defaults(func=cmd_vault_promote)
    export = common_options(actions.add_parser("export", help="copy checkpoint STEP into DIR"))
    export.add_argument("step", metavar="STEP")
    export.add_argument("dir", metavar="DIR")
    export.set_defaults(func=cmd_vault_export)
    delete = common_options(
        actions.add_parser("delete", help="delete checkpoint STEP (never the champion or the served one)")
    )
    delete.add_argument("step", metavar="STEP")
    delete.set_defaults(func=cmd_vault_delete)


def _open_ledger(home: Path) -> Ledger:
    db = Home(home).db
    if not db.exists():
        raise RealmError(f"no vault at {home} (no {db.relative_to(home)}); is --home the trainer's data root?")
    return Ledger(db)


def cmd_vault_list(args) -> int:
    home, config, _ = load_context(args)
    with closing(_open_ledger(home)) as ledger:
        rows = champion.board(ledger, config.champion)
    serving, note = served_step(config, home)
    best = next((r.checkpoint.step for r in rows if r.rank == 1), None)
    latest = max((r.checkpoint.step for r in rows), default=None)
    if args.json:
        document = {
            "champion": best,
            "serving": serving,
            "latest": latest,
            "suite_version": champion.current_version([r.checkpoint for r in rows]),
            "formula": champion.formula(config.champion),
            "weights": msgspec.to_builtins(config.champion),
            "checkpoints": [
                {**msgspec.to_builtins(r.checkpoint), "rank": r.rank, "score": r.score}
                for r in sorted(rows, key=lambda r: r.checkpoint.step)
            ],
        }
        sys.stdout.write(json.dumps(document) + "\n")
        return EXIT_OK
    if not rows:
        print("the vault is empty")
        return EXIT_OK

    def num(value, fmt="{:.3f}"):
        return "-" if value is None else fmt.format(value)

    print(f"{'rank':>4}  {'step':>7}  {'name':<32} {'train':>7} {'q.val':>7} {'suite':>7} {'acc':>5} {'score':>8}")
    for r in rows:
        c, suite = r.checkpoint, r.checkpoint.suite
        marks = (
            (" champion" if c.step == best else "")
            + (" serving" if c.step == serving else "")
            + (" latest" if c.step == latest else "")
        )
        print(
            f"{r.rank or '-':>4}  {c.step:>7}  {c.name:<32} {num(c.train_loss):>7} {num(c.val_loss):>7} "
            f"{num(suite.loss if suite else None):>7} {num(suite.accuracy if suite else None, '{:.0%}'):>5} "
            f"{num(r.score):>8}{marks}"
        )
    version = champion.current_version([r.checkpoint for r in rows])
    print(
        f"{champion.formula(config.champion)}, on suite {version or '(none scored yet)'}; "
        "q.val is each quest's own held-out loss, not comparable across quests" + (f"; {note}" if note else "")
    )
    return EXIT_OK


def cmd_vault_promote(args) -> int:
    loaded = oracle_client(args).promote(checkpoint_reference(args.step))
    serving = loaded.serving
    if args.json:
        sys.stdout.write(json.dumps(msgspec.to_builtins(serving)) + "\n")
    else:
        print(f"serving {serving.name} ({serving.source}), {serving.load_seconds:.2f}s from promote to serving")
    return EXIT_OK


def cmd_vault_export(args) -> int:
    ref = checkpoint_reference(args.step)
    home, config, _ = load_context(args)
    with closing(_open_ledger(home)) as ledger:
        target = export_checkpoint(ledger, config, ref, Path(args.dir).expanduser())
    print(f"exported to {target}")
    return EXIT_OK


def cmd_vault_delete(args) -> int:
    ref = checkpoint_reference(args.step)
    home, config, _ = load_context(args)
    with closing(_open_ledger(home)) as ledger:
        info, _ = champion.resolve(ledger, ref, config.champion)
        _, control, setup = connect_trainer(config, home)
        try:
            reply = RealmClient(
                control, timeout_s=min(config.bus.timeout_s, 1.0), retries=0, socket_setup=setup
            ).request(DeleteCheckpointRequest(step=info.step))
            print(reply.message)
            return EXIT_OK
        except RequestFailed as exc:
            raise RealmError(f"not deleted: {exc}") from None
        except TrainerUnreachable:
            pass  # no trainer running: delete here
        try:
            delete_checkpoint(config, home, ledger, info.step)
        except RealmError as exc:
            raise RealmError(f"not deleted: {exc}") from None
        print(f"deleted {info.name}")
        return EXIT_OK
