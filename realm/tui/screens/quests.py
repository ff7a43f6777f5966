"""The Quest board: the active quest, the queue by priority, and the quests done or failed.

``board_model`` reads the state. The keys send the trainer's quest requests (realm/protocol.py,
answered by trainer/quest_board.py): ``a`` adds a file (its content travels in the request, so the
trainer may be on another host), ``+``/``-`` reprioritise the selected queued quest,
``delete`` removes it, ``r`` retries the selected failed or skipped quest, ``k`` skips the
active one. ``tab`` moves between the queue and the finished list. ``enter`` opens the selected
quest's detail (its whole reason); ``f`` cycles the filter: mine (not the game's idle and
correction quests, which finish every minute or so), failed, all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import DataTable, Static

from realm.game.narration import counted, quest_title
from realm.protocol import (
    GAME_SOURCES,
    QuestInfo,
    QuestMoveRequest,
    QuestRemoveRequest,
    QuestResult,
    QuestRetryRequest,
    SkillsState,
    SkipRequest,
)
from realm.tui import format as fmt
from realm.tui.actions import bindings_for
from realm.tui.screens.ask import AskGenerate, AskPath, Confirm, QuestCheckBox
from realm.tui.screens.base import RealmScreen
from realm.tui.screens.quest_detail import QuestDetail
from realm.tui.view import RealmView

PRIORITIES = ("high", "normal", "low")
PRIORITY_RANK = {p: i for i, p in enumerate(PRIORITIES)}
PRIORITY_STYLE = {"high": "bold red", "normal": "", "low": "dim"}  # Rich styles: DataTable cells
OUTCOME_STYLE = {"done": "green", "failed": "bold red", "skipped": "yellow"}
RETRYABLE = ("failed", "skipped")
FILTERS = ("mine", "failed", "all")  # the first is the default: the player's own quests, not the game's noise


@dataclass(frozen=True)
class BoardModel:
    active: str
    queued: tuple[QuestInfo, ...]  # by priority, then queue order
    finished: tuple[QuestResult, ...]  # newest first


def mine(quest: QuestInfo | QuestResult) -> bool:
    return quest.source not in GAME_SOURCES


def filtered(model: BoardModel, by: str) -> BoardModel:
    """``mine``: no game quest in either list; ``failed``: my queue, and every failed quest."""
    if by == "all":
        return model
    queued = tuple(q for q in model.queued if mine(q))
    keep = mine if by == "mine" else (lambda r: r.outcome == "failed")
    return BoardModel(active=model.active, queued=queued, finished=tuple(r for r in model.finished if keep(r)))


def board_model(view: RealmView) -> BoardModel:
    state = view.state
    battle = state.battle
    if battle.quest is None:
        active = "none: DIO rests at camp"
    else:
        epoch = f"  epoch {battle.quest_epoch}/{battle.quest_epochs}" if battle.quest_epochs else ""
        title = quest_title(battle.quest, state.skills)
        active = f"{title}  {battle.quest_step:,}/{battle.quest_total:,} steps{epoch}  ({battle.quest.source})"
    queued = tuple(sorted(state.board.queued, key=lambda q: PRIORITY_RANK.get(q.priority, 1)))
    return BoardModel(active=active, queued=queued, finished=tuple(reversed(state.board.recent)))


def queued_cells(q: QuestInfo, skills: SkillsState | None = None) -> tuple[Text | str, ...]:
    """The quest by its title; its file name is in the detail view."""
    priority = Text(q.priority, PRIORITY_STYLE.get(q.priority, ""))
    return priority, quest_title(q, skills), f"{q.examples:,}", q.source


def finished_cells(r: QuestResult, skills: SkillsState | None = None) -> tuple[Text | str, ...]:
    why = r.reason or (counted(r.steps, "step") if r.steps else "")  # 0: ended in an earlier run (not on disk)
    outcome = Text(r.outcome, OUTCOME_STYLE.get(r.outcome, ""))
    return fmt.clock(r.time) if r.time else "", outcome, quest_title(r, skills), why


def shifted(priority: str, by: int) -> str | None:
    """The priority ``by`` steps up (-1) or down (+1), or None past either end."""
    rank = PRIORITY_RANK.get(priority, 1) + by
    return PRIORITIES[rank] if 0 <= rank < len(PRIORITIES) else None


class QuestsScreen(RealmScreen):
    SCREEN_NAME = "4 Quests"
    AUTO_FOCUS = "#quests-queued"
    BINDINGS = bindings_for("quests")

    def __init__(self) -> None:
        super().__init__()
        self._shown: tuple | None = None
        self.filter = FILTERS[0]

    def compose_body(self) -> ComposeResult:
        yield Static(id="quests-active")
        yield DataTable(id="quests-queued", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="quests-finished", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        queued = self.query_one("#quests-queued", DataTable)
        for column in ("prio", "quest", "examples", "source"):
            queued.add_column(column, key=column)
        finished = self.query_one("#quests-finished", DataTable)
        for column in ("time", "outcome", "quest", "why"):
            finished.add_column(column, key=column)

    def show_body(self, view: RealmView) -> None:
        everything = board_model(view)
        model = filtered(everything, self.filter)
        self.set_row("#quests-active", Content.assemble(("Active ", "bold"), model.active))
        if (model.queued, model.finished) == self._shown:
            return
        self._shown = (model.queued, model.finished)
        self._title("#quests-queued", "Queued (by priority)", len(everything.queued) - len(model.queued))
        self._title(
            "#quests-finished", "Done and failed · enter: detail", len(everything.finished) - len(model.finished)
        )
        skills = view.state.skills
        self._fill(self.query_one("#quests-queued", DataTable), model.queued,
                   lambda q: queued_cells(q, skills), lambda q: q.name)  # fmt: skip
        self._fill(self.query_one("#quests-finished", DataTable), model.finished,
                   lambda r: finished_cells(r, skills), lambda r: f"{r.name}@{r.time}")  # fmt: skip

    def _title(self, selector: str, words: str, hidden: int) -> None:
        table = self.query_one(selector, DataTable)
        table.border_title = f"{words} · f: {self.filter}" + (f" ({hidden} hidden)" if hidden else "")

    @staticmethod
    def _fill(table: DataTable, rows, cells, key) -> None:
        row = table.cursor_row
        table.clear()
        seen = set()
        for item in rows:
            k = key(item)
            if k in seen:  # a quest finished twice at the same time: keep the first row
                continue
            seen.add(k)
            table.add_row(*cells(item), key=k)
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))

    # ------------------------------------------------------------------ selection

    def _cursor_key(self, selector: str) -> str | None:
        table = self.query_one(selector, DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def selected_queued(self) -> QuestInfo | None:
        name = self._cursor_key("#quests-queued")
        return next((q for q in (self._shown[0] if self._shown else ()) if q.name == name), None)

    def selected_finished(self) -> QuestResult | None:
        """The highlighted finished quest, or the newest failed or skipped one when that is not retryable."""
        finished = self._shown[1] if self._shown else ()
        key = self._cursor_key("#quests-finished")
        picked = next((r for r in finished if f"{r.name}@{r.time}" == key), None)
        if picked is not None and picked.outcome in RETRYABLE:
            return picked
        return next((r for r in finished if r.outcome in RETRYABLE), None)

    # ------------------------------------------------------------------ actions

    def action_cycle_filter(self) -> None:
        self.filter = FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)]
        self._shown = None
        if self.last_view is not None:
            self.show_body(self.last_view)

    def action_show_detail(self) -> None:
        if self.focused is self.query_one("#quests-queued", DataTable):
            quest = self.selected_queued()
        else:
            finished = self._shown[1] if self._shown else ()
            key = self._cursor_key("#quests-finished")
            quest = next((r for r in finished if f"{r.name}@{r.time}" == key), None)
        if quest is None:
            self.notify("no quest selected", severity="warning")
            return
        self.app.push_screen(QuestDetail(quest))

    def action_add_quest(self) -> None:
        self.app.push_screen(
            AskPath("Add a quest file", "checked here first, then its content is sent to the trainer · "
                    "→ completes · esc cancels"),
            self._add,
        )  # fmt: skip

    def _add(self, path: str | None) -> None:
        if path:
            chosen = Path(path).expanduser()
            if not chosen.is_file():
                missing = "is a folder, not a quest file" if chosen.is_dir() else "not found"
                self.notify(f"{chosen}: {missing}; nothing queued", severity="error", markup=False)
                return
            self.app.push_screen(
                QuestCheckBox(chosen, self.app.check_quest_file), lambda epochs: self._queue(chosen, epochs)
            )

    def _queue(self, path: Path, epochs: int | None) -> None:
        if epochs is not None:
            self.app.add_quest_file(path, epochs)

    def action_generate_quest(self) -> None:
        if self.last_view is None:
            return
        skills = self.last_view.state.skills
        self.app.push_screen(AskGenerate(skills.skills, skills.active), self._generate)

    def _generate(self, request) -> None:
        if request is not None:
            self.app.send_request("generate_quest", request, f"generate {request.skill} L{request.level}")

    def action_retry_quest(self) -> None:
        result = self.selected_finished()
        if result is None:
            self.notify("no failed or skipped quest to retry", severity="warning")
            return
        self.app.send_request("retry_quest", QuestRetryRequest(name=result.name), f"retry {result.name}")

    def action_remove_quest(self) -> None:
        quest = self.selected_queued()
        if quest is None:
            return
        self.app.push_screen(
            Confirm("Remove a quest", f"Take {quest.name} off the queue? (kept in quests/removed/)"),
            lambda yes: yes and self.app.send_request("remove_quest", QuestRemoveRequest(name=quest.name),
                                                      f"remove {quest.name}"),
        )  # fmt: skip

    def action_raise_priority(self) -> None:
        self._move(-1, "raise_priority")

    def action_lower_priority(self) -> None:
        self._move(+1, "lower_priority")

    def _move(self, by: int, action: str) -> None:
        quest = self.selected_queued()
        if quest is None:
            return
        priority = shifted(quest.priority, by)
        if priority is None:
            self.notify(f"{quest.name} is already {quest.priority}", severity="warning")
            return
        self.app.send_request(
            action, QuestMoveRequest(name=quest.name, priority=priority), f"{quest.name} → {priority}"
        )

    def action_skip_quest(self) -> None:
        self.app.send_request("skip_quest", SkipRequest(), "skip")
