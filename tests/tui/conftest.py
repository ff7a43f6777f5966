"""A scripted trainer built from the real bus classes, and helpers to read the app's screen."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from realm.bus import ControlServer, Publisher
from realm.config import RealmConfig
from realm.protocol import (
    Ack,
    BattleChanged,
    ChunkRequest,
    ConfigChanged,
    ConfigUpdateRequest,
    DeleteCheckpointRequest,
    ErrorReply,
    JournalRequest,
    ManifestRequest,
    PauseRequest,
    PromoteRequest,
    QuestInfo,
    QuestStarted,
    Reply,
    Request,
    ResumeRequest,
    SnapshotRequest,
    StepMetrics,
    TrainerInfo,
    TrainerStarted,
)
from tests.oracle.conftest import oracle_factory  # noqa: F401 - the oracle fixture, for the live-oracle tests
from trainer.chronicle import Chronicle, JournaledPublisher
from trainer.live_config import ArmoryRefused, changed_keys, fields, propose

HEARTBEAT_S = 0.2
STEPS_PER_LEVEL = 100


@dataclass
class Endpoints:
    pub: str
    control: str


@dataclass
class ScriptedTrainer:
    """A Publisher plus a ControlServer whose handler pauses and resumes like the real one."""

    endpoints: Endpoints
    run: str = "r1"
    publisher: Publisher | None = None
    server: ControlServer | None = None
    requests: list[Request] = field(default_factory=list)
    journal_db: Path | None = None  # set: the real Chronicle keeps a journal and achievements
    config: RealmConfig = field(default_factory=RealmConfig)
    chronicle: Chronicle | None = None
    vault: Any = None  # a real realm.vault.service.VaultService: answers manifests, chunks and deletes

    def start(self) -> "ScriptedTrainer":
        if self.journal_db is not None:
            self.chronicle = Chronicle(self.journal_db, STEPS_PER_LEVEL)
            self.publisher = JournaledPublisher(self.endpoints.pub, run=self.run, chronicle=self.chronicle)
        else:
            self.publisher = Publisher(self.endpoints.pub, run=self.run)
        self.server = ControlServer(self.endpoints.control, self.handle, self.publisher, heartbeat_s=HEARTBEAT_S)
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None
        if self.chronicle is not None:
            self.chronicle.close()
            self.chronicle = None

    def handle(self, request: Request) -> Reply:
        self.requests.append(request)
        assert self.publisher is not None
        if isinstance(request, SnapshotRequest):
            return self.publisher.snapshot()
        if isinstance(request, PauseRequest):
            self.publisher.emit(BattleChanged(status="paused"))
            return Ack(message="paused")
        if isinstance(request, ResumeRequest):
            self.publisher.emit(BattleChanged(status="training"))
            return Ack(message="resumed")
        if isinstance(request, JournalRequest) and self.chronicle is not None:
            return self.chronicle.journal(request)
        if isinstance(request, ConfigUpdateRequest):
            return self.update_config(request)
        if isinstance(request, PromoteRequest):  # the real trainer forwards it to the oracle
            return Ack(message=f"promote {request.ref}: sent to the oracle")
        if self.vault is not None and isinstance(request, (ManifestRequest, ChunkRequest, DeleteCheckpointRequest)):
            return self.vault.handle(request)
        return ErrorReply(message=f"unsupported: {type(request).__name__}")

    def update_config(self, request: ConfigUpdateRequest) -> Reply:
        """The real trainer's validation (trainer.live_config), applied at once: there are no steps here."""
        try:
            new = propose(self.config, request.key, request.value, request.confirm)
        except ArmoryRefused as exc:
            return ErrorReply(message=str(exc))
        changed = changed_keys(self.config, new)
        self.config = new
        self.publisher.emit(ConfigChanged(config=fields(new), changed=changed))
        return Ack(message=f"{request.key} accepted")

    def announce_config(self) -> None:
        self.publisher.emit(ConfigChanged(config=fields(self.config)))

    def control_requests(self) -> list[Request]:
        return [r for r in self.requests if not isinstance(r, (SnapshotRequest, JournalRequest))]

    # -------------------------------------------------------------- scripted events

    def begin(self, quest: str = "arith-l1", total_steps: int = 400) -> None:
        assert self.publisher is not None
        info = TrainerInfo(
            model="builtin:dio-nano",
            device="cpu",
            parameters=412_000,
            pid=1,
            started=time.time(),
            steps_per_level=STEPS_PER_LEVEL,
        )
        self.publisher.emit(TrainerStarted(trainer=info, step=0))
        self.publisher.emit(QuestStarted(quest=QuestInfo(name=quest, examples=256), total_steps=total_steps))

    def steps(self, first: int, last: int, quest_total: int = 400) -> None:
        assert self.publisher is not None
        for step in range(first, last + 1):
            self.publisher.emit(step_metrics(step, quest_total))


def step_metrics(step: int, quest_total: int = 400) -> StepMetrics:
    return StepMetrics(
        step=step,
        loss=3.0 / (1 + step / 50),
        lr=3e-3,
        grad_norm=0.5,
        tokens=4096,
        tokens_per_s=12_345.0,
        examples_per_s=45.0,
        quest_step=min(step, quest_total),
        quest_total=quest_total,
    )


@pytest.fixture
def endpoints(tmp_path) -> Endpoints:
    return Endpoints(pub=f"ipc://{tmp_path}/run/pub", control=f"ipc://{tmp_path}/run/ctl")


@pytest.fixture
def trainer(endpoints) -> Iterator[ScriptedTrainer]:
    """A scripted trainer, not yet started: call ``.start()`` when the test wants it up."""
    scripted = ScriptedTrainer(endpoints)
    try:
        yield scripted
    finally:
        scripted.stop()


class SteppedClock:
    """The app's clock: the wall clock plus what the test added. A test drives the app's time
    forward (the toasts' 10 s) instead of sleeping."""

    def __init__(self) -> None:
        self.added = 0.0

    def __call__(self) -> float:
        return time.time() + self.added

    def advance(self, seconds: float) -> None:
        self.added += seconds


def text_of(widget) -> str:
    """The plain text a widget draws (our widgets render Content)."""
    rendered = widget.render()
    return getattr(rendered, "plain", str(rendered))


async def wait_for(pilot: Pilot, condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` while the app runs, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await pilot.pause(0.05)
