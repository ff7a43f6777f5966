"""The Textual app: a live mirror of the trainer's state, repainted on a short tick.

The bus is followed by a ``StateMirror`` in one async worker that never touches a widget.
Events may arrive at thousands a second; the app never turns them into Textual messages.
Instead a 10 Hz timer looks at the mirror, pushes the newest state into the active screen
when it changed, and drains the mirror's recent events for one-off effects (toasts).
"""

from __future__ import annotations

from textual import work
from textual.app import App
from textual.binding import Binding

from realm.bus import StateMirror, request_async
from realm.game.hero import level
from realm.protocol import (
    Ack,
    ErrorReply,
    PauseRequest,
    QuestFinished,
    QuestResult,
    Request,
    ResumeRequest,
    StepMetrics,
    TrainerStarted,
)
from realm.tui.screens.base import RealmScreen
from realm.tui.screens.battle import BattleScreen
from realm.tui.screens.hero import HeroScreen
from realm.tui.view import RealmView

REPAINT_S = 0.1
REQUEST_TIMEOUT_S = 2.0
QUEST_TOASTS_PER_TICK = 3  # a burst of finished quests gets a few toasts and a count
PAUSABLE = ("training", "idle", "starting")
HELP_TEXT = "1 Hero · 2 Battle · space pause/resume · q quit"


class RealmApp(App[None]):
    CSS_PATH = "realm.tcss"
    TITLE = "Realm of Training"
    MODES = {"hero": HeroScreen, "battle": BattleScreen}
    DEFAULT_MODE = "hero"
    BINDINGS = [
        Binding("1", "show('hero')", "Hero", id="screen.hero"),
        Binding("2", "show('battle')", "Battle", id="screen.battle"),
        Binding("space", "toggle_pause", "Pause/Resume", id="battle.pause"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self, pub_endpoint: str, control_endpoint: str, *, heartbeat_s: float = 1.0, readonly: bool = False
    ) -> None:
        super().__init__()
        self.control_endpoint = control_endpoint
        self.readonly = readonly
        self.mirror = StateMirror(pub_endpoint, control_endpoint, heartbeat_s=heartbeat_s)
        self._shown_key: tuple | None = None  # what the active screen last drew
        self._snapshots_seen = 0
        self._level: int | None = None  # DIO's level as of the events drained so far
        self._request_in_flight = False

    # ------------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        self._follow_bus()
        self.set_interval(REPAINT_S, self._tick)
        self._repaint()

    @work(exclusive=True, group="bus", name="bus")
    async def _follow_bus(self) -> None:
        await self.mirror.run()

    def view(self) -> RealmView:
        m = self.mirror
        return RealmView(m.state, m.connected, self.control_endpoint, self.readonly)

    def _tick(self) -> None:
        self._drain_events()
        if self._view_key() != self._shown_key:
            self._repaint()

    def _view_key(self) -> tuple:
        m = self.mirror
        return (m.seq, m.connected, m.state.run, m.snapshots, self.screen)

    def _repaint(self) -> None:
        screen = self.screen
        if isinstance(screen, RealmScreen) and screen.is_mounted:
            self._shown_key = self._view_key()
            screen.show(self.view())

    # ------------------------------------------------------------------ event effects

    def _drain_events(self) -> None:
        recent = self.mirror.recent
        if self.mirror.snapshots != self._snapshots_seen:
            # a fresh snapshot: what it holds is news to nobody, so start counting from it
            self._snapshots_seen = self.mirror.snapshots
            recent.clear()
            self._level = self._state_level()
            return
        finished: list[QuestResult] = []
        new_level = self._level
        while recent:
            event = recent.popleft().event
            if isinstance(event, TrainerStarted):
                new_level = self._level = level(event.step, event.trainer.steps_per_level)
            elif isinstance(event, StepMetrics):
                new_level = max(new_level or 0, level(event.step, self._steps_per_level()))
            elif isinstance(event, QuestFinished):
                finished.append(event.result)
        self._announce_quests(finished)
        if self._level is not None and new_level is not None and new_level > self._level:
            self.notify(f"DIO reached level {new_level}!", title="Level up")
        self._level = new_level

    def _steps_per_level(self) -> int:
        trainer = self.mirror.state.trainer
        return trainer.steps_per_level if trainer else 1000

    def _state_level(self) -> int:
        return level(self.mirror.state.hero.steps, self._steps_per_level())

    def _announce_quests(self, results: list[QuestResult]) -> None:
        for result in results[:QUEST_TOASTS_PER_TICK]:
            reason = f" ({result.reason})" if result.reason else ""
            severity = "warning" if result.outcome == "failed" else "information"
            self.notify(f"{result.name}: {result.outcome}{reason}", title="Quest", severity=severity, markup=False)
        if len(results) > QUEST_TOASTS_PER_TICK:
            self.notify(f"and {len(results) - QUEST_TOASTS_PER_TICK} more quests finished", title="Quest")

    # ------------------------------------------------------------------ actions

    async def action_show(self, mode: str) -> None:
        await self.switch_mode(mode)
        self._repaint()

    def action_help(self) -> None:
        self.notify(HELP_TEXT, title="Keys")

    def action_toggle_pause(self) -> None:
        if self.readonly:
            self.notify("read-only session: pause/resume is disabled", severity="warning")
            return
        if not self.mirror.connected:
            self.notify(f"trainer not reachable at {self.control_endpoint}", severity="error", markup=False)
            return
        if self._request_in_flight:
            self.notify("still waiting for the trainer's answer", severity="warning")
            return
        status = self.mirror.state.battle.status
        if status not in PAUSABLE and status != "paused":
            self.notify(f"the trainer is {status}", severity="warning")
            return
        self._request_in_flight = True
        if status == "paused":
            self._send_control(ResumeRequest(), "resume")
        else:
            self._send_control(PauseRequest(), "pause")

    @work(group="control", name="control")
    async def _send_control(self, request: Request, verb: str) -> None:
        try:
            reply = await request_async(self.mirror.context, self.control_endpoint, request, REQUEST_TIMEOUT_S)
        finally:
            self._request_in_flight = False
        if reply is None:
            self.notify(f"trainer not reachable at {self.control_endpoint}", severity="error", markup=False)
        elif isinstance(reply, ErrorReply):
            self.notify(f"{verb} refused: {reply.message}", severity="error", markup=False)
        elif isinstance(reply, Ack):
            self.notify(reply.message or f"{verb} requested", markup=False)


def run_tui(pub_endpoint: str, control_endpoint: str, *, heartbeat_s: float = 1.0, readonly: bool = False) -> None:
    RealmApp(pub_endpoint, control_endpoint, heartbeat_s=heartbeat_s, readonly=readonly).run()
