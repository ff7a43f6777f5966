"""Every player action in one table: its id, key, words, screen, and why it cannot run now.

Each screen's ``BINDINGS`` (``bindings_for``), the key bar, the Help screen, the command
palette and the ``tui.keys`` remapping (realm/tui/keymap.py) all read ``ACTIONS``. An action's
``why_not`` rule is a pure function of the ``Situation``; ``disabled_reasons`` runs them all.
The app's ``check_action`` asks those reasons (a disabled binding shows dimmed in the key bar),
and picking a disabled action from the palette says why instead of doing nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from textual.binding import Binding

from realm.protocol import RealmState
from realm.tui.oracles import NO_ORACLE_HINT, OracleView

PAUSABLE = ("training", "idle", "starting", "paused")

NO_ORACLE_NODE = f"no oracle node is known: {NO_ORACLE_HINT}"
NOT_GENERATING = "DIO is not answering anything now"
STILL_ANSWERING = "DIO is still answering: ctrl+x stops the answer"
NO_ANSWER = "no answer to copy yet"
NO_TALK = "the conversation is empty"
NO_SUGGESTION = "no eval round yet: suggestions are the skills' latest eval items"
READONLY = "read-only session: no command is sent"
EXPORT_ELSEWHERE = "export copies files on the vault's host: run `realm vault export STEP DIR` there"
EMPTY_VAULT = "the vault is empty: no checkpoint yet"
EMPTY_QUEUE = "the queue is empty"
NOTHING_TO_RETRY = "no failed or skipped quest on the board"
NO_ACTIVE_QUEST = "no quest is active"
NO_SKILLS = "the trainer has announced no skills (skills.enabled: false, or still loading)"
NO_CONFIG = "the trainer has not announced its config (an older trainer?)"


@dataclass(frozen=True)
class ChatStatus:
    """The Oracle screen's chat as far as the actions care: the picked node, and the talk."""

    oracle: OracleView | None = None
    generating: bool = False
    answered: bool = False
    talked: bool = False  # the conversation has a message in it


@dataclass(frozen=True)
class Situation:
    """What the enabling rules read: the mirrored state, the link to the trainer, the chat."""

    state: RealmState
    connected: bool
    readonly: bool
    endpoint: str
    chat: ChatStatus = field(default_factory=ChatStatus)

    @property
    def control(self) -> str | None:
        """Why no request can reach the trainer now, or None."""
        if self.readonly:
            return READONLY
        if not self.connected:
            return f"trainer not reachable at {self.endpoint}"
        return None


Rule = Callable[[Situation], "str | None"]

# Keys as Textual names them, and as the Help screen and the palette show them.
_KEY_WORDS = {"question_mark": "?", "escape": "esc", "slash": "/", "plus": "+", "minus": "-", "dollar_sign": "$"}


@dataclass(frozen=True)
class RealmAction:
    id: str  # the binding id `tui.keys` rebinds, e.g. "battle.pause"
    action: str  # as bound, e.g. "show('hero')" or "toggle_pause"
    key: str  # Textual's key name
    label: str  # the key bar's word
    description: str = ""  # Help's and the palette's words; "" keeps it out of both
    group: str = ""  # the Help screen's heading
    screen: str | None = None  # the screen that binds it (a mode or a dialog); None: the app, every screen
    show: bool = True  # in the key bar
    priority: bool = False
    bound: bool = True  # False: Textual binds it (the command palette)
    why_not: Rule | None = None  # why it cannot run now, or None when it can

    @property
    def name(self) -> str:
        return self.action.split("(", 1)[0]

    @property
    def shown_key(self) -> str:
        return _KEY_WORDS.get(self.key, self.key)

    @property
    def listed(self) -> bool:
        """In the Help screen and the command palette."""
        return bool(self.description)

    def binding(self) -> Binding:
        return Binding(self.key, self.action, self.label, show=self.show, priority=self.priority, id=self.id)


# --------------------------------------------------------------------------- enabling rules


def _control(s: Situation) -> str | None:
    return s.control


def _with_control(rule: Rule) -> Rule:
    """``rule``, after the trainer can be reached at all."""
    return lambda s: s.control or rule(s)


def _pausable(s: Situation) -> str | None:
    status = s.state.battle.status
    return None if status in PAUSABLE else f"the trainer is {status}"


def _has_checkpoints(s: Situation) -> str | None:
    return None if s.state.vault.checkpoints else EMPTY_VAULT


def _has_queued(s: Situation) -> str | None:
    return None if s.state.board.queued else EMPTY_QUEUE


def _has_retryable(s: Situation) -> str | None:
    return None if any(r.outcome in ("failed", "skipped") for r in s.state.board.recent) else NOTHING_TO_RETRY


def _has_active_quest(s: Situation) -> str | None:
    return None if s.state.battle.quest is not None else NO_ACTIVE_QUEST


def _has_skills(s: Situation) -> str | None:
    return None if s.state.skills.skills else NO_SKILLS


def _has_config(s: Situation) -> str | None:
    return None if s.state.config else NO_CONFIG


def _can_send_chat(s: Situation) -> str | None:
    """Chat is allowed in a read-only session: it asks the oracle a question and changes nothing
    the realm keeps (no quest, checkpoint, config or served model), so a spectator may talk."""
    unreachable = NO_ORACLE_NODE if s.chat.oracle is None else s.chat.oracle.unreachable
    return unreachable or (STILL_ANSWERING if s.chat.generating else None)


def _generating(s: Situation) -> str | None:
    return None if s.chat.generating else NOT_GENERATING


def _answered(s: Situation) -> str | None:
    return None if s.chat.answered else NO_ANSWER


def _clearable(s: Situation) -> str | None:
    return STILL_ANSWERING if s.chat.generating else (None if s.chat.talked else NO_TALK)


def _has_suggestion(s: Situation) -> str | None:
    return None if any(skill.last_items for skill in s.state.skills.skills) else NO_SUGGESTION


def _not_readonly(s: Situation) -> str | None:
    return READONLY if s.readonly else None


def _has_oracle(s: Situation) -> str | None:
    return None if s.chat.oracle is not None else NO_ORACLE_NODE


# --------------------------------------------------------------------------- the table

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
    ("0", "notices", "Notices"),
)

ACTIONS: tuple[RealmAction, ...] = (
    # the app's own, on every screen (the key bar shows them after the screen's)
    *(
        RealmAction(f"screen.{mode}", f"show('{mode}')", key, title, f"Show the {title} screen", "Screens", show=False)
        for key, mode, title in SCREENS
    ),
    RealmAction(
        "battle.pause",
        "toggle_pause",
        "space",
        "Pause/Resume",
        "Pause or resume the battle (training)",
        "Battle",
        why_not=_with_control(_pausable),
    ),
    RealmAction(
        "vault.promote",
        "promote",
        "P",
        "Promote",
        "Promote the selected checkpoint to the oracle",
        "Vault",
        why_not=_with_control(_has_checkpoints),
    ),
    RealmAction(
        "app.shop",
        "open_shop",
        "dollar_sign",
        "Shop",
        "Spend gold: commission a quest, an extra eval round",
        "App",
        show=False,
        why_not=_with_control(_has_skills),
    ),
    RealmAction("app.help", "help", "question_mark", "Help", "Show every key", "App"),
    RealmAction("app.back", "back", "escape", "Back", "Back to the previous screen", "App", show=False),
    RealmAction(
        "app.quit", "quit", "q", "Quit", "Quit (realm tui: the trainer keeps training; realm play: it stops too)", "App"
    ),
    RealmAction(
        "app.command_palette", "command_palette", "ctrl+p", "Palette", "Search every action", "App", bound=False
    ),
    # the Vault
    RealmAction("vault.filter", "filter", "slash", "Filter", "Filter the checkpoints", "Vault", "vault"),
    RealmAction("vault.sort", "sort", "s", "Sort", "Sort by the next column", "Vault", "vault"),
    RealmAction(
        "vault.delete",
        "delete_checkpoint",
        "d",
        "Delete",
        "Delete the selected checkpoint",
        "Vault",
        "vault",
        why_not=_with_control(_has_checkpoints),
    ),
    RealmAction(
        "vault.export",
        "export_checkpoint",
        "x",
        "Export",
        "Export the selected checkpoint",
        "Vault",
        "vault",
        why_not=lambda s: s.control or EXPORT_ELSEWHERE,
        show=False,  # it only says which command to run on the vault's host: the palette and Help keep it
    ),
    RealmAction(
        "vault.detail",
        "show_checkpoint",
        "enter",
        "Detail",
        "The selected checkpoint whole: marks, scores, lineage, size, folder, sidecar",
        "Vault",
        "vault",
        show=False,  # the note above the table names it; the key bar is full at 80 columns
        priority=True,  # before the table's own enter (select the row)
    ),
    RealmAction("vault.back", "clear_or_back", "escape", "Back", screen="vault", show=False),
    # the Armory, and its dialogs
    RealmAction(
        "armory.edit",
        "edit",
        "e",
        "Edit",
        "Edit the selected config key",
        "Armory",
        "armory",
        why_not=_with_control(_has_config),
    ),
    RealmAction("armory.cancel", "cancel", "escape", "Cancel", screen="edit_value"),
    RealmAction("armory.confirm", "answer(True)", "y", "Yes, change it", screen="confirm_critical"),
    RealmAction("armory.refuse", "answer(False)", "n", "No", screen="confirm_critical"),
    RealmAction("armory.refuse_esc", "answer(False)", "escape", "Cancel", screen="confirm_critical", show=False),
    # the Quest board, and its dialogs
    RealmAction("quests.add", "add_quest", "a", "Add", "Add a quest file", "Quests", "quests", why_not=_control),
    RealmAction(
        "quests.generate",
        "generate_quest",
        "g",
        "Generate",
        "Generate a quest from a skill at a level",
        "Quests",
        "quests",
        why_not=_with_control(_has_skills),
    ),
    RealmAction(
        "quests.retry",
        "retry_quest",
        "r",
        "Retry",
        "Retry a failed quest",
        "Quests",
        "quests",
        why_not=_with_control(_has_retryable),
    ),
    RealmAction(
        "quests.remove",
        "remove_quest",
        "delete",
        "Remove",
        "Remove a queued quest",
        "Quests",
        "quests",
        why_not=_with_control(_has_queued),
    ),
    RealmAction(
        "quests.raise",
        "raise_priority",
        "plus",
        "Prio+",
        "Raise a queued quest's priority",
        "Quests",
        "quests",
        why_not=_with_control(_has_queued),
    ),
    RealmAction(
        "quests.lower",
        "lower_priority",
        "minus",
        "Prio-",
        "Lower a queued quest's priority",
        "Quests",
        "quests",
        why_not=_with_control(_has_queued),
    ),
    RealmAction(
        "quests.skip",
        "skip_quest",
        "k",
        "Skip",
        "Skip the active quest (after this step)",
        "Quests",
        "quests",
        why_not=_with_control(_has_active_quest),
    ),
    RealmAction(
        "quests.detail",
        "show_detail",
        "enter",
        "Detail",
        "Everything known about the selected quest, its full reason",
        "Quests",
        "quests",
        show=False,  # the finished list's title names it; the key bar is full at 80 columns
        priority=True,  # before the focused table's own enter (select the row)
    ),
    RealmAction(
        "quests.filter", "cycle_filter", "f", "Filter", "Show my quests, failed ones, or all", "Quests", "quests"
    ),
    RealmAction(
        "skills.detail",
        "show_item",
        "enter",
        "Detail",
        "The selected eval item whole: DIO's answer, the expected one, the grader's words",
        "Skills",
        "skills",
        priority=True,  # before the table's own enter (select the row)
    ),
    RealmAction(
        "notices.filter", "cycle_filter", "f", "Filter", "Show all notices, warnings, or errors", "Notices", "notices"
    ),
    RealmAction("detail.close", "dismiss", "escape", "Close", screen="quest_detail"),
    RealmAction("detail.enter", "dismiss", "enter", "Close", screen="quest_detail", show=False),
    RealmAction("confirm.yes", "answer(True)", "y", "Yes", screen="confirm"),
    RealmAction("confirm.no", "answer(False)", "n", "No", screen="confirm"),
    RealmAction("confirm.cancel", "answer(False)", "escape", "Cancel", screen="confirm", show=False),
    RealmAction("ask.cancel", "cancel", "escape", "Cancel", screen="ask_path"),
    RealmAction("generate.cancel", "cancel", "escape", "Cancel", screen="ask_generate"),
    RealmAction("check.queue", "queue", "enter", "Queue it", screen="quest_check", priority=True),
    RealmAction("check.cancel", "cancel", "escape", "Cancel", screen="quest_check"),
    RealmAction("shop.cancel", "cancel", "escape", "Close", screen="shop"),
    # the Oracle
    RealmAction(
        "oracle.type",
        "send_chat",
        "enter",
        "Type",
        "Send the message to DIO",
        "Oracle",
        "oracle",
        show=False,
        why_not=_can_send_chat,
    ),
    RealmAction(
        "oracle.stop",
        "stop_generation",
        "ctrl+x",
        "Stop",
        "Stop generating",
        "Oracle",
        "oracle",
        priority=True,
        why_not=_generating,
    ),
    RealmAction(
        "oracle.copy", "copy_answer", "ctrl+y", "Copy", "Copy DIO's last answer", "Oracle", "oracle", why_not=_answered
    ),
    RealmAction(
        "oracle.clear",
        "clear_chat",
        "ctrl+l",
        "Clear",
        "Clear the conversation (DIO forgets it too)",
        "Oracle",
        "oracle",
        priority=True,
        why_not=_clearable,
    ),
    RealmAction(
        "oracle.suggest",
        "try_suggestion",
        "ctrl+t",
        "Try",
        "Put a suggested prompt (a real eval item) in the message box",
        "Oracle",
        "oracle",
        priority=True,
        show=False,  # the screen itself shows the key
        why_not=_has_suggestion,
    ),
    RealmAction(
        "oracle.follow",
        "cycle_follow",
        "ctrl+f",
        "Follow",
        "Follow the latest checkpoint, the champion, or neither (tui.oracle_follow)",
        "Oracle",
        "oracle",
        priority=True,
        show=False,  # the screen itself shows the key
        why_not=_not_readonly,
    ),
    RealmAction(
        "oracle.checkpoint",
        "pick_checkpoint",
        "ctrl+o",
        "Checkpoint",
        "Pick the checkpoint to chat with",
        "Oracle",
        "oracle",
        show=False,
    ),
    RealmAction(
        "oracle.node",
        "pick_node",
        "ctrl+n",
        "Node",
        "Pick the oracle node",
        "Oracle",
        "oracle",
        show=False,
        why_not=_has_oracle,
    ),
    RealmAction("oracle.back", "leave_input_or_back", "escape", "Back", screen="oracle", show=False),
    # the 'while you were away' news
    RealmAction("away.close", "dismiss", "escape", "Close", screen="away"),
    RealmAction("away.close_enter", "dismiss", "enter", "Close", screen="away", show=False),
)

HELP_ACTIONS = tuple(a for a in ACTIONS if a.listed)


def bindings_for(screen: str | None) -> list[Binding]:
    """The ``BINDINGS`` of ``screen`` (None: the app's), in the table's order."""
    return [a.binding() for a in ACTIONS if a.screen == screen and a.bound]


def disabled_reasons(
    state: RealmState, connected: bool, readonly: bool, endpoint: str, chat: ChatStatus = ChatStatus()
) -> dict[str, str]:
    """Action name -> why it cannot run now; actions not listed can run."""
    situation = Situation(state, connected, readonly, endpoint, chat)
    return {a.name: why for a in ACTIONS if a.why_not is not None and (why := a.why_not(situation))}
