"""Every player action: its key, its words, and, as a pure function, why it cannot run now.

The app's ``check_action`` asks ``disabled_reasons`` (a disabled binding shows dimmed in the
footer), the Help screen lists every action with its state, and the command palette offers
them all; picking a disabled one says why instead of doing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from realm.protocol import RealmState

PAUSABLE = ("training", "idle", "starting", "paused")

NEEDS_ORACLE = "needs the oracle worker, which is not on the bus yet (it lands with the oracle work)"
NO_QUEST_REQUESTS = "the trainer takes no quest requests over the bus yet (they land with the quest board work)"
NO_VAULT_REQUESTS = "the trainer takes no vault delete/export requests over the bus yet"


@dataclass(frozen=True)
class RealmAction:
    action: str  # as bound, e.g. "show('hero')" or "toggle_pause"
    key: str  # as shown to the player
    description: str
    group: str
    screen: str | None = None  # None: works on every screen

    @property
    def name(self) -> str:
        return self.action.split("(", 1)[0]


SCREENS = (
    ("1", "hero", "Hero"),
    ("2", "battle", "Battle"),
    ("3", "skills", "Skills"),
    ("4", "quests", "Quest board"),
    ("5", "vault", "Vault"),
    ("6", "oracle", "Oracle"),
    ("7", "watchtower", "Watchtower"),
    ("8", "armory", "Armory"),
    ("9", "help", "Help"),
)

ACTIONS: tuple[RealmAction, ...] = (
    *(RealmAction(f"show('{mode}')", key, f"Show the {title} screen", "Screens") for key, mode, title in SCREENS),
    RealmAction("toggle_pause", "space", "Pause or resume the battle (training)", "Battle"),
    RealmAction("promote", "P", "Promote the selected checkpoint to the oracle", "Vault"),
    RealmAction("help", "?", "Show every key", "App"),
    RealmAction("back", "esc", "Back to the previous screen", "App"),
    RealmAction("quit", "q", "Quit (the trainer keeps training)", "App"),
    RealmAction("command_palette", "ctrl+p", "Search every action", "App"),
    RealmAction("filter", "/", "Filter the checkpoints", "Vault", "vault"),
    RealmAction("sort", "s", "Sort by the next column", "Vault", "vault"),
    RealmAction("delete_checkpoint", "d", "Delete the selected checkpoint", "Vault", "vault"),
    RealmAction("export_checkpoint", "x", "Export the selected checkpoint", "Vault", "vault"),
    RealmAction("edit", "e", "Edit the selected config key", "Armory", "armory"),
    RealmAction("add_quest", "a", "Add a quest file", "Quests", "quests"),
    RealmAction("retry_quest", "r", "Retry a failed quest", "Quests", "quests"),
    RealmAction("remove_quest", "delete", "Remove a queued quest", "Quests", "quests"),
    RealmAction("raise_priority", "+", "Raise a queued quest's priority", "Quests", "quests"),
    RealmAction("send_chat", "enter", "Send the message to DIO", "Oracle", "oracle"),
    RealmAction("stop_generation", "ctrl+x", "Stop generating", "Oracle", "oracle"),
)


def _control_reason(state: RealmState, connected: bool, readonly: bool, endpoint: str) -> str | None:
    if readonly:
        return "read-only session: no command is sent"
    if not connected:
        return f"trainer not reachable at {endpoint}"
    return None


def disabled_reasons(state: RealmState, connected: bool, readonly: bool, endpoint: str) -> dict[str, str]:
    """Action name -> why it cannot run now; actions not listed can run."""
    reasons: dict[str, str] = {}
    control = _control_reason(state, connected, readonly, endpoint)
    if control:
        reasons["toggle_pause"] = control
        reasons["edit"] = control
    elif state.battle.status not in PAUSABLE:
        reasons["toggle_pause"] = f"the trainer is {state.battle.status}"
    if "edit" not in reasons and not state.config:
        reasons["edit"] = "the trainer has not announced its config (an older trainer?)"
    for name in ("promote", "send_chat", "stop_generation"):
        reasons[name] = control or NEEDS_ORACLE
    for name in ("add_quest", "retry_quest", "remove_quest", "raise_priority"):
        reasons[name] = control or NO_QUEST_REQUESTS
    for name in ("delete_checkpoint", "export_checkpoint"):
        reasons[name] = control or NO_VAULT_REQUESTS
    return reasons
