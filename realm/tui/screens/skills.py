"""The Skills screen: the skills in the mix, each one's accuracy over steps as a sparkline per
level, and the last eval's items in a table; ``enter`` on an item opens everything about it
(DIO's whole answer, the expected answer, the grader's explanation).

``skills_model`` is the one place that reads the state (``RealmState.skills``, filled by the
trainer's ``SkillsLoaded`` / ``SkillEvaluated`` / ``SkillLevelUp`` events). The trainer announces
only the skills in ``skills.mix``; the screen says which shipped skills are left out of it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import DataTable, Static

from realm.game.narration import counted
from realm.protocol import SkillEvalItem, SkillState
from realm.skills.confidence import band_text, probe_band
from realm.skills.registry import SKILLS_DIR, skill_files
from realm.tui.actions import bindings_for
from realm.tui.format import bin_text
from realm.tui.screens.base import RealmScreen
from realm.tui.screens.quest_detail import FactSheet
from realm.tui.view import RealmView

NO_SKILLS = "no skill loaded: the trainer announces its skills (skills.enabled) when it starts"
SPARK = "▁▂▃▄▅▆▇█"  # 0 % to 100 %, the same scale on every line
SPARK_POINTS = 24  # the newest rounds a sparkline shows
ITEM_COLUMNS = ("", "skill", "prompt", "DIO's answer", "expected")
DIFFERENCE_CONTEXT = 4  # characters shown before where a wrong answer leaves the expected one
ITEM_FIXED = 1 + 5 + 2 * len(ITEM_COLUMNS) + 2 + 2  # mark, skill, cell padding, border, scrollbar


def item_widths(width: int) -> tuple[int, ...]:
    """The columns' widths in a table ``width`` cells wide: the texts share what the mark and
    the skill leave (at 80 columns: 28, 16, 16)."""
    room = max(width - ITEM_FIXED, 30)
    answer = room * 4 // 15
    return 1, 5, room - 2 * answer, answer, answer


@dataclass(frozen=True)
class LevelTrend:
    """One level's eval rounds, oldest first: (step, accuracy)."""

    level: int
    points: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class EvalItemRow:
    skill: str  # the short name
    skill_title: str  # icon, name, short name
    level: int
    step: int | None  # the round's step
    item: SkillEvalItem


@dataclass(frozen=True)
class SkillRow:
    icon: str
    name: str
    short_name: str
    level: int
    max_level: int
    trends: tuple[LevelTrend, ...]  # by level
    next_eval: str
    active: bool = False  # the skill behind the hero's ACC
    probe: str = ""  # the last rounds' fresh probes at its level, pooled, with a 95 % band; "" before any
    waits: str = ""  # a locked skill: when it joins the training; "" when it plays


@dataclass(frozen=True)
class SkillsModel:
    rows: tuple[SkillRow, ...]
    items: tuple[EvalItemRow, ...]  # the last round's items of every skill
    empty: str | None  # why there is no row
    training_on: str  # what DIO trains on now
    idle_quests_done: str  # of the board's recent quests, which say how many they are
    mix: str  # which skills the trainer trains and evaluates, and which are left out


def trends(skill: SkillState) -> tuple[LevelTrend, ...]:
    by_level: dict[int, list[tuple[int, float]]] = {}
    for point in skill.history:
        by_level.setdefault(point.level, []).append((point.step, point.accuracy))
    return tuple(LevelTrend(lvl, tuple(points)) for lvl, points in sorted(by_level.items()))


def skill_row(skill: SkillState, step: int, active: str, names: dict[str, str] | None = None) -> SkillRow:
    """``names``: the short name of each skill in the mix, for a locked skill's wait."""
    waits = ""
    if skill.waits_for:
        waiting_on = (names or {}).get(skill.waits_for, skill.waits_for.upper())
        waits = f"joins the training when {waiting_on} reaches L{skill.waits_level}"
    if waits:
        next_eval = "none until it joins"
    elif not skill.next_eval_step:
        next_eval = "not scheduled"
    elif skill.next_eval_step <= step:
        next_eval = f"due (step {skill.next_eval_step:,})"
    else:
        next_eval = f"step {skill.next_eval_step:,} (in {skill.next_eval_step - step:,})"
    band = probe_band(skill.history, skill.level)
    return SkillRow(icon=skill.icon or "◆", name=skill.name or skill.id, short_name=short(skill), level=skill.level,
                    max_level=skill.max_level, trends=trends(skill), next_eval=next_eval,
                    active=skill.id == active, probe=band_text(band) if band else "", waits=waits)  # fmt: skip


def short(skill: SkillState) -> str:
    return skill.short_name or skill.id.upper()


def item_rows(skill: SkillState) -> tuple[EvalItemRow, ...]:
    at_level = [p.step for p in skill.history if p.level == skill.level]
    title = f"{skill.icon or '◆'} {skill.name or skill.id} ({short(skill)})"
    step = at_level[-1] if at_level else None
    return tuple(EvalItemRow(short(skill), title, skill.level, step, item) for item in skill.last_items)


def config_value(view: RealmView, key: str) -> str | None:
    return next((f.value for f in view.state.config if f.key == key), None)


def mix_line(view: RealmView, skills: tuple[SkillState, ...]) -> str:
    """The skills in the mix, and the shipped ones left out (only when the trainer reads the
    shipped folder: another folder's skills are not known here)."""
    shown = ", ".join(short(s) for s in skills) or "none"
    line = f"In the mix (skills.mix): {shown}"
    if config_value(view, "skills.folder") not in ("null", ""):
        return line
    left_out = [skill_id for skill_id in shipped_skill_ids() if skill_id not in {s.id for s in skills}]
    if left_out:
        line += (
            f". Not in the mix, so not trained or shown: {', '.join(left_out)}; add to skills.mix in the Armory (8), "
            'e.g. [bin, "sy:0.1"]'
        )
    return line


@functools.cache
def shipped_skill_ids() -> tuple[str, ...]:
    """The shipped skills' ids: listed once, not on every repaint."""
    return tuple(p.stem for p in skill_files(SKILLS_DIR))


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
    recent = state.board.recent
    won = sum(1 for r in recent if r.outcome == "done" and r.source == "idle")
    idle_done = f"{won} of the last {counted(len(recent), 'quest')}" if recent else "none yet"
    step = state.hero.steps
    skills = state.skills.skills
    names = {s.id: short(s) for s in skills}
    rows = tuple(skill_row(s, step, state.skills.active, names) for s in skills)
    items = tuple(row for s in skills for row in item_rows(s))
    return SkillsModel(rows=rows, items=items, empty=None if rows else NO_SKILLS, training_on=training_on,
                       idle_quests_done=idle_done, mix=mix_line(view, skills))  # fmt: skip


def clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def sparkline(values: tuple[float, ...]) -> str:
    """Accuracies (0..1) as block characters, on a fixed 0-100 % scale."""
    top = len(SPARK) - 1
    return "".join(SPARK[round(min(max(v, 0.0), 1.0) * top)] for v in values)


def trend_text(trend: LevelTrend) -> Content:
    """``L4  ▃▃▄▅▆  85%  steps 350–1,500 · 24 of 30 evals``: the step range is the drawn points'."""
    shown = trend.points[-SPARK_POINTS:]
    first, last = shown[0][0], shown[-1][0]
    steps = f"step {last:,}" if first == last else f"steps {first:,}–{last:,}"
    count = len(trend.points)
    evals = f"{len(shown)} of {count} evals" if len(shown) < count else counted(count, "eval")
    return Content.assemble(
        (f"  L{trend.level:<3}", "$text-muted"),
        (sparkline(tuple(acc for _, acc in shown)).ljust(SPARK_POINTS), "$accent"),
        f" {shown[-1][1]:>4.0%}",
        (f"  {steps} · {evals}", "$text-muted"),
    )  # fmt: skip


def skill_row_text(row: SkillRow) -> Content:
    lines = [
        Content.assemble(
            (f"{row.icon} {row.name} ({row.short_name})", "bold"),
            (" ★" if row.active else "", "$warning"),
            f"  Lv {row.level}/{row.max_level}",
            ("  next eval ", "$text-muted"),
            row.next_eval,
        )  # fmt: skip
    ]
    if row.waits:
        lines.append(Content.styled(f"  locked: {row.waits} (skills.unlock_level)", "$text-muted"))
    elif not row.trends:
        lines.append(Content.styled("  no eval yet", "$text-muted"))
    if row.probe:
        lines.append(Content.styled(f"  L{row.level:<3}{row.probe}", "$text-muted"))
    shown = [t for t in row.trends if t.level >= row.level - 1]  # how it got here, here, and the next level
    lines += [trend_text(t) for t in shown]
    earlier = len(row.trends) - len(shown)
    if earlier:
        lines.append(Content.styled(f"  + {counted(earlier, 'earlier level')} not drawn", "$text-muted"))
    return Content("\n").join(lines)


def prompt_gist(prompt: str) -> str:
    """What tells one item from another: a many-line prompt's first line is the skill's
    instruction, the same for every item (SY's "Syllacrostic: join the syllable tiles..."), so
    the table shows the rest; the detail pane shows all of it."""
    lines = [line for line in prompt.splitlines() if line.strip()]
    return " ".join(lines[1:]) if len(lines) > 1 else prompt


def from_difference(said: str, expected: str, width: int) -> tuple[str, str]:
    """A wrong answer and the expected one, flattened; when they part beyond what a ``width`` cell
    shows, both start at the word where they part (``…`` marks what is dropped): long worked answers
    share their first lines, and cells that showed only those made a wrong row look right."""
    said, expected = " ".join(said.split()), " ".join(expected.split())
    same = next((i for i, (a, b) in enumerate(zip(said, expected)) if a != b), min(len(said), len(expected)))
    if same < width - DIFFERENCE_CONTEXT:
        return said, expected
    start = expected.rfind(" ", 0, same) + 1  # the shared prefix: the same word start in both
    if start == 0 or same - start > width // 2:
        start = same - DIFFERENCE_CONTEXT
    return "…" + said[start:], "…" + expected[start:]


def item_cells(row: EvalItemRow, glyphs: str, widths: tuple[int, ...]) -> tuple[Content, ...]:
    right = row.item.correct
    said, expected = bin_text(row.item.response, glyphs) or "(nothing)", bin_text(row.item.expected, glyphs)
    if not right:
        said, expected = from_difference(said, expected, widths[3])
    texts = (row.skill, bin_text(prompt_gist(row.item.prompt), glyphs), said, expected)
    return (
        Content.styled("✓", "$success") if right else Content.styled("✗", "bold $error"),
        *(Content(clip(t, w)) for t, w in zip(texts, widths[1:])),
    )


def item_facts(row: EvalItemRow, glyphs: str) -> list[tuple[str, str]]:
    item = row.item
    grader = item.explanation or ("the answer matches" if item.correct else "no explanation given")
    return [  # the verdict and its why first: a long prompt would push them below the box
        ("verdict", "✓ right" if item.correct else "✗ wrong"),
        ("DIO said", bin_text(item.response, glyphs) or "(nothing)"),
        ("expected", bin_text(item.expected, glyphs)),
        ("grader", bin_text(grader, glyphs)),
        ("prompt", bin_text(item.prompt, glyphs)),
        ("skill", f"{row.skill_title} at level {row.level}"),
        ("round", f"step {row.step:,}" if row.step is not None else "unknown"),
    ]


class SkillsScreen(RealmScreen):
    SCREEN_NAME = "3 Skills"
    AUTO_FOCUS = "#skills-items"
    BINDINGS = bindings_for("skills")

    def __init__(self) -> None:
        super().__init__()
        self._items: tuple[EvalItemRow, ...] | None = None
        self._widths: tuple[int, ...] = ()

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="skills-body"):
            yield Static(id="skills-now")
            yield Static(id="skills-empty", classes="missing")
            yield Static(id="skills-rows")
        yield DataTable(id="skills-items", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#skills-items", DataTable).border_title = "Last eval, every skill · enter: the whole item"

    def on_resize(self) -> None:
        if self.last_view is not None:
            self.show_body(self.last_view)

    def _fill(self, items: tuple[EvalItemRow, ...]) -> None:
        """The table at this screen's width: columns rebuilt when it changed, rows redrawn."""
        table = self.query_one("#skills-items", DataTable)
        widths = item_widths(self.size.width or self.app.size.width)
        if (items, widths) == (self._items, self._widths):
            return
        row = table.cursor_row
        table.clear(columns=widths != self._widths)
        if widths != self._widths:
            for label, width in zip(ITEM_COLUMNS, widths):
                table.add_column(label, width=width, key=label or "verdict")
        self._items, self._widths = items, widths
        for n, item in enumerate(items):
            table.add_row(*item_cells(item, self.app.bin_glyphs, widths), key=str(n))
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))

    def show_body(self, view: RealmView) -> None:
        model = skills_model(view)
        empty = self.query_one("#skills-empty", Static)
        empty.display = model.empty is not None
        if model.empty:
            empty.update(Content.styled(model.empty, "$text-muted"))
        self.query_one("#skills-rows", Static).update(Content("\n").join(skill_row_text(r) for r in model.rows))
        self.query_one("#skills-now", Static).update(
            Content.assemble(
                ("Training on ", "$text-muted"),
                model.training_on,
                "\n",
                ("Idle quests won ", "$text-muted"),
                model.idle_quests_done,
                "\n",
                (model.mix, "$text-muted"),
            )  # fmt: skip
        )
        self._fill(model.items)

    def selected_item(self) -> EvalItemRow | None:
        table = self.query_one("#skills-items", DataTable)
        if not table.row_count or not self._items:
            return None
        return self._items[table.cursor_row]

    def action_show_item(self) -> None:
        row = self.selected_item()
        if row is None:
            self.notify("no eval item yet: the first eval round fills this table", severity="warning")
            return
        verdict = "right" if row.item.correct else "wrong"
        self.app.push_screen(
            FactSheet(f"{row.skill} L{row.level} eval item: {verdict}", item_facts(row, self.app.bin_glyphs))
        )
