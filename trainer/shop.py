"""The shop's till: sells ``realm.game.shop.ITEMS`` for DIO's gold.

One sale at a time (a lock), so two TUIs buying at once cannot spend the same gold. The price
is checked against the gold in the trainer's own state; a sale is recorded in the chronicle
(SQLite) before ``GoldSpent`` is announced, so what was spent survives restarts. A retried
request (same ``request_id``) gets the first answer again and is not charged twice.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from realm.bus import Later
from realm.game.hero import GOLD_PER_QUEST, hero_stats
from realm.game.shop import BY_ID, COMMISSION_CHATS, ITEMS, Item
from realm.protocol import Ack, ErrorReply, GoldSpent, QuestGenerateRequest, Reply, ShopBuyRequest

REMEMBERED_SALES = 256


class Shop:
    """``daemon`` gives the publisher, the chronicle, the skill runner and the quest generator."""

    def __init__(self, daemon) -> None:
        self.daemon = daemon
        self._lock = threading.Lock()
        self._answered: OrderedDict[str, Reply] = OrderedDict()

    def buy(self, request: ShopBuyRequest) -> Reply | Later:
        item = BY_ID.get(request.item)
        if item is None:
            return ErrorReply(message=f"shop: no item {request.item!r}; it sells {', '.join(i.id for i in ITEMS)}")
        if self.daemon.skill_runner is None:
            return ErrorReply(message=f"shop: {item.id} needs skills, and this trainer has none loaded")
        return Later(lambda: self._sell_once(item, request))  # drawing a quest takes a while

    def _sell_once(self, item: Item, request: ShopBuyRequest) -> Reply:
        with self._lock:
            if request.request_id and request.request_id in self._answered:
                return self._answered[request.request_id]
            reply = self._sell(item, request)
            if request.request_id:
                self._answered[request.request_id] = reply
                while len(self._answered) > REMEMBERED_SALES:
                    self._answered.popitem(last=False)
            return reply

    def _sell(self, item: Item, request: ShopBuyRequest) -> Reply:
        gold = hero_stats(self.daemon.publisher.state).gold
        if gold < item.price:
            return ErrorReply(
                message=f"shop: {item.id} costs {item.price:,} gold; DIO has {gold:,} ({GOLD_PER_QUEST} a quest won)"
            )
        deliver: Callable[[], Reply] = {"quest": lambda: self._commission(request), "eval": self._extra_eval}[item.id]
        delivered = deliver()
        if isinstance(delivered, ErrorReply):
            return ErrorReply(message=f"shop: nothing spent: {delivered.message}")
        try:
            self.daemon.chronicle.record_purchase(
                self.daemon.run_id, time.time(), item.id, item.price, delivered.message
            )
        except sqlite3.Error as exc:  # delivered but not recorded: do not charge what cannot be kept
            return Ack(message=f"{delivered.message} (free: the purchase could not be recorded: {exc})")
        self.daemon.publisher.emit(GoldSpent(item=item.id, price=item.price, detail=delivered.message))
        return Ack(message=f"bought for {item.price:,} gold ({gold - item.price:,} left): {delivered.message}")

    def _commission(self, request: ShopBuyRequest) -> Reply:
        ask = QuestGenerateRequest(skill=request.skill, level=request.level, count=COMMISSION_CHATS, priority="high")
        return self.daemon.generated_quest(ask)

    def _extra_eval(self) -> Reply:
        runner = self.daemon.skill_runner
        runner.rounds.next_eval_step = self.daemon.engine.step  # due now: the training thread runs it next
        skills = ", ".join(runner.mix)
        return Ack(message=f"an eval round of {skills} after DIO's next step")
