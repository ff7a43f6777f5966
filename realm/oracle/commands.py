"""The command line for the oracle and the vault: ``realm oracle | chat | vault ...``.

Registered by ``realm.cli.build_parser`` through ``add_commands``. The vault commands read the
ledger of ``--home`` directly (the trainer's data root); promote and chat talk to the oracle;
delete goes through the running trainer when there is one, so its published vault stays true.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import msgspec

from realm.errors import RealmError


def _context(args):
    from realm.cli import _context as context

    return context(args)


def _oracle_client(args, *, timeout_s: float | None = None):
    from realm.oracle.client import OracleClient

    from realm.hosts import connect_oracle

    home, config, _ = _context(args)
    _, control, setup = connect_oracle(config, home, getattr(args, "oracle", None))
    return OracleClient(control, timeout_s=timeout_s or config.bus.timeout_s, retries=config.bus.retries,
                        socket_setup=setup)


def _open_ledger(home: Path):
    from realm.home import Home
    from realm.vault.ledger import Ledger

    db = Home(home).db
    if not db.exists():
        raise RealmError(f"no vault at {home} (no {db.relative_to(home)}); is --home the trainer's data root?")
    return Ledger(db)


# --------------------------------------------------------------------------- realm oracle


def cmd_oracle(args) -> int:
    from realm.cli import _setup_logging
    from realm.oracle.worker import OracleWorker

    home, config, config_path = _context(args)
    _setup_logging()
    logging.getLogger("realm.oracle").info("config: %s", config_path or "built-in defaults")
    return OracleWorker(config, home).run()


# --------------------------------------------------------------------------- realm chat


def cmd_chat(args) -> int:
    from realm.protocol import Sampling

    messages = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": args.message})
    sampling = Sampling(
        temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens, seed=args.seed
    )

    def show(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    import uuid

    client = _oracle_client(args)
    request_id = uuid.uuid4().hex
    try:
        _, end = client.chat(messages, sampling, checkpoint=args.checkpoint or "", on_delta=show, request_id=request_id)
    except KeyboardInterrupt:  # Ctrl-C: stop the oracle generating for nobody
        try:
            client.cancel(request_id)
        except RealmError:
            pass
        raise
    sys.stdout.write("\n")
    rate = end.tokens / end.seconds if end.seconds > 0 else 0.0
    print(f"[{end.checkpoint}: {end.tokens} tokens in {end.seconds:.2f}s ({rate:.0f} tok/s), {end.reason}]", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- realm vault


def cmd_vault_list(args) -> int:
    from realm.vault import champion
    from realm.vault.service import served_step

    home, config, _ = _context(args)
    ledger = _open_ledger(home)
    try:
        rows = champion.board(ledger, config.champion)
    finally:
        ledger.close()
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
        return 0
    if not rows:
        print("the vault is empty")
        return 0

    def num(value, fmt="{:.3f}"):
        return "-" if value is None else fmt.format(value)

    print(f"{'rank':>4}  {'step':>7}  {'name':<32} {'train':>7} {'q.val':>7} {'suite':>7} {'acc':>5} {'score':>8}")
    for r in rows:
        c, suite = r.checkpoint, r.checkpoint.suite
        marks = (" champion" if c.step == best else "") + (" serving" if c.step == serving else "") + (
            " latest" if c.step == latest else "")
        print(
            f"{r.rank or '-':>4}  {c.step:>7}  {c.name:<32} {num(c.train_loss):>7} {num(c.val_loss):>7} "
            f"{num(suite.loss if suite else None):>7} {num(suite.accuracy if suite else None, '{:.0%}'):>5} "
            f"{num(r.score):>8}{marks}"
        )
    version = champion.current_version([r.checkpoint for r in rows])
    print(f"{champion.formula(config.champion)}, on suite {version or '(none scored yet)'}; "
          "q.val is each quest's own held-out loss, not comparable across quests" + (f"; {note}" if note else ""))
    return 0


def cmd_vault_promote(args) -> int:
    loaded = _oracle_client(args).promote(args.step)
    serving = loaded.serving
    if args.json:
        sys.stdout.write(json.dumps(msgspec.to_builtins(serving)) + "\n")
    else:
        print(f"serving {serving.name} ({serving.source}), {serving.load_seconds:.2f}s from promote to serving")
    return 0


def cmd_vault_export(args) -> int:
    from realm.vault.service import export_checkpoint

    home, config, _ = _context(args)
    ledger = _open_ledger(home)
    try:
        target = export_checkpoint(ledger, config, args.step, Path(args.dir).expanduser())
    finally:
        ledger.close()
    print(f"exported to {target}")
    return 0


def cmd_vault_delete(args) -> int:
    from realm.bus import RealmClient, RequestFailed, TrainerUnreachable
    from realm.protocol import DeleteCheckpointRequest
    from realm.vault.champion import resolve
    from realm.vault.service import delete_checkpoint

    home, config, _ = _context(args)
    ledger = _open_ledger(home)
    try:
        info, _ = resolve(ledger, args.step, config.champion)
        from realm.hosts import connect_trainer

        _, control, setup = connect_trainer(config, home)
        try:
            reply = RealmClient(control, timeout_s=min(config.bus.timeout_s, 1.0), retries=0, socket_setup=setup).request(
                DeleteCheckpointRequest(step=info.step)
            )
            print(reply.message)
            return 0
        except RequestFailed as exc:
            raise RealmError(f"not deleted: {exc}") from None
        except TrainerUnreachable:
            pass  # no trainer running: delete here
        try:
            delete_checkpoint(config, home, ledger, info.step)
        except RealmError as exc:
            raise RealmError(f"not deleted: {exc}") from None
        print(f"deleted {info.name}")
        return 0
    finally:
        ledger.close()


# --------------------------------------------------------------------------- realm keys, realm doctor


def cmd_keys_init(args) -> int:
    from realm.security import init_keys, keys_dir

    home, config, _ = _context(args)
    folder = keys_dir(config, home)
    public = init_keys(folder, force=args.force)
    print(f"CURVE key pairs in {folder} (secret files mode 0600)")
    print(f"  node public key:   {public['node']}    -> this node's public_key in the host registry")
    print(f"  client public key: {public['client']}    -> the registry's clients (the allowlist)")
    return 0


def cmd_doctor(args) -> int:
    from realm.doctor import format_table, run_checks

    home, config, config_path = _context(args)
    checks = run_checks(config, home, config_path)
    if args.json:
        sys.stdout.write(json.dumps([c._asdict() for c in checks]) + "\n")
    else:
        print(format_table(checks))
    return 0 if all(c.ok for c in checks) else 1


# --------------------------------------------------------------------------- realm play's oracle


def start_oracle(home: Path, config_path: Path | None):
    """``realm oracle`` as a subprocess beside the trainer, logging to HOME/logs/oracle.log."""
    import subprocess

    (home / "logs").mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "realm.cli", "oracle", "--home", str(home)]
    if config_path:
        command += ["--config", str(config_path)]
    with open(home / "logs" / "oracle.log", "ab") as log_file:
        return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop_oracle(process, timeout_s: float = 30.0) -> None:
    import subprocess

    if process is None or process.poll() is not None:
        return
    process.terminate()  # SIGTERM: in-flight chats end with "shutdown", then it exits 0
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --------------------------------------------------------------------------- the parser


def add_commands(sub, common) -> None:
    oracle = common(sub.add_parser("oracle", help="the inference worker: chat, batch generation, hot-swap promotion"))
    oracle.set_defaults(func=cmd_oracle)

    chat = common(sub.add_parser("chat", help="chat with DIO on the oracle; the answer streams to the terminal"))
    chat.add_argument("message", metavar="MESSAGE")
    chat.add_argument("--checkpoint", metavar="STEP", help="a step, canonical name, latest or champion (default: the served one)")
    chat.add_argument("--system", metavar="TEXT", help="a system message before MESSAGE")
    chat.add_argument("--temperature", type=float, default=0.0, help="0 is greedy (default)")
    chat.add_argument("--top-p", type=float, default=1.0)
    chat.add_argument("--max-new-tokens", type=int, default=128)
    chat.add_argument("--seed", type=int, help="seed for sampling, for a repeatable answer")
    chat.add_argument("--oracle", metavar="NODE", help="the oracle node in the host registry (default: oracle.node)")
    chat.set_defaults(func=cmd_chat)

    vault = sub.add_parser("vault", help="checkpoints: list (the champion board), promote, export, delete")
    actions = vault.add_subparsers(dest="vault_command", metavar="ACTION", required=True)
    listing = common(actions.add_parser("list", help="every checkpoint ranked by the champion score"))
    listing.add_argument("--json", action="store_true", help="one JSON document, stable for scripts")
    listing.set_defaults(func=cmd_vault_list)
    promote = common(actions.add_parser("promote", help="the oracle serves STEP (hot swap)"))
    promote.add_argument("step", metavar="STEP", help="a step, canonical name, latest or champion")
    promote.add_argument("--json", action="store_true", help="one JSON document, stable for scripts")
    promote.add_argument("--oracle", metavar="NODE", help="the oracle node in the host registry (default: oracle.node)")
    promote.set_defaults(func=cmd_vault_promote)
    export = common(actions.add_parser("export", help="copy checkpoint STEP into DIR"))
    export.add_argument("step", metavar="STEP")
    export.add_argument("dir", metavar="DIR")
    export.set_defaults(func=cmd_vault_export)
    delete = common(actions.add_parser("delete", help="delete checkpoint STEP (never the champion or the served one)"))
    delete.add_argument("step", metavar="STEP")
    delete.set_defaults(func=cmd_vault_delete)

    keys = sub.add_parser("keys", help="CURVE key pairs for encrypted, authenticated links between hosts")
    key_actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    init = common(key_actions.add_parser("init", help="create this machine's node and client key pairs"))
    init.add_argument("--force", action="store_true", help="replace existing key pairs")
    init.set_defaults(func=cmd_keys_init)

    doctor = common(sub.add_parser("doctor", help="check config, keys, nodes, disk, GPUs; say what to fix"))
    doctor.add_argument("--json", action="store_true", help="one JSON document, stable for scripts")
    doctor.set_defaults(func=cmd_doctor)
