"""The Vault: checkpoints with their ledger stats, sortable (``s``) and filterable (``/``).

``vault_model`` reads the state. ``P`` asks the trainer to promote the selected checkpoint
(the trainer resolves it and forwards it to the oracle; with no oracle its refusal comes back
as a toast), ``d`` deletes it after a confirmation; on the champion, the latest or the served
checkpoint ``d`` is dimmed and says why at once (the trainer keeps them). ``enter`` opens the
checkpoint's detail (realm/tui/screens/checkpoint_detail.py). The first column marks the champion
(★, the best suite score), the checkpoint the oracle serves (▶) and the latest (•); export copies
files on the vault's host, so it stays a CLI command.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import DataTable, Input, Static

from realm.game.narration import counted, suite_line
from realm.protocol import CheckpointInfo, DeleteCheckpointRequest
from realm.tui import format as fmt
from realm.tui.actions import bindings_for
from realm.tui.screens.ask import Confirm
from realm.tui.screens.base import RealmScreen
from realm.tui.screens.checkpoint_detail import CheckpointDetail
from realm.tui.view import RealmView
from realm.vault.service import kept_reason

# the name last: step and saved already say it, and at 80 columns the quest is what the row can still show
COLUMNS = ("", "step", "suite loss", "suite acc", "train", "quest val", "saved", "quest", "name")
SORTS = ("step", "suite", "train", "saved")  # what `s` cycles through
MARKS_NOTE = "★ champion ▶ served • latest · sort: {sort} · ⏎ detail · suite: held-out set"


@dataclass(frozen=True)
class VaultModel:
    rows: tuple[CheckpointInfo, ...]
    total: int
    stats: str
    champion: str
    marks: "Marks"
    empty: str | None  # when DIO saves, while the vault is empty


def _sort_key(sort: str):
    if sort == "suite":
        return lambda c: (
            c.suite is None or c.suite.loss is None,
            c.suite.loss if c.suite and c.suite.loss is not None else 0.0,
        )
    if sort == "train":
        return lambda c: (c.train_loss is None, c.train_loss or 0.0)
    if sort == "saved":
        return lambda c: -c.time
    return lambda c: -c.step  # newest first


def vault_model(view: RealmView, filter_text: str = "", sort: str = "step") -> VaultModel:
    all_ckpts = view.state.vault.checkpoints
    needle = filter_text.strip().lower()
    rows = [c for c in all_ckpts if not needle or needle in f"{c.step} {c.name} {c.quest or ''}".lower()]
    rows.sort(key=_sort_key(sort))
    marks = Marks(
        champion=view.state.vault.champion, served=served(view), latest=max((c.step for c in all_ckpts), default=None)
    )
    return VaultModel(
        rows=tuple(rows),
        total=len(all_ckpts),
        stats=ledger_stats(all_ckpts, marks.champion),
        champion=MARKS_NOTE.format(sort=sort),
        marks=marks,
        empty=None if all_ckpts else empty_vault(config_value(view, "train.checkpoint_every")),
    )


@dataclass(frozen=True)
class Marks:
    champion: int | None
    served: tuple[tuple[int, str], ...]  # (step, the oracle node serving it)
    latest: int | None

    def of(self, step: int) -> str:
        return "".join(sign for sign, _ in self.kinds(step))

    def kinds(self, step: int) -> list[tuple[str, str]]:
        """(sign, what) for each mark ``step`` has: champion, served, latest."""
        marks = (("★", "champion", step == self.champion), ("▶", "served", bool(self.nodes_serving(step))),
                 ("•", "latest", step == self.latest))  # fmt: skip
        return [(sign, what) for sign, what, marked in marks if marked]

    def nodes_serving(self, step: int) -> list[str]:
        return [node for served, node in self.served if served == step]

    def kept(self, ckpt: CheckpointInfo) -> str | None:
        """Why ``ckpt`` may not be deleted (the trainer refuses the same), or None."""
        kinds = self.kinds(ckpt.step)
        return kept_reason(ckpt.name, kinds[0][1]) if kinds else None


def served(view: RealmView) -> tuple[tuple[int, str], ...]:
    """What each oracle node the app follows serves (and an oracle's own state, when the app
    follows an oracle's bus directly)."""
    nodes = [(o.state.serving, o.name) for o in view.oracles if o.connected]
    nodes.append((view.state.oracle.serving, view.state.oracle.info.node if view.state.oracle.info else "oracle"))
    return tuple((serving.step, node) for serving, node in nodes if serving is not None)


def config_value(view: RealmView, key: str) -> str | None:
    return next((f.value for f in view.state.config if f.key == key), None)


def empty_vault(every: str | None) -> str:
    """When the trainer saves (trainer/training_loop.py): every N steps whatever the quest, at the
    end of each of the player's quests (not the game's own), and when it stops."""
    steps = counted(int(every), "step") if every and every.isdigit() else "train.checkpoint_every steps"
    return (
        f"the vault is empty: DIO saves every {steps} (idle quests too), at the end of each of your quests, and on stop"
    )


def ledger_stats(ckpts: tuple[CheckpointInfo, ...], champion: int | None = None) -> str:
    if not ckpts:
        return "no checkpoint yet"
    newest = max(ckpts, key=lambda c: c.step)
    parts = [f"{len(ckpts)} checkpoint(s)", f"newest {newest.step:,}"]
    best = next((c for c in ckpts if c.step == champion), None)
    if best is not None and best.suite is not None:
        parts.append(f"champion {best.step:,}: " + suite_line(best.suite))
    elif not any(c.suite for c in ckpts):
        parts.append("no suite scores yet")
    return " · ".join(parts)


def row_cells(c: CheckpointInfo, marks: "Marks") -> tuple[str, ...]:
    suite = c.suite
    return (
        marks.of(c.step),
        str(c.step),
        fmt.loss(suite.loss if suite else None),
        fmt.percent(suite.accuracy if suite else None),
        fmt.loss(c.train_loss),
        fmt.loss(c.val_loss),
        fmt.clock(c.time),
        c.quest or "—",
        c.name,
    )


class VaultScreen(RealmScreen):
    SCREEN_NAME = "5 Vault"
    AUTO_FOCUS = "#vault-table"
    BINDINGS = bindings_for("vault")

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self.sort = "step"
        self._rows: tuple[CheckpointInfo, ...] | None = None
        self._marks: Marks | None = None
        self._view: RealmView | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(id="vault-stats")
        yield Static(id="vault-champion")
        yield Static(id="vault-empty", classes="missing")
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
        self.set_row(
            "#vault-stats",
            Content.assemble(model.stats, (shown, "$text-muted")),
        )
        empty = self.query_one("#vault-empty", Static)
        empty.display = model.empty is not None
        if model.empty:
            empty.update(Content.styled(model.empty, "$text-muted"))
        self.set_row("#vault-champion", Content.styled(model.champion, "$text-muted"))
        if (model.rows, model.marks) != (self._rows, self._marks):
            selected = self.selected_checkpoint()  # a new save or mark must not move it: P promotes it
            self._rows, self._marks = model.rows, model.marks
            table = self.query_one(DataTable)
            table.clear()
            for c in model.rows:
                table.add_row(*row_cells(c, model.marks), key=str(c.step))
            steps = [c.step for c in model.rows]
            if selected is not None and selected.step in steps:
                table.move_cursor(row=steps.index(selected.step), animate=False)

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

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.refresh_bindings()  # `d` is dimmed on a checkpoint the trainer keeps

    def why_disabled_here(self, action: str) -> str | None:
        if action != "delete_checkpoint" or self._marks is None:
            return None
        ckpt = self.selected_checkpoint()
        return self._marks.kept(ckpt) if ckpt is not None else None

    def action_show_checkpoint(self) -> None:
        if self.focused is self.query_one("#vault-filter", Input):  # enter ends the filter's typing
            self.query_one(DataTable).focus()
            return
        ckpt = self.selected_checkpoint()
        if ckpt is None or self._view is None or self._marks is None:
            self.notify("no checkpoint selected", severity="warning")
            return
        ask = self.app.requests.ask if self.app.follow_bus else None
        self.app.push_screen(CheckpointDetail(ckpt, self._view, self._marks, ask))

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
        kept = self._marks.kept(ckpt) if self._marks else None
        if kept:
            self.notify(f"Delete: {kept}", severity="warning", markup=False)
            return
        self.app.push_screen(
            Confirm("Delete a checkpoint", f"Delete {ckpt.name} (step {ckpt.step:,}) from the vault? It cannot be undone."),
            lambda yes: yes and self.app.send_request("delete_checkpoint", DeleteCheckpointRequest(step=ckpt.step),
                                                      f"delete {ckpt.name}"),
        )  # fmt: skip
