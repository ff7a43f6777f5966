"""The Vault: checkpoints with their ledger stats, sortable (``s``) and filterable (``/``).

``vault_model`` reads the state. ``P`` asks the trainer to promote the selected checkpoint
(the trainer resolves it and forwards it to the oracle; with no oracle its refusal comes back
as a toast), ``d`` deletes it after a confirmation (the trainer refuses the champion, the
latest and the served checkpoint). The champion is scored from the ledger on the vault's host
and is not in the bus state, so the screen points to ``realm vault list`` for it; export
copies files on that host, so it stays a CLI command.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable, Input, Static

from realm.protocol import CheckpointInfo, DeleteCheckpointRequest
from realm.tui import format as fmt
from realm.tui.screens.ask import Confirm
from realm.tui.screens.base import RealmScreen
from realm.tui.view import RealmView

COLUMNS = ("step", "name", "saved", "train", "val", "quest")
SORTS = ("step", "val", "train", "saved")  # what `s` cycles through
CHAMPION_NOTE = "P promotes the selected checkpoint · the champion board: `realm vault list`"


@dataclass(frozen=True)
class VaultModel:
    rows: tuple[CheckpointInfo, ...]
    total: int
    stats: str
    champion: str


def _sort_key(sort: str):
    if sort in ("val", "train"):
        attr = f"{sort}_loss"
        return lambda c: (getattr(c, attr) is None, getattr(c, attr) or 0.0)
    if sort == "saved":
        return lambda c: -c.time
    return lambda c: -c.step  # newest first


def vault_model(view: RealmView, filter_text: str = "", sort: str = "step") -> VaultModel:
    all_ckpts = view.state.vault.checkpoints
    needle = filter_text.strip().lower()
    rows = [c for c in all_ckpts if not needle or needle in f"{c.step} {c.name} {c.quest or ''}".lower()]
    rows.sort(key=_sort_key(sort))
    return VaultModel(rows=tuple(rows), total=len(all_ckpts), stats=ledger_stats(all_ckpts), champion=CHAMPION_NOTE)


def ledger_stats(ckpts: tuple[CheckpointInfo, ...]) -> str:
    if not ckpts:
        return "the vault is empty: DIO saves at the end of each quest and every checkpoint_every steps"
    newest = max(ckpts, key=lambda c: c.step)
    parts = [f"{len(ckpts)} checkpoint(s)", f"newest step {newest.step:,}"]
    with_val = [c for c in ckpts if c.val_loss is not None]
    if with_val:
        best = min(with_val, key=lambda c: c.val_loss)
        parts.append(f"best val {best.val_loss:.4f} @ {best.step:,}")
    return " · ".join(parts)


def row_cells(c: CheckpointInfo) -> tuple[str, ...]:
    return (str(c.step), c.name, fmt.clock(c.time), fmt.loss(c.train_loss), fmt.loss(c.val_loss), c.quest or "—")


class VaultScreen(RealmScreen):
    SCREEN_NAME = "5 Vault"
    AUTO_FOCUS = "#vault-table"
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="vault.filter"),
        Binding("s", "sort", "Sort", id="vault.sort"),
        Binding("d", "delete_checkpoint", "Delete", id="vault.delete"),
        Binding("x", "export_checkpoint", "Export", id="vault.export"),
        Binding("escape", "clear_or_back", "Back", show=False, id="vault.back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.sort = "step"
        self._rows: tuple[CheckpointInfo, ...] | None = None
        self._view: RealmView | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(id="vault-stats")
        yield Static(id="vault-champion")
        yield Input(placeholder="filter: step, name or quest (esc clears)", id="vault-filter")
        yield DataTable(id="vault-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)

    def show_body(self, view: RealmView) -> None:
        self._view = view
        model = vault_model(view, self.filter_text, self.sort)
        shown = f"  (showing {len(model.rows)} matching “{self.filter_text}”)" if self.filter_text else ""
        self.set_row("#vault-stats", Content.assemble(model.stats, (shown, "$text-muted"),
                                                       (f"  sort: {self.sort}", "$text-muted")))
        self.set_row("#vault-champion", Content.styled(model.champion, "$text-muted"))
        if model.rows != self._rows:
            self._rows = model.rows
            table = self.query_one(DataTable)
            table.clear()
            for c in model.rows:
                table.add_row(*row_cells(c), key=str(c.step))

    def _redraw(self) -> None:
        if self._view is not None:
            self.show_body(self._view)

    def action_filter(self) -> None:
        box = self.query_one("#vault-filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()

    async def action_clear_or_back(self) -> None:
        box = self.query_one("#vault-filter", Input)
        if not box.display:
            await self.app.run_action("back")
            return
        box.value = ""
        box.display = False
        self.filter_text = ""
        self.query_one(DataTable).focus()
        self._redraw()

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self._redraw()

    def selected_checkpoint(self) -> CheckpointInfo | None:
        """The highlighted row (the app's ``P`` promotes it)."""
        table = self.query_one(DataTable)
        if not table.row_count or self._rows is None:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return next((c for c in self._rows if str(c.step) == key), None)

    def action_delete_checkpoint(self) -> None:
        ckpt = self.selected_checkpoint()
        if ckpt is None:
            self.notify("no checkpoint selected", severity="warning")
            return
        self.app.push_screen(
            Confirm("Delete a checkpoint", f"Delete {ckpt.name} (step {ckpt.step:,}) from the vault? It cannot be undone."),
            lambda yes: yes and self.app.send_request("delete_checkpoint", DeleteCheckpointRequest(step=ckpt.step),
                                                      f"delete {ckpt.name}"),
        )  # fmt: skip
