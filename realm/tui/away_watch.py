"""'While you were away' for the app: the mark of what this player last saw, and, when a fresh
snapshot shows the trainer moved on since, its journal asked for in a worker and posted back
to the app as ``AwayNews``."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import App
from textual.message import Message

from realm.bus import StateMirror
from realm.protocol import Journal
from realm.tui.away_summary import Mark, SeenMarks
from realm.tui.trainer_requests import TrainerRequests


class AwayNews(Message):
    """The trainer's journal answered: what happened while this player was away."""

    def __init__(self, mark: Mark, journal: Journal, step_now: int) -> None:
        super().__init__()
        self.mark, self.journal, self.step_now = mark, journal, step_now


class AwayWatch:
    """``seen`` is None when the app keeps no marks (no state folder): then there is no news."""

    def __init__(
        self,
        app: App,
        mirror: StateMirror,
        requests: TrainerRequests,
        seen: SeenMarks | None,
        clock: Callable[[], float],
        away_after_s: float,
    ) -> None:
        self.app, self.mirror, self.requests, self.seen, self.clock = app, mirror, requests, seen, clock
        self.away_after_s = away_after_s  # config `tui.away_after_s`: shorter gaps are not an absence

    def catch_up(self) -> None:
        """On a fresh snapshot, before its mark is remembered: ask for the news since the last mark."""
        m = self.mirror
        previous = self.seen.previous() if self.seen else None
        if previous is None or self.clock() - previous.time < self.away_after_s:
            return  # a new game, or a reconnect after seconds: nothing to tell
        if previous.run != m.state.run or m.seq > previous.seq:
            # a read, so read-only sessions ask too
            self.app.run_worker(
                self._fetch_journal(previous, m.state.hero.steps), group="journal", exclusive=True, name="journal"
            )

    def remember(self, last_event_time: float | None, force: bool = False) -> None:
        m = self.mirror
        if self.seen is None or not m.state.run or m.snapshots == 0:
            return
        when = last_event_time if last_event_time is not None else self.clock()
        self.seen.remember(Mark(run=m.state.run, seq=m.seq, time=when, step=m.state.hero.steps), force)

    async def _fetch_journal(self, mark: Mark, step_now: int) -> None:
        reply = await self.requests.journal_since(mark)
        if reply is not None and step_now != mark.step:  # news means DIO trained
            self.app.post_message(AwayNews(mark, reply, step_now))
