"""The Skills screen: each skill's icon, level, accuracy history per level, the last eval's
items (prompt, DIO's answer, verdict) and the step of the next eval.

``skills_model`` is the one place that reads the state (``RealmState.skills``, filled by the
trainer's ``SkillsLoaded`` / ``SkillEvaluated`` / ``SkillLevelUp`` events).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from realm.protocol import SkillState
from realm.tui.format import bin_text
from realm.tui.screens.base import RealmScreen
from realm.tui.view import RealmView

NO_SKILLS = "no skill loaded: the trainer announces its skills (skills.enabled) when it starts"
ITEMS_SHOWN = 4  # of the last eval's items, on an 80x24 screen
TEXT_CLIP = 34


@dataclass(frozen=True)
class SkillRow:
    icon: str
    name: str
    level: int
    max_level: int
    accuracy: tuple[tuple[int, tuple[float, ...]], ...]  # (level, accuracies oldest first), by level
    last_items: tuple[tuple[str, str, bool], ...]  # (prompt, DIO's answer, right?)
    next_eval: str
    active: bool = False  # the skill behind the hero's ACC


@dataclass(frozen=True)
class SkillsModel:
    rows: tuple[SkillRow, ...]
    empty: str | None  # why there is no row
    training_on: str  # what DIO trains on now
    idle_quests_done: int


def skill_row(skill: SkillState, step: int, active: str) -> SkillRow:
    by_level: dict[int, list[float]] = {}
    for point in skill.history:
        by_level.setdefault(point.level, []).append(point.accuracy)
    accuracy = tuple((lvl, tuple(accs)) for lvl, accs in sorted(by_level.items()))
    if not skill.next_eval_step:
        next_eval = "not scheduled"
    elif skill.next_eval_step <= step:
        next_eval = f"due (step {skill.next_eval_step:,})"
    else:
        next_eval = f"step {skill.next_eval_step:,} (in {skill.next_eval_step - step:,})"
    items = tuple((i.prompt, i.response, i.correct) for i in skill.last_items)
    return SkillRow(icon=skill.icon or "◆", name=skill.name or skill.id, level=skill.level,
                    max_level=skill.max_level, accuracy=accuracy, last_items=items,
                    next_eval=next_eval, active=skill.id == active)  # fmt: skip


def skills_model(view: RealmView) -> SkillsModel:
    state = view.state
    quest = state.battle.quest
    if quest is None:
        training_on = "nothing: DIO rests"
    elif quest.source == "idle":
        training_on = f"an idle quest the trainer made ({quest.name})"
    elif quest.source == "correction":
        training_on = f"a correction quest: the items DIO got wrong ({quest.name})"
    elif quest.source == "generated":
        training_on = f"a quest drawn from a skill on request ({quest.name})"
    else:
        training_on = f"your quest ({quest.name})"
    idle_done = sum(1 for r in state.board.recent if r.outcome == "done" and r.source == "idle")
    step = state.hero.steps
    rows = tuple(skill_row(s, step, state.skills.active) for s in state.skills.skills)
    return SkillsModel(
        rows=rows, empty=None if rows else NO_SKILLS, training_on=training_on, idle_quests_done=idle_done
    )


def clip(text: str, width: int = TEXT_CLIP) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def skill_row_text(row: SkillRow, glyphs: str = "ascii") -> Content:
    lines = [
        Content.assemble(
            (f"{row.icon} {row.name}", "bold"),
            (" ★" if row.active else "", "$warning"),
            f"  Lv {row.level}/{row.max_level}",
            ("  next eval ", "$text-muted"),
            row.next_eval,
        )  # fmt: skip
    ]
    if not row.accuracy:
        lines.append(Content.styled("  no eval yet", "$text-muted"))
    for lvl, accs in row.accuracy:
        lines.append(Content.assemble((f"  acc L{lvl} ", "$text-muted"), " ".join(f"{a:.0%}" for a in accs)))
    for prompt, answer, right in row.last_items[:ITEMS_SHOWN]:
        verdict = ("✓", "$success") if right else ("✗", "bold $error")
        lines.append(
            Content.assemble(
                "  ",
                verdict,
                " ",
                clip(bin_text(prompt, glyphs)),
                ("  → ", "$text-muted"),
                clip(bin_text(answer, glyphs) or "(nothing)", 24),
            )  # fmt: skip
        )
    if len(row.last_items) > ITEMS_SHOWN:
        lines.append(Content.styled(f"  … {len(row.last_items) - ITEMS_SHOWN} more items", "$text-muted"))
    return Content("\n").join(lines)


class SkillsScreen(RealmScreen):
    SCREEN_NAME = "3 Skills"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="skills-body"):
            yield Static(id="skills-now")
            yield Static(id="skills-empty", classes="missing")
            yield Static(id="skills-rows")

    def show_body(self, view: RealmView) -> None:
        model = skills_model(view)
        empty = self.query_one("#skills-empty", Static)
        empty.display = model.empty is not None
        if model.empty:
            empty.update(Content.styled(model.empty, "$text-muted"))
        self.query_one("#skills-rows", Static).update(
            Content("\n\n").join(skill_row_text(r, self.app.bin_glyphs) for r in model.rows)
        )
        self.query_one("#skills-now", Static).update(
            Content.assemble(
                ("Training on ", "$text-muted"),
                model.training_on,
                "\n",
                ("Idle quests won (recent) ", "$text-muted"),
                str(model.idle_quests_done),
                "\n",
            )  # fmt: skip
        )
