"""The Armory: the trainer's running config; safe keys editable, critical keys confirmed.

``armory_model`` reads the state's config fields (the trainer announces them, marking those
HOME/overrides.yaml sets: "•override", a live change a restart keeps). ``e`` (or
enter) edits the selected key; the trainer validates the value and applies it between steps
or refuses with a reason, which comes back as a toast. A critical key (max_length, the
seed's safety rules) asks for an explicit ``y`` first; the model is read at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

from realm.protocol import ConfigField
from realm.tui.actions import bindings_for
from realm.tui.screens.base import RealmScreen, missing_panel
from realm.tui.view import RealmView

KIND_STYLE = {"safe": "$success", "critical": "bold $warning", "fixed": "$text-muted"}
KIND_WORD = {"safe": "live", "critical": "critical", "fixed": "file"}
OVERRIDE_MARK = "•override"  # the value comes from HOME/overrides.yaml, over the config file


@dataclass(frozen=True)
class ArmoryModel:
    fields: tuple[ConfigField, ...]
    missing: str | None


def armory_model(view: RealmView) -> ArmoryModel:
    fields = view.state.config
    missing = None if fields else "the trainer's config (this trainer does not announce it)"
    return ArmoryModel(fields=fields, missing=missing)


class EditValue(ModalScreen[str | None]):
    BINDINGS = bindings_for("edit_value")

    def __init__(self, field: ConfigField) -> None:
        super().__init__()
        self.field = field

    def compose(self) -> ComposeResult:
        with Vertical(id="edit-box", classes="modal-box"):
            yield Static(Content.assemble(("Set ", ""), (self.field.key, "bold $accent")))
            yield Static(Content.styled(self.field.help, "$text-muted"))
            yield Input(value=self.field.value, id="edit-value")
            yield Static(Content.styled("enter applies (the trainer validates) · esc cancels", "$text-muted"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            self.notify("a value is needed (YAML: 0.001, true, 128)", severity="warning")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmCritical(ModalScreen[bool]):
    BINDINGS = bindings_for("confirm_critical")

    def __init__(self, field: ConfigField, value: str) -> None:
        super().__init__()
        self.field, self.value = field, value

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="modal-box"):
            yield Static(Content.styled("Critical key", "bold $warning"))
            yield Static(Content(f"{self.field.key}: {self.field.value} → {self.value}"))
            yield Static(Content.styled(self.field.help, "$text-muted"))
            yield Static(Content("The safety rules protect this key. Press y to change it, n to keep it."))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ArmoryScreen(RealmScreen):
    SCREEN_NAME = "8 Armory"
    AUTO_FOCUS = "#armory-table"
    BINDINGS = bindings_for("armory")

    def __init__(self) -> None:
        super().__init__()
        self._fields: tuple[ConfigField, ...] | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(id="armory-missing", classes="missing")
        yield DataTable(id="armory-table", cursor_type="row")
        yield Static(id="armory-help")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column, width in (("key", 24), ("value", 26), ("kind", 8), ("from", 9)):
            table.add_column(column, key=column, width=width)

    def show_body(self, view: RealmView) -> None:
        model = armory_model(view)
        missing = self.query_one("#armory-missing", Static)
        missing.display = model.missing is not None
        if model.missing:
            missing.update(missing_panel(model.missing))
        if model.fields != self._fields:
            self._fields = model.fields
            table = self.query_one(DataTable)
            row = table.cursor_row
            table.clear()
            for f in model.fields:
                kind = Content.styled(KIND_WORD[f.kind], KIND_STYLE[f.kind])
                origin = Content.styled(OVERRIDE_MARK if f.overridden else "", "bold $accent")
                table.add_row(f.key, f.value, kind, origin, key=f.key)
            if model.fields:
                table.move_cursor(row=min(row, len(model.fields) - 1))
        self._show_help()

    def selected(self) -> ConfigField | None:
        table = self.query_one(DataTable)
        if not self._fields or table.cursor_row < 0 or table.cursor_row >= len(self._fields):
            return None
        return self._fields[table.cursor_row]

    def _show_help(self) -> None:
        field = self.selected()
        text = (
            Content("") if field is None else Content.assemble((f"{field.key}: ", "bold"), (field.help, "$text-muted"))
        )
        self.set_row("#armory-help", text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_help()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_edit()

    def action_edit(self) -> None:
        why = self.app.why_disabled("edit")
        if why:  # enter on a row reaches here without the binding's check
            self.notify(f"edit: {why}", severity="warning", markup=False)
            return
        field = self.selected()
        if field is None:
            return
        if field.kind == "fixed":
            self.notify(
                f"{field.key} is read at start-up: set it in the config file and restart the trainer",
                severity="warning",
                markup=False,
            )
            return
        self.app.push_screen(EditValue(field), lambda value: self._edited(field, value))

    def _edited(self, field: ConfigField, value: str | None) -> None:
        if value is None or value == field.value:
            return
        if field.kind == "critical":
            self.app.push_screen(ConfirmCritical(field, value), lambda yes: self._confirmed(field, value, yes))
        else:
            self.app.update_config(field.key, value, confirm=False)

    def _confirmed(self, field: ConfigField, value: str, yes: bool | None) -> None:
        if yes:
            self.app.update_config(field.key, value, confirm=True)
        else:
            self.notify(f"{field.key} kept at {field.value}", markup=False)
