"""The Quest board: the active quest, the queue by priority, and the quests done or failed.

``board_model`` reads the state; the board's requests (add, retry, remove, reprioritise) are
not on the bus on this branch, so their keys show disabled with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from realm.protocol import QuestInfo, QuestResult
from realm.tui import format as fmt
from realm.tui.screens.base import RealmScreen
from realm.tui.view import RealmView

PRIORITY_RANK = {"high": 0, "normal": 1, "low": 2}
PRIORITY_STYLE = {"high": "bold $error", "normal": "", "low": "$text-muted"}
OUTCOME_STYLE = {"done": "$success", "failed": "bold $error", "skipped": "$warning"}


@dataclass(frozen=True)
class BoardModel:
    active: str
    queued: tuple[QuestInfo, ...]  # by priority, then queue order
    finished: tuple[QuestResult, ...]  # newest first


def board_model(view: RealmView) -> BoardModel:
    state = view.state
    battle = state.battle
    if battle.quest is None:
        active = "none: DIO rests at camp"
    else:
        active = f"{battle.quest.name}  {battle.quest_step:,}/{battle.quest_total:,} steps  ({battle.quest.source})"
    queued = tuple(sorted(state.board.queued, key=lambda q: PRIORITY_RANK.get(q.priority, 1)))
    return BoardModel(active=active, queued=queued, finished=tuple(reversed(state.board.recent)))


def queued_text(queued: tuple[QuestInfo, ...]) -> Content:
    if not queued:
        return Content.styled("the queue is empty (drop a .jsonl file in the inbox)", "$text-muted")
    rows = [
        Content.assemble((f"{q.priority:<6} ", PRIORITY_STYLE.get(q.priority, "")), q.name,
                         (f"  {q.examples:,} examples · {q.source}", "$text-muted"))
        for q in queued
    ]
    return Content("\n").join(rows)


def finished_text(finished: tuple[QuestResult, ...]) -> Content:
    if not finished:
        return Content.styled("no quest finished yet", "$text-muted")
    rows = []
    for r in finished:
        when = fmt.clock(r.time) + " " if r.time else ""
        reason = f"  {r.reason}" if r.reason else f"  {r.steps:,} steps"
        rows.append(Content.assemble((when, "$text-muted"), (f"{r.outcome:<7} ", OUTCOME_STYLE[r.outcome]),
                                     r.name, (reason, "$text-muted")))
    return Content("\n").join(rows)


class QuestsScreen(RealmScreen):
    SCREEN_NAME = "4 Quests"
    # Keys whose requests are not on the bus yet stay disabled (realm.tui.actions says why);
    # their action_ methods arrive with the requests.
    BINDINGS = [
        Binding("a", "add_quest", "Add", id="quests.add"),
        Binding("r", "retry_quest", "Retry", id="quests.retry"),
        Binding("delete", "remove_quest", "Remove", id="quests.remove"),
        Binding("plus", "raise_priority", "Priority+", id="quests.raise"),
    ]

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="quests-body"):
            yield Static(id="quests-active")
            yield Static(id="quests-queued", classes="panel")
            yield Static(id="quests-finished", classes="panel")

    def on_mount(self) -> None:
        self.query_one("#quests-queued").border_title = "Queued (by priority)"
        self.query_one("#quests-finished").border_title = "Done and failed"

    def show_body(self, view: RealmView) -> None:
        model = board_model(view)
        self.query_one("#quests-active", Static).update(Content.assemble(("Active ", "bold"), model.active))
        self.query_one("#quests-queued", Static).update(queued_text(model.queued))
        self.query_one("#quests-finished", Static).update(finished_text(model.finished))
