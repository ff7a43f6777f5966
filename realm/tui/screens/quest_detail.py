"""Detail panes: ``FactSheet`` is a modal of labelled facts, each value wrapped under itself
(a table cuts it at its column). ``QuestDetail`` is one quest, everything the state knows about
it: a queued quest's counts, a finished one's outcome and its whole reason."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from realm.game.narration import quest_title
from realm.protocol import GAME_SOURCES, QuestInfo, QuestResult
from realm.tui.actions import bindings_for
from realm.tui.format import clock


def source_words(source: str) -> str:
    return f"{source} (the game's own quest)" if source in GAME_SOURCES else source


def _names(quest: QuestInfo | QuestResult) -> list[tuple[str, str]]:
    """The title the screens show and the file name, when they differ (the box's title is the file)."""
    title = quest_title(quest)
    return [("title", title), ("file", quest.name)] if title != quest.name else []


def queued_facts(q: QuestInfo) -> list[tuple[str, str]]:
    facts = [
        *_names(q),
        ("status", "queued"),
        ("priority", q.priority),
        ("source", source_words(q.source)),
        ("format", q.format or "not announced"),
        ("examples", f"{q.examples:,}"),
        ("held out", f"{q.held_out:,} examples for the quest's own val loss"),
        ("bad lines", f"{q.quarantined:,}"),
    ]
    if q.quarantined:
        facts.append(("quarantine", "quests/quarantine/ in the trainer's home, one record per line with its reason"))
    return facts


def finished_facts(r: QuestResult) -> list[tuple[str, str]]:
    facts = [
        *_names(r),
        ("status", r.outcome),
        ("finished", clock(r.time) if r.time else "unknown"),
        ("source", source_words(r.source)),
        ("steps", f"{r.steps:,}"),
    ]
    if r.examples_trained:
        facts.append(("trained", f"{r.examples_trained:,} rows (every pass counted)"))
    if r.val_loss_start is not None and r.val_loss_end is not None:
        change = r.val_loss_end - r.val_loss_start
        facts.append(("quest val", f"{r.val_loss_start:.4f} before → {r.val_loss_end:.4f} after ({change:+.4f})"))
    return [*facts, ("reason", r.reason or "none given")]


def facts_of(quest: QuestInfo | QuestResult) -> list[tuple[str, str]]:
    return queued_facts(quest) if isinstance(quest, QuestInfo) else finished_facts(quest)


class FactSheet(ModalScreen[None]):
    """Labelled facts in a bordered box; esc or enter closes it (the ``quest_detail`` keys)."""

    BINDINGS = bindings_for("quest_detail")

    def __init__(self, title: str, facts: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.facts = facts

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="quest-detail-box"):
            for label, value in self.facts:
                with Horizontal(classes="quest-fact"):
                    yield Static(Content.styled(label, "bold"), classes="quest-fact-label")
                    yield Static(Content(value), classes="quest-fact-value")  # wraps under itself
            yield Static(Content.styled("esc closes", "$text-muted"), id="quest-detail-hint")

    def on_mount(self) -> None:
        self._title()

    def _title(self) -> None:
        self.query_one("#quest-detail-box").border_title = self.title_text

    async def show_facts(self, facts: list[tuple[str, str]]) -> None:
        """Replace the facts (e.g. when an answer from the trainer adds some)."""
        self.facts = facts
        await self.recompose()
        self._title()

    def fact(self, label: str) -> str | None:
        return next((value for name, value in self.facts if name == label), None)


class QuestDetail(FactSheet):
    def __init__(self, quest: QuestInfo | QuestResult) -> None:
        super().__init__(quest.name, facts_of(quest))
        self.quest = quest
