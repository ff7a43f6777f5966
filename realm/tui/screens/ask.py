"""Small modals the screens share: a yes/no confirmation and a path prompt with completion."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Static


class Confirm(ModalScreen[bool]):
    """``y`` answers True, ``n`` or ``esc`` False."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
        Binding("escape", "answer(False)", "Cancel", show=False, id="confirm.cancel"),
    ]

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text, self.body = title, body

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static(Content.styled(self.title_text, "bold $warning"))
            yield Static(Content(self.body))
            yield Static(Content.styled("y: yes · n or esc: no", "$text-muted"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PathSuggester(Suggester):
    """Completes the last part of a path from what is on disk (the first match, sorted)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        typed = Path(value).expanduser()
        folder, stem = (typed, "") if value.endswith("/") else (typed.parent, typed.name)
        try:
            names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if p.name.startswith(stem))
        except OSError:
            return None
        names = [n for n in names if not n.startswith(".") or stem.startswith(".")]
        return value + names[0][len(stem):] if names else None


class AskPath(ModalScreen[str | None]):
    """A path box: ``enter`` answers the path, ``esc`` None; ``→`` takes the completion."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="ask.cancel")]

    def __init__(self, title: str, hint: str) -> None:
        super().__init__()
        self.title_text, self.hint = title, hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Static(Content.styled(self.title_text, "bold $accent"))
            yield Input(placeholder="path/to/quest.jsonl", suggester=PathSuggester(), id="ask-path")
            yield Static(Content.styled(self.hint, "$text-muted"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            self.notify("a path is needed", severity="warning")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
