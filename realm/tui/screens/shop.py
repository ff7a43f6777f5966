"""The shop modal (``$``): the items, their prices and DIO's gold; ``enter`` buys the
highlighted item. The trainer checks the price and answers in a toast (``realm shop`` sells
the same)."""

from __future__ import annotations

import uuid

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Select, Static
from textual.widgets.option_list import Option

from realm.game.hero import GOLD_PER_QUEST
from realm.game.shop import ITEMS, Item
from realm.protocol import ShopBuyRequest, SkillState
from realm.tui.actions import bindings_for


def item_line(item: Item, gold: int) -> Content:
    short = "" if gold >= item.price else f" (need {item.price - gold:,} more)"
    style = "bold $warning" if gold >= item.price else "$text-muted"
    return Content.assemble((f"{item.id:<6}{item.price:>5,} gold", style), f"  {item.what}", (short, "$error"))


class ShopScreen(ModalScreen[ShopBuyRequest | None]):
    """``up``/``down`` pick an item, ``tab`` reaches a quest's skill and level, ``enter`` buys."""

    BINDINGS = bindings_for("shop")

    def __init__(self, gold: int, skills: tuple[SkillState, ...], active: str = "") -> None:
        super().__init__()
        self.gold = gold
        self.skills = {s.id: s for s in skills}
        self.first = active if active in self.skills else next(iter(self.skills), "")

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box", id="shop-box"):
            yield Static(
                Content.assemble(("Shop", "bold $accent"), f"  · Gold {self.gold:,} ({GOLD_PER_QUEST} a quest won)")
            )
            yield OptionList(*(Option(item_line(i, self.gold), id=i.id) for i in ITEMS), id="shop-items")
            options = [(f"{s.short_name or s.id} (L{s.level}/{s.max_level})", s.id) for s in self.skills.values()]
            with Horizontal(id="shop-quest"):
                yield Select(options, value=self.first or Select.BLANK, allow_blank=not options, id="shop-skill")
                yield Input(str(self.skills[self.first].level) if self.first else "1", type="integer", id="shop-level")
            yield Static(
                Content.styled("↑↓ item · tab: a quest's skill and level · enter buys · esc closes", "$text-muted")
            )

    def on_mount(self) -> None:
        self.query_one("#shop-level", Input).border_title = "level"
        self.query_one("#shop-skill", Select).border_title = "quest skill"
        self.query_one("#shop-items", OptionList).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.value in self.skills:
            self.query_one("#shop-level", Input).value = str(self.skills[event.value].level)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self._buy(str(event.option.id))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._buy("quest")

    def _buy(self, item: str) -> None:
        request = self.request(item)
        if isinstance(request, str):
            self.notify(request, severity="warning", markup=False)
            return
        self.dismiss(request)

    def request(self, item: str) -> ShopBuyRequest | str:
        """The purchase the fields ask for, or what is wrong with them."""
        if item != "quest":
            return ShopBuyRequest(item=item, request_id=uuid.uuid4().hex)
        skill = self.skills.get(str(self.query_one("#shop-skill", Select).value))
        if skill is None:
            return "quest: the trainer has announced no skills"
        level = self.query_one("#shop-level", Input).value.strip()
        if not level.isdigit() or not 1 <= int(level) <= skill.max_level:
            return f"level: {skill.id} has levels 1..{skill.max_level}"
        return ShopBuyRequest(item="quest", skill=skill.id, level=int(level), request_id=uuid.uuid4().hex)

    def action_cancel(self) -> None:
        self.dismiss(None)
