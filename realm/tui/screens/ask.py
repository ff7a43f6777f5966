"""Small modals the screens share: a yes/no confirmation, a path prompt with completion, a quest
file's offline check before it is queued, and the quest board's "generate a quest from a skill
at a level"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Select, Static

from realm.protocol import MAX_GENERATED_CHATS, QuestGenerateRequest, SkillState
from realm.quest_files import check_command, epochs_count
from realm.quests.check import QuestCheck, summary_lines
from realm.quests.formats import QuestFormatError
from realm.tui.actions import bindings_for


class Confirm(ModalScreen[bool]):
    """``y`` answers True, ``n`` or ``esc`` False."""

    BINDINGS = bindings_for("confirm")

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
        return value + names[0][len(stem) :] if names else None


class AskPath(ModalScreen[str | None]):
    """A path box: ``enter`` answers the path, ``esc`` None; ``→`` takes the completion."""

    BINDINGS = bindings_for("ask_path")

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


class QuestCheckBox(ModalScreen[int | None]):
    """A quest file's offline check (``realm quest check``'s summary) before it is queued, and its
    epochs: ``enter`` queues it (answers the epochs, 0 for the trainer's ``quests.epochs``), ``esc``
    cancels (None). A file the trainer would fail whole is not queued."""

    BINDINGS = bindings_for("quest_check")

    def __init__(self, path: Path, run_check: Callable[[Path], tuple[QuestCheck, str]]) -> None:
        super().__init__()
        self.path, self.run_check = path, run_check
        self.refusal: str | None = None  # None: still checking; "": fine to queue

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box", id="quest-check-box"):
            yield Static(Content.styled(f"Add {self.path.name}?", "bold $accent"))
            yield Static(Content(f"checking {self.path.name} as the trainer would…"), id="quest-check-summary")
            yield Input(id="quest-check-epochs")
            yield Static(Content.styled("enter queues it · esc cancels", "$text-muted"), id="quest-check-hint")

    def on_mount(self) -> None:
        epochs = self.query_one("#quest-check-epochs", Input)
        epochs.border_title = "epochs"
        epochs.placeholder = f"{self.app.announced_config().quests.epochs} (quests.epochs); more trains its lines again"
        self.run_worker(self._check, thread=True, exclusive=True, group="quest-check")

    def _check(self) -> None:
        try:
            check, note = self.run_check(self.path)
        except QuestFormatError as exc:
            why = (f"line {exc.line}: " if exc.line is not None else "") + exc.reason
            self.app.call_from_thread(self._show, [f"{self.path.name}: {why}"], why)
            return
        except Exception as exc:  # a fault no rule foresaw: this file is refused, the game goes on
            why = f"could not be checked ({type(exc).__name__}: {exc}); a bug in realm: please report it"
            self.app.call_from_thread(self._show, [f"{self.path.name}: {why}"], why)
            return
        lines = summary_lines(check) + ([note] if note else [])
        self.app.call_from_thread(self._show, lines, check.refused)

    def _show(self, lines: list[str], refusal: str) -> None:
        self.refusal = refusal
        self.query_one("#quest-check-summary", Static).update(Content("\n".join(lines)))
        hint = "enter queues it · esc cancels"
        if refusal:
            hint = f"the trainer would fail it: not queued · `{check_command(self.path)}` shows every line · esc"
        self.query_one("#quest-check-hint", Static).update(Content.styled(hint, "$text-muted"))

    def action_queue(self) -> None:
        if self.refusal is None:
            self.notify("still checking the file", severity="warning")
        elif self.refusal:
            self.notify(f"{self.path.name} is not queued: {self.refusal}", severity="error", markup=False)
        else:
            typed = self.query_one("#quest-check-epochs", Input).value.strip()
            try:
                self.dismiss(epochs_count(typed) if typed else 0)
            except ValueError as exc:
                self.notify(f"epochs: {exc}", severity="error", markup=False)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AskGenerate(ModalScreen[QuestGenerateRequest | None]):
    """Skill, level (the skill's own to start with), count and priority; ``enter`` sends."""

    BINDINGS = bindings_for("ask_generate")

    def __init__(self, skills: tuple[SkillState, ...], active: str = "") -> None:
        super().__init__()
        self.skills = {s.id: s for s in skills}
        self.first = active if active in self.skills else next(iter(self.skills))

    def compose(self) -> ComposeResult:
        options = [
            (f"{s.icon} {s.short_name or s.id} {s.name} (L{s.level}/{s.max_level})".strip(), s.id)
            for s in self.skills.values()
        ]
        with Vertical(classes="modal-box", id="generate-box"):
            yield Static(Content.styled("Generate a quest from a skill", "bold $accent"))
            yield Select(options, value=self.first, allow_blank=False, id="generate-skill")
            with Horizontal(id="generate-numbers"):
                yield Input(str(self.skills[self.first].level), type="integer", id="generate-level")
                yield Input("64", type="integer", id="generate-count")
                yield Select(
                    [(p, p) for p in ("high", "normal", "low")],
                    value="normal",
                    allow_blank=False,
                    id="generate-priority",
                )
            yield Static(Content.styled("level · chats · priority — enter sends · esc cancels", "$text-muted"))

    def on_mount(self) -> None:
        self.query_one("#generate-level", Input).border_title = "level"
        self.query_one("#generate-count", Input).border_title = "chats"
        self.query_one("#generate-level", Input).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "generate-skill" and event.value in self.skills:
            self.query_one("#generate-level", Input).value = str(self.skills[event.value].level)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        request = self.request()
        if isinstance(request, str):
            self.notify(request, severity="warning", markup=False)
            return
        self.dismiss(request)

    def request(self) -> QuestGenerateRequest | str:
        """What the fields ask for, or what is wrong with them."""
        skill = self.skills[str(self.query_one("#generate-skill", Select).value)]
        level, count = (self.query_one(f"#generate-{name}", Input).value.strip() for name in ("level", "count"))
        if not level.isdigit() or not 1 <= int(level) <= skill.max_level:
            return f"level: {skill.id} has levels 1..{skill.max_level}"
        if not count.isdigit() or not 1 <= int(count) <= MAX_GENERATED_CHATS:
            return f"chats: a number from 1 to {MAX_GENERATED_CHATS}"
        priority = str(self.query_one("#generate-priority", Select).value)
        return QuestGenerateRequest(skill=skill.id, level=int(level), count=int(count), priority=priority)

    def action_cancel(self) -> None:
        self.dismiss(None)
