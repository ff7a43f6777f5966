"""The Battle screen: the quest in progress, the step counter, live metrics and loss chart."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Static

from realm.protocol import BattleState
from realm.tui import format as fmt
from realm.tui.screens.base import RealmScreen
from realm.tui.view import RealmView
from realm.tui.widgets.log_view import LogView
from realm.tui.widgets.loss_chart import LossChart
from realm.tui.widgets.meter import Meter

QUEST_LABEL_WIDTH = 32
STATUS_WORDS = {
    "starting": "✦ STARTING",
    "idle": "☾ IDLE",
    "training": "⚔ TRAINING",
    "paused": "⏸ PAUSED",
    "stopping": "■ STOPPING",
    "stopped": "■ STOPPED",
}


class BattleScreen(RealmScreen):
    SCREEN_NAME = "2 Battle"

    def compose_body(self) -> ComposeResult:
        yield Meter(id="battle-quest")
        yield Static(id="battle-state")
        yield Static(id="battle-metrics")
        yield LossChart(id="battle-chart")
        yield LogView(id="battle-log")

    def on_mount(self) -> None:
        self.query_one(LossChart).border_title = "loss  [$accent]⠤ train[/]  [$warning]• val[/]"
        self.query_one(LogView).border_title = "Chronicle"

    def show_body(self, view: RealmView) -> None:
        battle = view.state.battle
        self.query_one("#battle-quest", Meter).set(*quest_meter(battle))
        self.query_one("#battle-state").set_class(battle.status == "paused", "-paused")
        self.set_row("#battle-state", state_line(view.state.hero.steps, battle, view.readonly))
        self.set_row("#battle-metrics", metrics_line(battle))
        self.query_one(LossChart).set_series(battle.losses, battle.val_losses)
        self.query_one(LogView).set_lines(view.state.log)


def quest_meter(battle: BattleState) -> tuple[float | None, str, str]:
    if battle.quest is None:
        return None, "No quest: DIO rests at camp.", ""
    name = battle.quest.name
    if len(name) > QUEST_LABEL_WIDTH:
        name = name[: QUEST_LABEL_WIDTH - 1] + "…"
    fraction = battle.quest_step / battle.quest_total if battle.quest_total else 0.0
    return fraction, f"Quest {name} ", f" {battle.quest_step:,}/{battle.quest_total:,}"


def state_line(step: int, battle: BattleState, readonly: bool) -> Content:
    parts: list[str | tuple[str, str]] = [("Step ", "bold"), (fmt.count(step), "bold $accent"), "   "]
    parts.append((STATUS_WORDS[battle.status], "bold"))
    if battle.status == "paused" and not readonly:
        parts.append(" · space resumes")
    return Content.assemble(*parts)


def metrics_line(battle: BattleState) -> Content:
    return Content.assemble(
        ("loss ", "$text-muted"), (fmt.loss(battle.loss), "bold"),
        ("  lr ", "$text-muted"), fmt.sci(battle.lr),
        ("  grad ", "$text-muted"), f"{battle.grad_norm:.3f}",
        ("  tok/s ", "$text-muted"), fmt.rate(battle.tokens_per_s),
        ("  ex/s ", "$text-muted"), fmt.rate(battle.examples_per_s),
    )  # fmt: skip
