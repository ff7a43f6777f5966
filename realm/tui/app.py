"""The Textual app: a live mirror of the trainer's state, repainted on a short tick.

The bus is followed by a ``StateMirror`` in one async worker that never touches a widget.
Events may arrive at thousands a second; the app never turns them into Textual messages.
Instead a 10 Hz timer looks at the mirror, pushes the newest state into the active screen
when it changed, and drains the mirror's recent events for one-off effects (toasts, damage
numbers, the level-up flash the reducer's ``level_up`` finds). Requests to the trainer run in
workers whose answers come back as toasts or one message each (the journal).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import yaml
from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches

from realm.bus import StateMirror
from realm.config import ConfigError, RealmConfig, config_from
from realm.errors import SetupError
from realm.game.hero import hero_stats
from realm.protocol import ConfigUpdateRequest, PauseRequest, PromoteRequest, Request, ResumeRequest, ShopBuyRequest
from realm.quest_files import QuestFileError, quest_add_request
from realm.quests.check import QuestCheck, check_quest
from realm.state import level_up
from realm.tui.actions import ChatStatus, bindings_for, disabled_reasons
from realm.tui.away_summary import SeenMarks, summarise
from realm.tui.away_watch import AwayNews, AwayWatch
from realm.tui.last_known import LastKnown, read_last_known
from realm.tui.news import ToastGate, drain
from realm.tui.oracle_follow import FOLLOW_WORDS, OracleFollow
from realm.tui.oracles import OracleLinks, OracleNode
from realm.tui.palette import RealmCommands
from realm.tui.screens.armory import ArmoryScreen
from realm.tui.screens.away import AwayScreen
from realm.tui.screens.base import RealmScreen
from realm.tui.screens.battle import BattleScreen
from realm.tui.screens.help import HelpScreen
from realm.tui.screens.hero import HeroScreen
from realm.tui.screens.notices import NoticesScreen
from realm.tui.screens.oracle import NO_CHAT, OracleScreen
from realm.tui.screens.quests import QuestsScreen
from realm.tui.screens.shop import ShopScreen
from realm.tui.screens.skills import SkillsScreen
from realm.tui.screens.vault import VaultScreen
from realm.tui.screens.watchtower import WatchtowerScreen
from realm.tui.theme import REALM_THEME
from realm.tui.trainer_requests import TrainerRequests
from realm.tui.view import LinkStats, RealmView, StepRate

REPAINT_S = 0.1
PREPARE_EVERY_S = 0.05  # after the first frame, the screens not shown yet are made ready one at a time
TRAINER_GONE_TOAST_S = 3600.0  # a trainer that died stays on screen until dismissed


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
        "notices": NoticesScreen,
    }
    DEFAULT_MODE = "hero"
    COMMANDS = App.COMMANDS | {RealmCommands}
    BINDINGS = bindings_for(None)

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
        away_after_s: float = 600.0,
        bin_glyphs: str = "ascii",
        oracle_follow: str = "off",
        last_known: LastKnown | None = None,
    ) -> None:
        super().__init__()
        self.follow = OracleFollow(oracle_follow)  # config `tui.oracle_follow`, ctrl+f on the Oracle
        self.bin_glyphs = bin_glyphs  # config `tui.bin_glyphs`: how BIN's circled digits are drawn
        self.chat_max_new_tokens = chat_max_new_tokens  # config `tui.chat_max_new_tokens`
        self.trainer = trainer  # set by `realm play`, which started the trainer: its exit is news
        self.keymap = dict(keymap or {})  # binding id -> keys (config `tui.keys`), checked by the caller
        self.control_endpoint = control_endpoint
        self.readonly = readonly
        self.clock = clock
        self.follow_bus = follow_bus  # False: draw a mirror filled by the caller (snapshots, bench)
        # trainer_setup: CURVE client keys when the host registry lists the trainer's key
        self.mirror = StateMirror(pub_endpoint, control_endpoint, heartbeat_s=heartbeat_s, socket_setup=trainer_setup)
        # the data root's files, shown (marked "last known") until the trainer's first snapshot replaces them
        self.last_known_at = last_known.time if last_known else None
        if last_known is not None:
            self.mirror.state = last_known.state
        self._shown_key: tuple | None = None  # what the active screen last drew
        self._snapshots_seen = 0
        self._drained = self.mirror.state  # the state as of the events drained so far
        self.requests = TrainerRequests(self, self.mirror, control_endpoint)
        seen = SeenMarks(state_dir, control_endpoint) if state_dir is not None else None
        self.away = AwayWatch(self, self.mirror, self.requests, seen, clock, away_after_s)
        self._rate = StepRate()
        self.toasts = ToastGate()  # the game's news, coalesced: one toast per 10 s of ``clock`` at most
        self._last_event_time: float | None = None
        self._mode_history: list[str] = []
        self.frames = 0  # repaints pushed into a screen (the bench reads it)
        self.oracles = OracleLinks(oracles, heartbeat_s)
        self._tokenizers: dict[str, object] = {}  # the quest check's tokenizers, by name
        self._reasons: dict[str, str] = disabled_reasons(
            self.mirror.state, False, readonly, control_endpoint, self.chat_status()
        )

    # ------------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        self.register_theme(REALM_THEME)
        self.theme = REALM_THEME.name
        if self.keymap:
            self.set_keymap(self.keymap)
        if self.follow_bus:
            self._follow_bus()
            self.oracles.follow(self)
        self.set_interval(REPAINT_S, self._tick)
        self._repaint()
        self.call_after_refresh(self._prepare_a_screen)  # the first frame first

    def _prepare_a_screen(self) -> None:
        """Compose, mount and lay out the next screen never shown, off screen, so its first visit
        costs what a return does (Textual does this on a mode's first switch: 80-110 ms a screen).
        One a timer tick, so a key pressed meanwhile waits for one screen at most."""
        waiting = [mode for mode in self.MODES if mode not in self._screen_stacks]
        if waiting and self.is_running:
            self._init_mode(waiting[0])  # Textual's own setup of a mode's screen, without switching to it
            self.set_timer(PREPARE_EVERY_S, self._prepare_a_screen)

    def on_unmount(self) -> None:
        self.away.remember(self._last_event_time, force=True)

    @work(exclusive=True, group="bus", name="bus")
    async def _follow_bus(self) -> None:
        await self.mirror.run()

    def view(self) -> RealmView:
        m = self.mirror
        now = self.clock()
        return RealmView(
            m.state, m.connected, self.control_endpoint, self.readonly,
            now=now, link=LinkStats.of(m, now, self._last_event_time), steps_per_s=self._rate.per_s(), disabled=tuple(sorted(self._reasons.items())),
            oracles=self.oracles.views(), oracle_index=self.oracles.index,
            keymap=tuple(self.keymap.items()),
            last_known_at=self.last_known_at if m.snapshots == 0 else None,
        )  # fmt: skip

    def _tick(self) -> None:
        if not self.screen_stack or not self.is_running:  # shutting down: the screens are being taken apart
            return
        self._drain_events()
        self._check_trainer_process()
        self._refresh_reasons()  # before the key: the reasons are part of it
        self.away.remember(self._last_event_time)
        self._follow_oracle()
        if self._view_key() != self._shown_key:
            self._paint()

    def _check_trainer_process(self) -> None:
        if self.trainer is not None and self.trainer.process.poll() is not None:
            self.notify(
                self.trainer.exit_note(),
                title="Trainer stopped",
                severity="error",
                timeout=TRAINER_GONE_TOAST_S,
                markup=False,
            )
            self.trainer = None  # said once

    def _view_key(self) -> tuple:
        m = self.mirror
        screen = self.screen
        live = int(self.clock()) if isinstance(screen, RealmScreen) and screen.LIVE_CLOCK else 0
        return (
            m.seq,
            m.connected,
            m.state.run,
            m.snapshots,
            screen,
            live,
            self.oracles.key(),
            tuple(self._reasons.items()),
        )

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
        if self.mirror.snapshots != self._snapshots_seen:
            self._on_fresh_snapshot()
            return
        news = drain(self.mirror.recent)
        if news.last_time is not None:
            self._last_event_time = news.last_time
        for time_, step in news.steps:
            self._rate.add(time_, step)
        for event in news.toastworthy:
            self.toasts.add(event, self.mirror.state.skills)
        screen = self.screen if isinstance(self.screen, RealmScreen) and self.screen.is_mounted else None
        reached = level_up(self._drained, self.mirror.state)
        loss_before = self._drained.battle.loss
        self._drained = self.mirror.state
        if reached is not None:
            self.toasts.add_level(reached)
            if screen is not None:
                screen.effect_level_up(reached)
        if news.losses and screen is not None:
            screen.effect_hits(news.losses, before=loss_before)
        toast = self.toasts.due(self.clock())
        if toast is not None:
            self.notify(toast.text, title=toast.title, severity=toast.severity, markup=False)

    def _on_fresh_snapshot(self) -> None:
        """What a snapshot holds is news to nobody: start counting from it."""
        m = self.mirror
        self._snapshots_seen = m.snapshots
        m.recent.clear()
        self._drained = m.state
        self._rate.clear()
        self.away.catch_up()
        self.away.remember(self._last_event_time, force=True)

    # ------------------------------------------------------------------ while you were away

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
        reason = self.why_disabled(active.binding.action.split("(", 1)[0])
        if reason:
            self.notify(f"{active.binding.description}: {reason}", severity="warning", markup=False)

    def handle_bindings_clash(self, clashed_bindings: set[Binding], node) -> None:
        keys = ", ".join(sorted(f"{b.key} ({b.id})" for b in clashed_bindings))
        self.notify(
            f"tui.keys: these keys now fire something else and were dropped: {keys}", severity="warning", markup=False
        )

    def why_disabled(self, action: str) -> str | None:
        """Why ``action`` cannot run now: the app's reasons, then the screen's for its selection."""
        screen = self.screen if self.screen_stack else None
        return self._reasons.get(action) or (
            screen.why_disabled_here(action) if isinstance(screen, RealmScreen) else None
        )

    # ------------------------------------------------------------------ the oracle

    def chat_status(self) -> ChatStatus:
        """The picked oracle node, and the Oracle screen's chat (idle before that screen first opens)."""
        link = self.oracles.picked()
        try:
            screens = self.get_screen_stack("oracle")
        except KeyError:
            screens = []
        chat = screens[0].chat if screens and isinstance(screens[0], OracleScreen) else NO_CHAT
        return ChatStatus(link.view() if link else None, chat.generating, chat.answered, bool(chat.history))

    def select_oracle(self, index: int) -> None:
        if self.oracles.pick(index):
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

    def _follow_oracle(self) -> None:
        """With `tui.oracle_follow`, ask for the newest (or the champion) checkpoint as it appears,
        through the same promote request as `P`; nothing is sent while promoting is disabled."""
        if self.follow.mode == "off" or self._reasons.get("promote"):
            return
        link = self.oracles.picked()
        serving = link.view().state.serving if link is not None else None
        due = self.follow.due(self.mirror.state, serving.step if serving else None)
        if due is not None:
            self.follow.asked = due.step
            self.requests.send(
                PromoteRequest(ref=str(due.step)), f"{FOLLOW_WORDS[self.follow.mode]}: promote {due.name}"
            )

    def cycle_follow(self) -> str:
        mode = self.follow.cycle()
        self.notify(f"the oracle {FOLLOW_WORDS[mode]}" + (" (ctrl+f again to change)" if mode != "off" else ""))
        self._follow_oracle()
        return mode

    def action_promote(self) -> None:
        """Promote the Vault's selected checkpoint; on any other screen, the champion."""
        picked = self.screen.selected_checkpoint() if isinstance(self.screen, RealmScreen) else None
        ref, name = (str(picked.step), picked.name) if picked is not None else ("champion", "the champion")
        self.send_request("promote", PromoteRequest(ref=ref), f"promote {name}")

    def action_open_shop(self) -> None:
        reason = self._reasons.get("open_shop")
        if reason:
            self.notify(f"shop: {reason}", severity="warning", markup=False)
            return
        state = self.mirror.state
        shop = ShopScreen(hero_stats(state).gold, state.skills.skills, state.skills.active)
        self.push_screen(shop, self._buy)

    def _buy(self, request: ShopBuyRequest | None) -> None:
        if request is not None:
            what = f"{request.skill} L{request.level} quest" if request.item == "quest" else f"{request.item} round"
            self.send_request("open_shop", request, f"buy a {what}")

    def send_request(self, action: str, request: Request, verb: str) -> None:
        """Send ``request`` for ``action`` unless it is disabled now (then say why)."""
        reason = self._reasons.get(action)
        if reason:
            self.notify(f"{verb}: {reason}", severity="warning", markup=False)
            return
        self.requests.send(request, verb)

    def add_quest_file(self, path: Path, epochs: int = 0) -> None:
        """Read a quest file here and send its content (the trainer may run on another host);
        ``epochs`` 0: the trainer's ``quests.epochs``."""
        try:
            request = quest_add_request(path, "normal", self._max_message_bytes(), epochs)
        except QuestFileError as exc:
            self.notify(str(exc), title="Quest not sent", severity="error", markup=False)
            return
        self.send_request("add_quest", request, f"add {path.name}")

    def check_quest_file(self, path: Path) -> tuple[QuestCheck, str]:
        """The offline check of ``path`` under the trainer's announced config, with its tokenizer
        (loaded once); a tokenizer that cannot load leaves the lengths unmeasured, said in the note.
        Runs in a worker thread: loading a tokenizer takes a while."""
        from realm.model.loading import load_tokenizer, tokenizer_name  # torch and transformers: only when asked

        config = self.announced_config()
        name = tokenizer_name(config.model)
        try:
            if name not in self._tokenizers:
                self._tokenizers[name] = load_tokenizer(name)
        except (SetupError, OSError) as exc:
            return check_quest(path, config, None), f"token lengths not measured: {exc}"
        return check_quest(path, config, self._tokenizers[name]), ""

    def announced_config(self) -> RealmConfig:
        """The config the trainer announced (defaults before it has, or for keys it did not name)."""
        raw = msgspec.to_builtins(RealmConfig())
        for field in self.mirror.state.config:
            section, _, key = field.key.partition(".")
            if isinstance(raw.get(section), dict) and key in raw[section]:
                try:
                    raw[section][key] = yaml.safe_load(field.value)
                except yaml.YAMLError:
                    continue
        try:
            return config_from(raw)
        except ConfigError:
            return RealmConfig()

    def _max_message_bytes(self) -> int:
        announced = {f.key: f.value for f in self.mirror.state.config}.get("bus.max_message_bytes")
        try:
            return int(announced) if announced else RealmConfig().bus.max_message_bytes
        except ValueError:
            return RealmConfig().bus.max_message_bytes

    def action_toggle_pause(self) -> None:
        if self.requests.in_flight:
            self.notify("still waiting for the trainer's answer", severity="warning")
            return
        self.requests.in_flight = True
        if self.mirror.state.battle.status == "paused":
            self.requests.send(ResumeRequest(), "resume")
        else:
            self.requests.send(PauseRequest(), "pause")

    def update_config(self, key: str, value: str, confirm: bool) -> None:
        """Ask the trainer to change one config key (the Armory's edit)."""
        reason = self._reasons.get("edit")
        if reason:
            self.notify(f"edit: {reason}", severity="warning", markup=False)
            return
        self.requests.send(ConfigUpdateRequest(key=key, value=value, confirm=confirm), f"set {key}")


@dataclass(frozen=True)
class TrainerProcess:
    """The trainer ``realm play`` started: the app says so if it exits, and where its log is."""

    process: subprocess.Popen
    log: Path

    def exit_note(self) -> str:
        return f"The trainer process exited with code {self.process.returncode}. Its log says why: {self.log}"


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
    away_after_s: float = 600.0,
    bin_glyphs: str = "ascii",
    oracle_follow: str = "off",
    home: Path | None = None,
    skills: tuple[str, ...] = (),
) -> None:
    """``home``: the data root whose last known state is shown until the trainer answers;
    ``skills``: the config's skill mix, read there too."""
    RealmApp(
        pub_endpoint, control_endpoint, heartbeat_s=heartbeat_s, readonly=readonly,
        state_dir=state_dir or default_state_dir(), oracles=oracles, keymap=keymap, trainer=trainer,
        chat_max_new_tokens=chat_max_new_tokens, trainer_setup=trainer_setup, away_after_s=away_after_s,
        bin_glyphs=bin_glyphs, oracle_follow=oracle_follow,
        last_known=read_last_known(home, skills) if home is not None else None,
    ).run()  # fmt: skip
