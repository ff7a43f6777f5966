"""Help: every key, what it does, and whether it can run now (and if not, why). Also on ``?``."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content

from realm.game.hero import STAT_MEANINGS
from realm.game.milestones import LADDER
from realm.game.milestones import MEANINGS as MILESTONE_MEANINGS
from realm.game.shop import ITEMS
from realm.tui.actions import HELP_ACTIONS
from realm.tui.screens.base import RealmScreen
from realm.tui.view import RealmView
from realm.tui.widgets.hanging import HangingText


def help_rows(view: RealmView) -> list[tuple[str, str, str, str | None]]:
    """(group, key, description, why disabled or None), grouped in the order groups first appear;
    a key the config's ``tui.keys`` rebound shows as rebound."""
    rebound = {binding_id: keys.replace(",", "/") for binding_id, keys in view.keymap}
    groups = list(dict.fromkeys(a.group for a in HELP_ACTIONS))
    ordered = sorted(HELP_ACTIONS, key=lambda a: groups.index(a.group))
    return [(a.group, rebound.get(a.id, a.shown_key), a.description, view.why_disabled(a.name)) for a in ordered]


KEY_COLUMN = 10  # "  " and the key: where a description and its wrapped lines start


def key_label(key: str) -> Content:
    return Content.styled(f"  {key:<{KEY_COLUMN - 3}} ", "bold")


def help_entries(view: RealmView) -> list:
    """Headings and notes (Content), and (key, words) rows whose words wrap beside the key."""
    entries: list = []
    group = None
    for row_group, key, description, why in help_rows(view):
        if row_group != group:
            group = row_group
            entries.append(Content.styled(group, "bold $accent"))
        words = Content(description)
        if why:
            words = Content.assemble(words, ("  — disabled: " + why, "$text-muted"))
        entries.append((key_label(key), words))
    entries.append(Content.styled("Stats", "bold $accent"))
    entries += [(key_label(name), Content(meaning)) for name, meaning in STAT_MEANINGS]
    entries.append(Content.styled("Milestones (the title climbs with them)", "bold $accent"))
    entries += [
        (key_label(""), Content.assemble((kind, "bold"), "  ", meaning)) for kind, meaning in MILESTONE_MEANINGS
    ]
    ladder = " · ".join(f"{first} {name}" for first, name, _ in reversed(LADDER))
    entries.append((key_label("titles"), Content.styled(ladder, "$text-muted")))
    entries.append(Content.styled("Shop ($)", "bold $accent"))
    entries += [(key_label(i.id), Content.assemble((f"{i.price} gold  ", "bold"), i.what)) for i in ITEMS]
    entries.append(
        Content.styled(
            "Remap keys in the config's tui.keys (`realm tui --keys` lists the ids); "
            "the palette (ctrl+p) runs every action.",
            "$text-muted italic",
        )
    )
    return entries


class HelpScreen(RealmScreen):
    SCREEN_NAME = "9 Help"

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield HangingText(KEY_COLUMN, id="help-text")

    def show_body(self, view: RealmView) -> None:
        self.query_one("#help-text", HangingText).show(help_entries(view))
