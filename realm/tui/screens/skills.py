"""The Skills screen: each skill's icon, level, accuracy history, last eval items, next eval.

``skills_model`` is the one place that reads the state. The skill state (levels, accuracy
history, eval items) is not in the protocol on this branch; when it lands, only that function
changes and the rows it returns are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from realm.tui.screens.base import RealmScreen, missing_panel
from realm.tui.view import RealmView

MISSING_SKILLS = "skill state (levels / max, accuracy history per level, the last eval's items, the next eval)"
MISSING_DETAIL = "The trainer publishes no skill events yet; they land with the skills work."


@dataclass(frozen=True)
class SkillRow:
    icon: str
    name: str
    level: int
    max_level: int
    accuracy: tuple[float, ...]  # per eval at the current level, oldest first
    last_items: tuple[tuple[str, str, bool], ...]  # (prompt, DIO's answer, right?)
    next_eval: str


@dataclass(frozen=True)
class SkillsModel:
    rows: tuple[SkillRow, ...]
    missing: str | None
    training_on: str  # what DIO trains on now, which the state does say
    idle_quests_done: int


def skills_model(view: RealmView) -> SkillsModel:
    state = view.state
    quest = state.battle.quest
    if quest is None:
        training_on = "nothing: DIO rests"
    elif quest.source == "idle":
        training_on = f"an idle quest the trainer made ({quest.name})"
    else:
        training_on = f"a dropped quest ({quest.name})"
    idle_done = sum(1 for r in state.board.recent if r.outcome == "done" and r.name.startswith("idle-"))
    return SkillsModel(rows=(), missing=MISSING_SKILLS, training_on=training_on, idle_quests_done=idle_done)


def skill_row_text(row: SkillRow) -> Content:
    history = " ".join(f"{a:.0%}" for a in row.accuracy) or "no eval yet"
    return Content.assemble(
        (f"{row.icon} {row.name}", "bold"), f"  Lv {row.level}/{row.max_level}  ",
        ("acc ", "$text-muted"), history, ("  next eval ", "$text-muted"), row.next_eval,
    )  # fmt: skip


class SkillsScreen(RealmScreen):
    SCREEN_NAME = "3 Skills"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="skills-body"):
            yield Static(id="skills-missing", classes="missing")
            yield Static(id="skills-rows")
            yield Static(id="skills-now")

    def show_body(self, view: RealmView) -> None:
        model = skills_model(view)
        missing = self.query_one("#skills-missing", Static)
        missing.display = model.missing is not None
        if model.missing:
            missing.update(missing_panel(model.missing, MISSING_DETAIL))
        self.query_one("#skills-rows", Static).update(Content("\n").join(skill_row_text(r) for r in model.rows))
        self.query_one("#skills-now", Static).update(
            Content.assemble(
                ("Training on ", "$text-muted"), model.training_on, "\n",
                ("Idle quests won (recent) ", "$text-muted"), str(model.idle_quests_done),
            )  # fmt: skip
        )
