"""Every player action: its key, its words, and, as a pure function, why it cannot run now.

The app's ``check_action`` asks ``disabled_reasons`` (a disabled binding shows dimmed in the
footer), the Help screen lists every action with its state, and the command palette offers
them all; picking a disabled one says why instead of doing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from realm.protocol import RealmState
from realm.tui.oracles import NO_ORACLE_HINT, OracleView

PAUSABLE = ("training", "idle", "starting", "paused")

NO_ORACLE_NODE = f"no oracle node is known: {NO_ORACLE_HINT}"
NOT_GENERATING = "DIO is not answering anything now"
STILL_ANSWERING = "DIO is still answering: ctrl+x stops the answer"
NO_ANSWER = "no answer to copy yet"
EXPORT_ELSEWHERE = "export copies files on the vault's host: run `realm vault export STEP DIR` there"
EMPTY_VAULT = "the vault is empty: no checkpoint yet"
EMPTY_QUEUE = "the queue is empty"
NOTHING_TO_RETRY = "no failed or skipped quest on the board"
NO_ACTIVE_QUEST = "no quest is active"
NO_SKILLS = "the trainer has announced no skills (skills.enabled: false, or still loading)"


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
    RealmAction("generate_quest", "g", "Generate a quest from a skill at a level", "Quests", "quests"),
    RealmAction("retry_quest", "r", "Retry a failed quest", "Quests", "quests"),
    RealmAction("remove_quest", "delete", "Remove a queued quest", "Quests", "quests"),
    RealmAction("raise_priority", "+", "Raise a queued quest's priority", "Quests", "quests"),
    RealmAction("lower_priority", "-", "Lower a queued quest's priority", "Quests", "quests"),
    RealmAction("skip_quest", "k", "Skip the active quest (after this step)", "Quests", "quests"),
    RealmAction("send_chat", "enter", "Send the message to DIO", "Oracle", "oracle"),
    RealmAction("stop_generation", "ctrl+x", "Stop generating", "Oracle", "oracle"),
    RealmAction("copy_answer", "ctrl+y", "Copy DIO's last answer", "Oracle", "oracle"),
    RealmAction("pick_checkpoint", "ctrl+o", "Pick the checkpoint to chat with", "Oracle", "oracle"),
    RealmAction("pick_node", "ctrl+n", "Pick the oracle node", "Oracle", "oracle"),
)


@dataclass(frozen=True)
class ChatStatus:
    """The Oracle screen's chat as far as the actions care: the picked node, and the talk."""

    oracle: OracleView | None = None
    generating: bool = False
    answered: bool = False


def _control_reason(state: RealmState, connected: bool, readonly: bool, endpoint: str) -> str | None:
    if readonly:
        return "read-only session: no command is sent"
    if not connected:
        return f"trainer not reachable at {endpoint}"
    return None


def disabled_reasons(
    state: RealmState, connected: bool, readonly: bool, endpoint: str, chat: ChatStatus = ChatStatus()
) -> dict[str, str]:
    """Action name -> why it cannot run now; actions not listed can run.

    Chat is allowed in a read-only session: it asks the oracle a question and changes nothing
    the realm keeps (no quest, checkpoint, config or served model), so a spectator may talk.
    """
    reasons: dict[str, str] = {}
    control = _control_reason(state, connected, readonly, endpoint)
    if control:
        reasons["toggle_pause"] = control
        reasons["edit"] = control
    elif state.battle.status not in PAUSABLE:
        reasons["toggle_pause"] = f"the trainer is {state.battle.status}"
    if "edit" not in reasons and not state.config:
        reasons["edit"] = "the trainer has not announced its config (an older trainer?)"
    reasons.update(_chat_reasons(chat))
    reasons["export_checkpoint"] = control or EXPORT_ELSEWHERE
    for name, why in _state_reasons(state).items():
        reasons[name] = control or why
    for name in ("promote", "delete_checkpoint", "add_quest", "generate_quest", "retry_quest", "remove_quest",
                 "raise_priority", "lower_priority", "skip_quest"):
        if control:
            reasons[name] = control
    return reasons


def _chat_reasons(chat: ChatStatus) -> dict[str, str]:
    reasons: dict[str, str] = {}
    unreachable = NO_ORACLE_NODE if chat.oracle is None else chat.oracle.unreachable
    if unreachable:
        reasons["send_chat"] = unreachable
    elif chat.generating:
        reasons["send_chat"] = STILL_ANSWERING
    if not chat.generating:
        reasons["stop_generation"] = NOT_GENERATING
    if not chat.answered:
        reasons["copy_answer"] = NO_ANSWER
    if chat.oracle is None:
        reasons["pick_node"] = NO_ORACLE_NODE
    return reasons


def _state_reasons(state: RealmState) -> dict[str, str]:
    """What the state says cannot be done now (an empty vault, an empty queue...)."""
    reasons: dict[str, str] = {}
    if not state.vault.checkpoints:
        reasons["promote"] = reasons["delete_checkpoint"] = EMPTY_VAULT
    if not state.board.queued:
        reasons["remove_quest"] = reasons["raise_priority"] = reasons["lower_priority"] = EMPTY_QUEUE
    if not any(r.outcome in ("failed", "skipped") for r in state.board.recent):
        reasons["retry_quest"] = NOTHING_TO_RETRY
    if state.battle.quest is None:
        reasons["skip_quest"] = NO_ACTIVE_QUEST
    if not state.skills.skills:
        reasons["generate_quest"] = NO_SKILLS
    return reasons
