"""The Textual app: a live mirror of the trainer's state, repainted on a short tick.

The bus is followed by a ``StateMirror`` in one async worker that never touches a widget.
Events may arrive at thousands a second; the app never turns them into Textual messages.
Instead a 10 Hz timer looks at the mirror, pushes the newest state into the active screen
when it changed, and drains the mirror's recent events for one-off effects (toasts,
narration, damage numbers, the level-up flash). Requests to the trainer run in workers whose
answers come back as toasts or one message each (the journal).
"""

from __future__ import annotations

import collections
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.message import Message

from realm.bus import StateMirror, request_async
from realm.config import RealmConfig
from realm.game.hero import level
from realm.game.narration import narrate
from realm.protocol import (
    Ack,
    AchievementUnlocked,
    ConfigUpdateRequest,
    Envelope,
    ErrorReply,
    Journal,
    JournalRequest,
    LogLine,
    Notice,
    PauseRequest,
    PromoteRequest,
    QuestFinished,
    QuestResult,
    Request,
    ResumeRequest,
    StepMetrics,
    TrainerStarted,
)
from realm.tui.actions import ACTIONS, ChatStatus, disabled_reasons
from realm.tui.away_summary import Mark, SeenStore, summarise
from realm.tui.palette import RealmCommands
from realm.tui.oracles import OracleLink, OracleNode
from realm.tui.screens.armory import ArmoryScreen
from realm.tui.screens.away import AwayScreen
from realm.tui.screens.base import RealmScreen
from realm.tui.screens.battle import BattleScreen
from realm.tui.screens.help import HelpScreen
from realm.tui.screens.hero import HeroScreen
from realm.tui.screens.oracle import OracleScreen
from realm.tui.screens.quests import QuestsScreen
from realm.tui.screens.skills import SkillsScreen
from realm.tui.screens.vault import VaultScreen
from realm.tui.screens.watchtower import WatchtowerScreen
from realm.tui.theme import REALM_THEME
from realm.tui.view import LinkStats, RealmView

REPAINT_S = 0.1
TRAINER_GONE_TOAST_S = 3600.0  # a trainer that died stays on screen until dismissed
REQUEST_TIMEOUT_S = 2.0
QUEST_TOASTS_PER_TICK = 3  # a burst of finished quests gets a few toasts and a count
NARRATION_LINES = 200
RATE_WINDOW = 64  # step events behind the steps/s figure (and so the ETA)
SEEN_SAVE_S = 2.0  # how often the "last seen" mark is written while events flow
HELP_TEXT = "1-9 screens · space pause/resume · P promote · / filter · ? help · q quit"


class AwayNews(Message):
    """The trainer's journal answered: what happened while this player was away."""

    def __init__(self, mark: Mark, journal: Journal, step_now: int) -> None:
        super().__init__()
        self.mark, self.journal, self.step_now = mark, journal, step_now


class RealmApp(App[None]):
    CSS_PATH = "realm.tcss"
    TITLE = "Realm of Training"
    MODES = {
        "hero": HeroScreen,
        "battle": BattleScreen,
        "skills": SkillsScreen,
        "quests": QuestsScreen,
        "vault": VaultScreen,
        "oracle": OracleScreen,
        "watchtower": WatchtowerScreen,
        "armory": ArmoryScreen,
        "help": HelpScreen,
    }
    DEFAULT_MODE = "hero"
    COMMANDS = App.COMMANDS | {RealmCommands}
    BINDINGS = [
        *(
            Binding(a.key, a.action, a.description.removeprefix("Show the ").removesuffix(" screen"),
                    show=False, id=f"screen.{a.action[6:-2]}")
            for a in ACTIONS if a.group == "Screens"
        ),
        Binding("space", "toggle_pause", "Pause/Resume", id="battle.pause"),
        Binding("P", "promote", "Promote", id="vault.promote"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("escape", "back", "Back", show=False, id="app.back"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        pub_endpoint: str,
        control_endpoint: str,
        *,
        heartbeat_s: float = 1.0,
        readonly: bool = False,
        state_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        follow_bus: bool = True,
        oracles: Sequence[OracleNode] = (),
        keymap: dict[str, str] | None = None,
        trainer: TrainerProcess | None = None,
        chat_max_new_tokens: int = 256,
        trainer_setup: Callable[..., None] | None = None,
    ) -> None:
        super().__init__()
        self.chat_max_new_tokens = chat_max_new_tokens  # config `tui.chat_max_new_tokens`
        self.trainer = trainer  # set by `realm play`, which started the trainer: its exit is news
        self.keymap = dict(keymap or {})  # binding id -> keys (config `tui.keys`), checked by the caller
        self.control_endpoint = control_endpoint
        self.readonly = readonly
        self.clock = clock
        self.follow_bus = follow_bus  # False: draw a mirror filled by the caller (snapshots, bench)
        # trainer_setup: CURVE client keys when the host registry lists the trainer's key
        self.mirror = StateMirror(pub_endpoint, control_endpoint, heartbeat_s=heartbeat_s, socket_setup=trainer_setup)
        self.seen = SeenStore(state_dir) if state_dir is not None else None
        self._shown_key: tuple | None = None  # what the active screen last drew
        self._snapshots_seen = 0
        self._level: int | None = None  # DIO's level as of the events drained so far
        self._request_in_flight = False
        self._narration: collections.deque[LogLine] = collections.deque(maxlen=NARRATION_LINES)
        self._narration_version = 0
        self._rate: collections.deque[tuple[float, int]] = collections.deque(maxlen=RATE_WINDOW)
        self._last_event_time: float | None = None
        self._mode_history: list[str] = []
        self._seen_saved_at = 0.0
        self._seen_seq = -1
        self.frames = 0  # repaints pushed into a screen (the bench reads it)
        self.oracle_links = [OracleLink(node, heartbeat_s) for node in oracles]
        self.oracle_index = 0  # the node picked on the Oracle screen
        self.chat_generating = False  # set by the Oracle screen's handlers
        self.chat_answered = False
        self._reasons: dict[str, str] = disabled_reasons(self.mirror.state, False, readonly, control_endpoint, self.chat_status())

    # ------------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        self.register_theme(REALM_THEME)
        self.theme = REALM_THEME.name
        if self.keymap:
            self.set_keymap(self.keymap)
        if self.follow_bus:
            self._follow_bus()
            for link in self.oracle_links:
                if not link.node.problem:
                    self.run_worker(link.mirror.run(), group=f"oracle-{link.node.name}", name="oracle", exclusive=True)
        self.set_interval(REPAINT_S, self._tick)
        self._repaint()

    def on_unmount(self) -> None:
        self._remember_seen(force=True)

    @work(exclusive=True, group="bus", name="bus")
    async def _follow_bus(self) -> None:
        await self.mirror.run()

    def view(self) -> RealmView:
        m = self.mirror
        now = self.clock()
        heard = time.monotonic() - m.last_heard if m.last_heard else None
        lag = now - self._last_event_time if self._last_event_time is not None else None
        link = LinkStats(seq=m.seq, snapshots=m.snapshots, bad_messages=m.bad_messages, heard_s_ago=heard, lag_s=lag)
        return RealmView(
            m.state, m.connected, self.control_endpoint, self.readonly,
            now=now, link=link, steps_per_s=self._steps_per_s(),
            narration=tuple(self._narration), disabled=tuple(sorted(self._reasons.items())),
            oracles=tuple(link.view() for link in self.oracle_links), oracle_index=self.oracle_index,
        )  # fmt: skip

    def _tick(self) -> None:
        if not self.screen_stack or not self.is_running:  # shutting down: the screens are being taken apart
            return
        self._drain_events()
        self._check_trainer_process()
        self._refresh_reasons()  # before the key: the reasons are part of it
        self._remember_seen()
        if self._view_key() != self._shown_key:
            self._paint()

    def _check_trainer_process(self) -> None:
        if self.trainer is None or self.trainer.process.poll() is None:
            return
        code, log = self.trainer.process.returncode, self.trainer.log
        self.trainer = None  # said once
        self.notify(f"The trainer process exited with code {code}. Its log says why: {log}",
                    title="Trainer stopped", severity="error", timeout=TRAINER_GONE_TOAST_S, markup=False)

    def _view_key(self) -> tuple:
        m = self.mirror
        screen = self.screen
        live = int(self.clock()) if getattr(screen, "LIVE_CLOCK", False) else 0
        oracles = tuple(link.key() for link in self.oracle_links)
        return (m.seq, m.connected, m.state.run, m.snapshots, screen, self._narration_version, live,
                oracles, self.oracle_index, tuple(self._reasons.items()))

    def _repaint(self) -> None:
        """Paint now, outside the tick (a screen switch, a picked node, a chat handler)."""
        self._refresh_reasons()  # the keys must judge the state this paint shows, not the last tick's
        self._paint()

    def _paint(self) -> None:
        screen = self.screen
        if isinstance(screen, RealmScreen) and screen.is_mounted:
            key = self._view_key()
            try:
                screen.show(self.view())
            except NoMatches:  # its widgets are still being mounted, or already taken apart
                return  # not drawn: the next tick tries again
            self._shown_key = key
            self.frames += 1

    def _refresh_reasons(self) -> None:
        m = self.mirror
        reasons = disabled_reasons(m.state, m.connected, self.readonly, self.control_endpoint, self.chat_status())
        if reasons != self._reasons:
            self._reasons = reasons
            if self.screen_stack:  # App.refresh_bindings drops the call until on_mount is over
                self.screen.refresh_bindings()

    # ------------------------------------------------------------------ event effects

    def _drain_events(self) -> None:
        recent = self.mirror.recent
        if self.mirror.snapshots != self._snapshots_seen:
            self._on_fresh_snapshot()
            return
        finished: list[QuestResult] = []
        losses: list[float] = []
        new_level = self._level
        per_level = self._steps_per_level()
        while recent:
            envelope = recent.popleft()
            event = envelope.event
            self._last_event_time = envelope.time
            if isinstance(event, StepMetrics):
                new_level = max(new_level or 0, level(event.step, per_level))
                self._rate.append((envelope.time, event.step))
                losses.append(event.loss)
            elif isinstance(event, TrainerStarted):
                new_level = self._level = level(event.step, event.trainer.steps_per_level)
            elif isinstance(event, QuestFinished):
                finished.append(event.result)
            elif isinstance(event, AchievementUnlocked):
                self.notify(event.achievement.name, title="★ Achievement unlocked", markup=False)
            self._narrate(envelope, per_level)
        self._announce_quests(finished)
        if self._level is not None and new_level is not None and new_level > self._level:
            self.notify(f"DIO reached level {new_level}!", title="Level up")
            self._screen_effect("level_up", new_level)
        if losses:
            self._screen_effect("hits", losses)
        self._level = new_level

    def _on_fresh_snapshot(self) -> None:
        """What a snapshot holds is news to nobody: start counting (and narrating) from it."""
        m = self.mirror
        previous = self.seen.get(self.control_endpoint) if self.seen else None
        self._snapshots_seen = m.snapshots
        m.recent.clear()
        self._level = self._state_level()
        self._rate.clear()
        self._narration.clear()
        self._narration.extend(m.state.log[-NARRATION_LINES:])
        self._narration_version += 1
        if previous is not None and (previous.run != m.state.run or m.seq > previous.seq):
            self._fetch_journal(previous, m.state.hero.steps)  # a read, so read-only sessions ask too
        self._remember_seen(force=True)

    def _narrate(self, envelope: Envelope, per_level: int) -> None:
        event = envelope.event
        text = narrate(event, per_level)
        if text is None and isinstance(event, Notice) and event.level != "info":
            text = event.text
        if text is not None:
            severity = event.level if isinstance(event, Notice) else "info"
            if isinstance(event, QuestFinished) and event.result.outcome == "failed":
                severity = "warning"
            self._narration.append(LogLine(time=envelope.time, level=severity, text=text))
            self._narration_version += 1

    def _screen_effect(self, name: str, value) -> None:
        effect = getattr(self.screen, f"effect_{name}", None)
        if effect is not None and self.screen.is_mounted:
            effect(value)

    def _steps_per_s(self) -> float | None:
        if len(self._rate) < 2:
            return None
        (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 and s1 > s0 else None

    def _steps_per_level(self) -> int:
        trainer = self.mirror.state.trainer
        return trainer.steps_per_level if trainer else 1000

    def _state_level(self) -> int:
        return level(self.mirror.state.hero.steps, self._steps_per_level())

    def _announce_quests(self, results: list[QuestResult]) -> None:
        for result in results[:QUEST_TOASTS_PER_TICK]:
            reason = f" ({result.reason})" if result.reason else ""
            severity = "warning" if result.outcome == "failed" else "information"
            title = "Quest failed" if result.outcome == "failed" else "Quest complete" if result.outcome == "done" else "Quest"
            self.notify(f"{result.name}: {result.outcome}{reason}", title=title, severity=severity, markup=False)
        if len(results) > QUEST_TOASTS_PER_TICK:
            self.notify(f"and {len(results) - QUEST_TOASTS_PER_TICK} more quests finished", title="Quest")

    # ------------------------------------------------------------------ while you were away

    def _remember_seen(self, force: bool = False) -> None:
        m = self.mirror
        if self.seen is None or not m.state.run or m.snapshots == 0:
            return
        now = time.monotonic()
        if not force and (m.seq == self._seen_seq or now - self._seen_saved_at < SEEN_SAVE_S):
            return
        self._seen_saved_at, self._seen_seq = now, m.seq
        when = self._last_event_time if self._last_event_time is not None else self.clock()
        self.seen.put(self.control_endpoint, Mark(run=m.state.run, seq=m.seq, time=when, step=m.state.hero.steps))

    @work(group="journal", exclusive=True, name="journal")
    async def _fetch_journal(self, mark: Mark, step_now: int) -> None:
        request = JournalRequest(run=mark.run, since_seq=mark.seq, since_time=mark.time, limit=500)
        try:
            reply = await self._ask_trainer(request)
        except Exception:  # a reply we cannot read: no news is shown, the game goes on
            return
        if isinstance(reply, Journal) and (reply.entries or step_now != mark.step):
            self.post_message(AwayNews(mark, reply, step_now))

    def on_away_news(self, message: AwayNews) -> None:
        summary = summarise(message.journal, message.mark, message.step_now)
        self.push_screen(AwayScreen(summary))

    # ------------------------------------------------------------------ keys and actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return None if action in self._reasons else True

    def on_key(self, event: events.Key) -> None:
        """A key whose action is disabled says why, instead of doing nothing."""
        active = self.screen.active_bindings.get(event.key)
        if active is None or active.enabled:
            return
        reason = self._reasons.get(active.binding.action.split("(", 1)[0])
        if reason:
            self.notify(f"{active.binding.description}: {reason}", severity="warning", markup=False)

    def handle_bindings_clash(self, clashed_bindings: set[Binding], node) -> None:
        keys = ", ".join(sorted(f"{b.key} ({b.id})" for b in clashed_bindings))
        self.notify(f"tui.keys: these keys now fire something else and were dropped: {keys}",
                    severity="warning", markup=False)

    def why_disabled(self, action: str) -> str | None:
        return self._reasons.get(action)

    # ------------------------------------------------------------------ the oracle

    def oracle_link(self) -> OracleLink | None:
        return self.oracle_links[self.oracle_index] if self.oracle_links else None

    def chat_status(self) -> ChatStatus:
        link = self.oracle_link()
        return ChatStatus(link.view() if link else None, self.chat_generating, self.chat_answered)

    def select_oracle(self, index: int) -> None:
        if 0 <= index < len(self.oracle_links) and index != self.oracle_index:
            self.oracle_index = index
            self._repaint()

    def refresh_now(self) -> None:
        """Recompute the reasons and repaint at once (after a handler changed the chat)."""
        self._refresh_reasons()  # first: they are part of the view's key
        if self._view_key() != self._shown_key:
            self._paint()

    async def action_show(self, mode: str) -> None:
        if self.current_mode != mode:
            self._mode_history.append(self.current_mode)
            del self._mode_history[:-20]
        await self.switch_mode(mode)
        self._repaint()

    async def action_back(self) -> None:
        if len(self.screen_stack) > 1 and not isinstance(self.screen, RealmScreen):
            self.pop_screen()
            return
        if self._mode_history:
            await self.switch_mode(self._mode_history.pop())
            self._repaint()

    async def action_help(self) -> None:
        await self.action_show("help")

    def action_promote(self) -> None:
        """Promote the Vault's selected checkpoint; on any other screen, the champion."""
        picked = getattr(self.screen, "selected_checkpoint", lambda: None)()
        ref, name = (str(picked.step), picked.name) if picked is not None else ("champion", "the champion")
        self.send_request("promote", PromoteRequest(ref=ref), f"promote {name}")

    def send_request(self, action: str, request: Request, verb: str) -> None:
        """Send ``request`` for ``action`` unless it is disabled now (then say why)."""
        reason = self._reasons.get(action)
        if reason:
            self.notify(f"{verb}: {reason}", severity="warning", markup=False)
            return
        self._send_control(request, verb)

    def add_quest_file(self, path: Path) -> None:
        """Read a quest file here and send its content (the trainer may run on another host)."""
        from realm.cli import CommandError, quest_add_request

        try:
            request = quest_add_request(path, "normal", self._max_message_bytes())
        except CommandError as exc:
            self.notify(str(exc), title="Quest not sent", severity="error", markup=False)
            return
        self.send_request("add_quest", request, f"add {path.name}")

    def _max_message_bytes(self) -> int:
        announced = {f.key: f.value for f in self.mirror.state.config}.get("bus.max_message_bytes")
        try:
            return int(announced) if announced else RealmConfig().bus.max_message_bytes
        except ValueError:
            return RealmConfig().bus.max_message_bytes

    def action_toggle_pause(self) -> None:
        if self._request_in_flight:
            self.notify("still waiting for the trainer's answer", severity="warning")
            return
        status = self.mirror.state.battle.status
        self._request_in_flight = True
        if status == "paused":
            self._send_control(ResumeRequest(), "resume")
        else:
            self._send_control(PauseRequest(), "pause")

    def update_config(self, key: str, value: str, confirm: bool) -> None:
        """Ask the trainer to change one config key (the Armory's edit)."""
        reason = self._reasons.get("edit")
        if reason:
            self.notify(f"edit: {reason}", severity="warning", markup=False)
            return
        self._send_control(ConfigUpdateRequest(key=key, value=value, confirm=confirm), f"set {key}")

    async def _ask_trainer(self, request: Request):
        m = self.mirror
        return await request_async(m.context, self.control_endpoint, request, REQUEST_TIMEOUT_S, m.socket_setup)

    @work(group="control", name="control")
    async def _send_control(self, request: Request, verb: str) -> None:
        try:
            reply = await self._ask_trainer(request)
        finally:
            self._request_in_flight = False
        if reply is None:
            self.notify(f"trainer not reachable at {self.control_endpoint}", severity="error", markup=False)
        elif isinstance(reply, ErrorReply):
            self.notify(f"{verb} refused: {reply.message}", severity="error", markup=False)
        elif isinstance(reply, Ack):
            self.notify(reply.message or f"{verb} requested", markup=False)


@dataclass(frozen=True)
class TrainerProcess:
    """The trainer ``realm play`` started: the app says so if it exits, and where its log is."""

    process: subprocess.Popen
    log: Path


def default_state_dir() -> Path:
    """Where the app remembers what it last saw: ``$XDG_STATE_HOME/realm`` or ``~/.local/state/realm``."""
    import os

    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "realm"


def run_tui(
    pub_endpoint: str,
    control_endpoint: str,
    *,
    heartbeat_s: float = 1.0,
    readonly: bool = False,
    state_dir: Path | None = None,
    oracles: Sequence[OracleNode] = (),
    keymap: dict[str, str] | None = None,
    trainer: TrainerProcess | None = None,
    chat_max_new_tokens: int = 256,
    trainer_setup: Callable[..., None] | None = None,
) -> None:
    RealmApp(
        pub_endpoint, control_endpoint, heartbeat_s=heartbeat_s, readonly=readonly,
        state_dir=state_dir or default_state_dir(), oracles=oracles, keymap=keymap, trainer=trainer,
        chat_max_new_tokens=chat_max_new_tokens, trainer_setup=trainer_setup,
    ).run()  # fmt: skip
