"""The Hero screen: DIO's portrait, title, level, XP, stats, achievements, milestones and the narration.

The title and the portrait climb the milestone ladder (``realm.game.milestones.LADDER``)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Static

from realm.game.achievements import RULES
from realm.game.hero import HeroStats, hero_stats
from realm.game.milestones import next_rank, rank
from realm.protocol import Achievement, Milestone, TrainerInfo
from realm.tui import format as fmt
from realm.tui.screens.base import RealmScreen
from realm.tui.view import RealmView
from realm.tui.widgets.log_view import LogView
from realm.tui.widgets.meter import Meter
from realm.tui.widgets.portrait import Portrait

ACHIEVEMENTS_SHOWN = 4
# Help says more
STAT_KEY = Content.styled("ATK 1/smoothed loss · DEF 1/suite loss · ACC eval right", "$text-muted")  # one row at 80


class HeroScreen(RealmScreen):
    SCREEN_NAME = "1 Hero"

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="hero-top"):
            yield Portrait(id="hero-portrait")
            with Vertical(id="hero-sheet"):
                yield Static(id="hero-name")
                yield Static(id="hero-level")
                yield Meter(id="hero-xp")
                yield Static(id="hero-stats")
                yield Static(STAT_KEY, id="hero-stat-key")
                yield Static(id="hero-model")
        yield Static(id="hero-achievements")
        yield LogView(id="hero-log")

    def on_mount(self) -> None:
        self.query_one("#hero-portrait").border_title = "DIO"
        self.query_one("#hero-log").border_title = "Chronicle"
        self.query_one("#hero-achievements").border_title = "Achievements"

    def show_body(self, view: RealmView) -> None:
        stats = hero_stats(view.state)
        reached = view.state.hero.milestones
        title, tier = rank(reached)
        self.query_one(Portrait).show_tier(tier)
        self.set_row("#hero-name", Content.assemble(("DIO", "bold $accent"), ", ", (title, "italic")))
        self.set_row("#hero-level", level_line(stats.level, reached))
        self.query_one("#hero-xp", Meter).set(*xp_meter(stats))
        self.set_row("#hero-stats", stats_line(stats, view.state.hero.quests_completed))
        self.set_row("#hero-model", model_line(view.state.trainer))
        self.set_row(
            "#hero-achievements",
            Content("\n").join([achievements_line(view.state.achievements), milestones_line(view.state.milestones)]),
        )
        self.query_one(LogView).set_lines(view.state.log, self.app.bin_glyphs)


def level_line(level: int, milestones: int) -> Content:
    """'Level 3 · ⚑ 7 milestones · 8 more: Paladin of Perplexity'."""
    up = next_rank(milestones)
    climb = f" · {up[0] - milestones} more: {up[1]}" if up else ""
    return Content.assemble((f"Level {level}", "bold"), " · ", (f"⚑ {milestones:,} milestones", "$warning"), climb)


def milestones_line(recent: tuple[Milestone, ...]) -> Content:
    """The newest milestones, newest first."""
    if not recent:
        return Content.styled("⚑ none yet: a quest streak, a record or a skill level earns one", "$text-muted")
    return Content.assemble(("⚑ ", "bold $warning"), " · ".join(m.text for m in reversed(recent[-3:])))


def xp_meter(stats: HeroStats) -> tuple[float, str, str]:
    fraction = stats.xp_into_level / stats.xp_for_level
    suffix = f" {stats.xp_into_level:,}/{stats.xp_for_level:,} to Lv {stats.level + 1}"
    return fraction, f"XP {fmt.count(stats.xp)} ", suffix


def stats_line(stats: HeroStats, quests_completed: int) -> Content:
    return Content.assemble(
        ("ATK ", "bold $error"), f"{fmt.stat(stats.atk)}   ",
        ("DEF ", "bold $primary"), f"{fmt.stat(stats.defense)}   ",
        ("ACC ", "bold $success"), f"{fmt.percent(stats.acc)}   ",
        ("Gold ", "bold $warning"), f"{fmt.count(stats.gold)}   ",
        ("Quests ", "bold"), fmt.count(quests_completed),
    )  # fmt: skip


def model_line(trainer: TrainerInfo | None) -> Content:
    if trainer is None:
        return Content.styled("model —", "$text-muted")
    return Content.styled(
        f"{trainer.model} · {trainer.device} · {fmt.params(trainer.parameters)} params"
        + (f" · profile {trainer.profile}" if trainer.profile else ""),
        "$text-muted",
    )


def achievements_line(earned: tuple[Achievement, ...]) -> Content:
    """'★ 5/18  Centurion · First Blood · …', newest first."""
    head = (f"★ {len(earned)}/{len(RULES)}  ", "bold $warning")
    if not earned:
        return Content.assemble(head, ("none yet: DIO's first step earns one", "$text-muted"))
    names = " · ".join(a.name for a in reversed(earned[-ACHIEVEMENTS_SHOWN:]))
    more = " · …" if len(earned) > ACHIEVEMENTS_SHOWN else ""
    return Content.assemble(head, names + more)
