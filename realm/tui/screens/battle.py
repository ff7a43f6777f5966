"""The Battle screen: the quest in progress, live metrics with ETA, the loss chart with damage
numbers floating up beside it, a level-up flash, and the narrated battle log."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Static

from realm import gpu as nvml
from realm.game.narration import TITLE_WIDTH, quest_title
from realm.protocol import BattleState, RealmState, SkillsState
from realm.tui import format as fmt
from realm.tui.screens.base import RealmScreen
from realm.tui.view import RealmView
from realm.tui.widgets.damage import DamageFloats, loss_change
from realm.tui.widgets.log_view import LogView
from realm.tui.widgets.loss_chart import LossChart
from realm.tui.widgets.meter import Meter

QUEST_LABEL_WIDTH = TITLE_WIDTH  # a game quest's title whole; a longer file name is cut
FLASH_S = 1.5
STATUS_WORDS = {
    "starting": "✦ STARTING",
    "idle": "☾ RESTING",
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
        yield Static(id="battle-gpu")
        with Horizontal(id="battle-field"):
            yield LossChart(id="battle-chart")
            yield DamageFloats(id="battle-damage")
        yield LogView(id="battle-log")

    def on_mount(self) -> None:
        self.query_one(LossChart).border_title = "loss  [$accent]⠤ train[/]  [$warning]• quest val[/]"
        self.query_one(LogView).border_title = "Battle log"

    def show_body(self, view: RealmView) -> None:
        battle = view.state.battle
        self.query_one("#battle-quest", Meter).set(*quest_meter(battle, view.state.skills))
        self.query_one("#battle-state").set_class(battle.status == "paused", "-paused")
        self.set_row("#battle-state", state_line(view.state.hero.steps, battle, view.readonly, view.steps_per_s))
        self.set_row("#battle-metrics", metrics_line(battle, view.state.hero.val_loss))
        self.set_row("#battle-gpu", gpu_line(view.state))
        self.query_one(LossChart).set_series(battle.losses, battle.val_losses)
        self.query_one(LogView).set_lines(view.state.log, self.app.bin_glyphs)

    # effects the app triggers from the events it drains
    def effect_hits(self, losses: list[float], before: float | None = None) -> None:
        change = loss_change(before, losses)
        if change is not None:
            self.query_one(DamageFloats).hit(change)

    def effect_level_up(self, new_level: int) -> None:
        if self.app.animation_level == "none":
            return
        row = self.query_one("#battle-state")
        row.add_class("-flash")
        self.set_timer(FLASH_S, lambda: row.remove_class("-flash"))


def quest_meter(battle: BattleState, skills: SkillsState | None = None) -> tuple[float | None, str, str]:
    if battle.quest is None:
        if battle.status == "idle" and battle.reason:  # resting by policy, not for want of work
            return None, "No quest. Idle quests are off: idle.enabled: true turns them on.", ""
        return None, "No quest: DIO rests at camp.", ""
    name = quest_title(battle.quest, skills)
    if len(name) > QUEST_LABEL_WIDTH:
        name = name[: QUEST_LABEL_WIDTH - 1] + "…"
    fraction = battle.quest_step / battle.quest_total if battle.quest_total else 0.0
    epoch = f" ep {battle.quest_epoch}/{battle.quest_epochs}" if battle.quest_epochs else ""
    return fraction, f"Quest {name} ", f" {battle.quest_step:,}/{battle.quest_total:,}{epoch}"


def eta(battle: BattleState, steps_per_s: float | None) -> str:
    """Time left in the quest at the measured step rate: '4m05s', '—' when unknown."""
    if battle.quest is None or not battle.quest_total or not steps_per_s:
        return fmt.MISSING
    seconds = max(battle.quest_total - battle.quest_step, 0) / steps_per_s
    return fmt.duration(seconds)


def state_line(step: int, battle: BattleState, readonly: bool, steps_per_s: float | None = None) -> Content:
    parts: list[str | tuple[str, str]] = [("Step ", "bold"), (fmt.count(step), "bold $accent"), "   "]
    parts.append((STATUS_WORDS[battle.status], "bold"))
    if battle.status == "paused" and not readonly:
        parts.append(" · space resumes")

    elif steps_per_s:
        parts += [
            ("   ", ""),
            (f"{steps_per_s:.1f} steps/s", "$text-muted"),
            ("  ETA ", "$text-muted"),
            (eta(battle, steps_per_s), "bold"),
        ]
    return Content.assemble(*parts)


def live_rate(battle: BattleState, value: float) -> str:
    """A throughput while DIO trains; paused or resting, the last step's rate is not a rate now."""
    return fmt.rate(value) if battle.status == "training" else fmt.MISSING


def metrics_line(battle: BattleState, quest_val: float | None) -> Content:
    """``quest_val``: the current quest's own held-out loss (none until its first measure, before its first step;
    the chart keeps the earlier quests' points)."""
    return Content.assemble(
        ("loss ", "$text-muted"), (fmt.loss(battle.loss), "bold"),
        ("  quest val ", "$text-muted"), fmt.loss(quest_val),
        ("  lr ", "$text-muted"), fmt.sci(battle.lr),
        ("  grad ", "$text-muted"), f"{battle.grad_norm:.3f}",
        ("  tok/s ", "$text-muted"), live_rate(battle, battle.tokens_per_s),
        ("  ex/s ", "$text-muted"), live_rate(battle, battle.examples_per_s),
    )  # fmt: skip


def trainer_gpu_rows(state: RealmState) -> tuple[tuple[str, str], ...]:
    """The trainer's device as it reports it: its GPU's NVML reading and MFU against the card's
    spec peak, or plainly the CPU with tokens/s (the one throughput a CPU run has)."""
    trainer, battle = state.trainer, state.battle
    if trainer is None:
        return (("device", "not reported yet"),)
    if not trainer.device.startswith("cuda"):
        return (
            ("gpu", f"none: trains on {trainer.device.split(':')[0].upper()}"),
            ("tok/s", live_rate(battle, battle.tokens_per_s)),
        )
    if battle.gpu is None:
        memory = f" · {battle.gpu_memory_mb / 1024:.1f} GiB used" if battle.gpu_memory_mb is not None else ""
        return (("gpu", f"{trainer.device} · {battle.gpu_note or 'no reading yet'}{memory}"),)
    gpu = battle.gpu
    mfu = mfu_text(trainer.parameters, battle.tokens_per_s, gpu.name)
    memory = " · ".join(part for part in (fmt.gpu_memory(gpu), fmt.gpu_heat(gpu)) if part)
    return (("gpu", f"{fmt.gpu_name(gpu)} {gpu.utilization:.0f}% · MFU {mfu}"), ("memory", memory))


def gpu_line(state: RealmState) -> Content:
    """The Battle's one row of the trainer's device: 'trainer gpu RTX 4090 87% · MFU 26.8% · memory ...'."""
    parts: list[str | tuple[str, str]] = [("trainer", "$text-muted")]
    for i, (label, value) in enumerate(trainer_gpu_rows(state)):
        parts += [(" · " if i else " ", "$text-muted"), (f"{label} ", "$text-muted"), value]
    return Content.assemble(*parts)


def mfu_text(parameters: int, tokens_per_s: float, card: str) -> str:
    """Training MFU (6 x parameters x tokens/s over the card's spec bf16 peak); '—' for a card not in the table."""
    value = nvml.mfu(parameters, tokens_per_s, card)
    return fmt.MISSING if value is None else f"{value:.1%}"
