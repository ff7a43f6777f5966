"""``realm keys init``: this machine's CURVE key pairs, for encrypted, authenticated links between hosts."""

from __future__ import annotations

from realm.cli.common import EXIT_OK, common_options, load_context
from realm.security import init_keys, keys_dir


def add_parsers(sub) -> None:
    keys = sub.add_parser("keys", help="CURVE key pairs for encrypted, authenticated links between hosts")
    key_actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    init = common_options(key_actions.add_parser("init", help="create this machine's node and client key pairs"))
    init.add_argument("--force", action="store_true", help="replace existing key pairs")
    init.set_defaults(func=cmd_keys_init)


def cmd_keys_init(args) -> int:
    home, config, _ = load_context(args)
    folder = keys_dir(config, home)
    public = init_keys(folder, force=args.force)
    print(f"CURVE key pairs in {folder} (secret files mode 0600)")
    print(f"  node public key:   {public['node']}    -> this node's public_key in the host registry")
    print(f"  client public key: {public['client']}    -> the registry's clients (the allowlist)")
    return EXIT_OK
