"""Help: every key, what it does, and whether it can run now (and if not, why). Also on ``?``."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from realm.game.hero import STAT_MEANINGS
from realm.game.milestones import LADDER
from realm.game.milestones import MEANINGS as MILESTONE_MEANINGS
from realm.game.shop import ITEMS
from realm.tui.actions import HELP_ACTIONS
from realm.tui.screens.base import RealmScreen
from realm.tui.view import RealmView


def help_rows(view: RealmView) -> list[tuple[str, str, str, str | None]]:
    """(group, key, description, why disabled or None), grouped in the order groups first appear;
    a key the config's ``tui.keys`` rebound shows as rebound."""
    rebound = {binding_id: keys.replace(",", "/") for binding_id, keys in view.keymap}
    groups = list(dict.fromkeys(a.group for a in HELP_ACTIONS))
    ordered = sorted(HELP_ACTIONS, key=lambda a: groups.index(a.group))
    return [(a.group, rebound.get(a.id, a.shown_key), a.description, view.why_disabled(a.name)) for a in ordered]


def help_text(view: RealmView) -> Content:
    lines: list[Content] = []
    group = None
    for row_group, key, description, why in help_rows(view):
        if row_group != group:
            group = row_group
            lines.append(Content.styled(group, "bold $accent"))
        line = Content.assemble((f"  {key:<8}", "bold"), description)
        if why:
            line = Content.assemble(line, ("  — disabled: " + why, "$text-muted"))
        lines.append(line)
    lines.append(Content.styled("Stats", "bold $accent"))
    lines += [Content.assemble((f"  {name:<8}", "bold"), meaning) for name, meaning in STAT_MEANINGS]
    lines.append(Content.styled("Milestones (the title climbs with them)", "bold $accent"))
    lines += [Content.assemble((f"  {kind:<16}", "bold"), meaning) for kind, meaning in MILESTONE_MEANINGS]
    ladder = " · ".join(f"{first} {name}" for first, name, _ in reversed(LADDER))
    lines.append(Content.styled(f"  titles: {ladder}", "$text-muted"))
    lines.append(Content.styled("Shop ($)", "bold $accent"))
    lines += [Content.assemble((f"  {i.id:<6}{i.price:>5} gold  ", "bold"), i.what) for i in ITEMS]
    lines.append(
        Content.styled(
            "Remap keys in the config's tui.keys (`realm tui --keys` lists the ids); "
            "the palette (ctrl+p) runs every action.",
            "$text-muted italic",
        )
    )
    return Content("\n").join(lines)


class HelpScreen(RealmScreen):
    SCREEN_NAME = "9 Help"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(id="help-text")

    def show_body(self, view: RealmView) -> None:
        self.query_one("#help-text", Static).update(help_text(view))
