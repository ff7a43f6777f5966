"""``realm shop list | buy ITEM``: what DIO's gold buys, sold by the trainer over the bus."""

from __future__ import annotations

import textwrap
import uuid

from realm.bus import TrainerUnreachable
from realm.cli.common import EXIT_OK, UsageError, common_options, trainer_client
from realm.game.hero import GOLD_PER_QUEST, hero_stats
from realm.game.shop import BY_ID, ITEMS
from realm.protocol import ShopBuyRequest, SnapshotRequest


def add_parsers(sub) -> None:
    shop = sub.add_parser("shop", help="spend DIO's gold: list the prices, buy an item")
    actions = shop.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = common_options(actions.add_parser("list", help="the items, their prices and DIO's gold"))
    listing.set_defaults(func=cmd_list)
    buy = common_options(
        actions.add_parser(
            "buy",
            help="buy an item from the running trainer",
            description="Buy ITEM with DIO's gold. quest needs --skill and --level; eval needs nothing.",
        )
    )
    buy.add_argument("item", metavar="ITEM", choices=list(BY_ID), help=" | ".join(BY_ID))
    buy.add_argument("--skill", default="", metavar="ID", help="quest: the skill to draw it from (e.g. bin)")
    buy.add_argument("--level", type=int, default=0, metavar="N", help="quest: the skill level to draw it at")
    buy.set_defaults(func=cmd_buy)


def cmd_list(args) -> int:
    for item in ITEMS:
        print(
            textwrap.fill(
                item.what, width=80, initial_indent=f"{item.id:<6} {item.price:>5,} gold  ", subsequent_indent=" " * 19
            )
        )
    try:
        state = trainer_client(args).request(SnapshotRequest()).state
    except TrainerUnreachable as exc:
        print(f"gold: unknown ({exc})")
        return EXIT_OK
    print(f"gold: {hero_stats(state).gold:,} ({GOLD_PER_QUEST} a quest won, {state.hero.gold_spent:,} spent)")
    return EXIT_OK


def cmd_buy(args) -> int:
    if args.item == "quest" and not (args.skill and args.level):
        raise UsageError("shop buy quest needs --skill ID and --level N (see `realm skills list`)")
    request = ShopBuyRequest(item=args.item, skill=args.skill, level=args.level, request_id=uuid.uuid4().hex)
    print(trainer_client(args).request(request).message)
    return EXIT_OK
