"""The shop: what DIO's gold buys, and the prices. The trainer sells (``trainer/shop.py``);
the TUI's shop and ``realm shop`` show these same lines."""

from __future__ import annotations

from dataclasses import dataclass

COMMISSION_CHATS = 64  # chats in a commissioned quest


@dataclass(frozen=True)
class Item:
    id: str
    price: int
    what: str  # one line a player can read


ITEMS = (
    Item("quest", 300, f"commission a quest: {COMMISSION_CHATS} chats of a skill at a level you choose, queued high"),
    Item("eval", 200, "an extra eval round of every skill in the mix, after DIO's next step"),
)
BY_ID = {item.id: item for item in ITEMS}
