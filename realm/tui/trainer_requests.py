"""The app's requests to the trainer's control socket: each in a worker, its answer a toast."""

from __future__ import annotations

from textual.app import App

from realm.bus import StateMirror, request_async
from realm.protocol import Ack, ErrorReply, Journal, JournalRequest, Request
from realm.tui.away_summary import Mark

REQUEST_TIMEOUT_S = 2.0


class TrainerRequests:
    def __init__(self, app: App, mirror: StateMirror, endpoint: str) -> None:
        self.app, self.mirror, self.endpoint = app, mirror, endpoint
        self.in_flight = False  # a pause or resume waits for its answer

    async def ask(self, request: Request):
        """The trainer's reply, or None when it does not answer in time."""
        m = self.mirror
        return await request_async(m.context, self.endpoint, request, REQUEST_TIMEOUT_S, m.socket_setup)

    async def journal_since(self, mark: Mark) -> Journal | None:
        """The trainer's journal since ``mark``; None when it cannot be had (the game goes on)."""
        request = JournalRequest(run=mark.run, since_seq=mark.seq, since_time=mark.time, limit=500)
        try:
            reply = await self.ask(request)
        except Exception:  # a reply we cannot read: no news is shown
            return None
        return reply if isinstance(reply, Journal) else None

    def send(self, request: Request, verb: str) -> None:
        """Send ``request`` in a worker; ``verb`` names it in the toast that gives the answer."""
        self.app.run_worker(self._send(request, verb), group="control", name="control")

    async def _send(self, request: Request, verb: str) -> None:
        try:
            reply = await self.ask(request)
        finally:
            self.in_flight = False
        if reply is None:
            self.app.notify(f"trainer not reachable at {self.endpoint}", severity="error", markup=False)
        elif isinstance(reply, ErrorReply):
            self.app.notify(f"{verb} refused: {reply.message}", severity="error", markup=False)
        elif isinstance(reply, Ack):
            self.app.notify(reply.message or f"{verb} requested", markup=False)
