"""``realm config show | set``: the effective config with where each value comes from, and a
change that lasts (``HOME/overrides.yaml``), made live when a trainer runs on the home."""

from __future__ import annotations

from realm.bus import RequestFailed
from realm.cli.common import EXIT_OK, UsageError, common_options, load_context, trainer_client
from realm.config import resolve_config_path, resolve_home
from realm.home import Home, lock_holder
from realm.overrides import ArmoryRefused, origins, propose, save_override
from realm.protocol import ConfigUpdateRequest


def add_parsers(sub) -> None:
    config = sub.add_parser("config", help="show the effective config, or change a setting so it lasts")
    actions = config.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = common_options(actions.add_parser("show", help="every setting, its value and where it comes from"))
    show.set_defaults(func=cmd_config_show)
    change = common_options(
        actions.add_parser(
            "set",
            help="change KEY to VALUE in HOME/overrides.yaml (live when a trainer runs)",
            description="Change one setting the Armory may change (train.lr, train.weight_decay, ...). "
            "It is saved in HOME/overrides.yaml, over the config file, so a restart keeps it; "
            "with a trainer running on the home it also applies before the next step.",
        )
    )
    change.add_argument("key", metavar="KEY", help="dotted key, e.g. train.lr")
    change.add_argument("value", metavar="VALUE", help="YAML value, e.g. 0.002")
    change.add_argument("--confirm", action="store_true", help="needed for critical keys (train.max_length)")
    change.set_defaults(func=cmd_config_set)


def cmd_config_show(args) -> int:
    home = resolve_home(args.home)
    rows = origins(home, resolve_config_path(args.config, home))
    width = max(len(key) for key, _, _ in rows)
    for key, value, origin in rows:
        print(f"{key:<{width}}  {value}  ({origin})")
    return EXIT_OK


def cmd_config_set(args) -> int:
    home, config, _ = load_context(args)
    if lock_holder(Home(home).trainer_lock):
        request = ConfigUpdateRequest(key=args.key, value=args.value, confirm=args.confirm)
        try:
            reply = trainer_client(args).request(request)
        except RequestFailed as exc:
            raise UsageError(str(exc)) from None
        print(getattr(reply, "message", "") or "ok")
        return EXIT_OK
    try:
        new = propose(config, args.key, args.value, args.confirm)
    except ArmoryRefused as exc:
        raise UsageError(str(exc)) from None
    path = save_override(home, args.key, new)
    print(f"{args.key} = {args.value} saved in {path}; the trainer uses it from its next start")
    return EXIT_OK
