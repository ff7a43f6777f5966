"""The headless trainer: watches the queue, trains, checkpoints, and publishes every change.

One thread trains; the control server's thread answers requests by setting flags that the
training thread reads between optimizer steps. Every event goes through
``Publisher.emit``, which applies it to the trainer's state and publishes it under one lock.
The trainer never imports Textual.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

from realm.bus import ControlServer, Publisher
from realm.config import RealmConfig, endpoints
from realm.errors import RealmError
from realm.home import Home
from realm.protocol import (
    Ack,
    ErrorReply,
    BattleChanged,
    CheckpointSaved,
    Notice,
    PauseRequest,
    QuestFinished,
    QuestInfo,
    QuestQueued,
    QuestResult,
    QuestStarted,
    RealmState,
    Reply,
    Request,
    ResumeRequest,
    SnapshotRequest,
    StepMetrics,
    StopRequest,
    TrainerInfo,
    TrainerStarted,
    ValMetrics,
)
from realm.protocol import AchievementsRestored, ConfigChanged, ConfigUpdateRequest, JournalRequest
from realm.vault.checkpoints import complete_checkpoints, read_sidecar, remove_partials, write_checkpoint
from realm.vault.ledger import Ledger
from trainer.data import QuestFormatError, read_messages_jsonl
from trainer.armory import ArmoryRefused, apply_to_engine, changed_keys, fields, propose
from trainer.chronicle import Chronicle, JournaledPublisher
from trainer.idle import write_idle_quest
from trainer.queue import QuestQueue

log = logging.getLogger("realm.trainer")

POLL_S = 0.2  # how often an idle or paused trainer looks at its inbox and flags


class TrainerBusy(RealmError):
    """Another trainer already owns this data root."""


class Controls:
    """Flags set by requests and signals, read by the training thread between steps."""

    def __init__(self) -> None:
        self.pause = threading.Event()
        self.stop = threading.Event()
        self.wake = threading.Event()

    def wait(self, seconds: float) -> None:
        self.wake.wait(seconds)
        self.wake.clear()


class Daemon:
    def __init__(self, config: RealmConfig, home: Path, *, max_steps: int | None = None) -> None:
        self.config = config
        self.home = Home(home).ensure()
        self.max_steps = max_steps
        self.controls = Controls()
        self.queue = QuestQueue(self.home)
        self.run_id = uuid.uuid4().hex[:12]
        self.engine = None
        self.publisher: Publisher | None = None
        self.server: ControlServer | None = None
        self.ledger: Ledger | None = None
        self._lock_file = None
        self._start_step = 0
        self._saved_step = -1
        self.chronicle: Chronicle | None = None
        self._config_lock = threading.Lock()
        self._pending_config: RealmConfig | None = None  # accepted by a request, applied between steps

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> int:
        """Train until stopped (request, signal, or ``max_steps``); return the exit code."""
        self._take_lock()
        try:
            self._start()
            self._loop()
            return 0
        finally:
            self._shutdown()

    def _take_lock(self) -> None:
        self._lock_file = open(self.home.run / "trainer.lock", "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.seek(0)
            holder = self._lock_file.read().strip() or "unknown"
            self._lock_file.close()
            raise TrainerBusy(f"another trainer (pid {holder}) already runs on {self.home.root}") from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()

    def _start(self) -> None:
        from trainer.engine import Engine  # torch is heavy: import it once the lock is ours

        self.ledger = Ledger(self.home.db)
        removed = remove_partials(self.home.checkpoints)
        registered, missing = self.ledger.reconcile(self.home.checkpoints)
        latest = (complete_checkpoints(self.home.checkpoints) or [None])[-1]
        log.info("loading %s%s", self.config.model.name, f" from {latest.name}" if latest else "")
        self.engine = Engine(self.config, checkpoint=latest)
        self._start_step = self.engine.step
        self._saved_step = self.engine.step if latest else -1
        requeued = self.queue.requeue_active()

        pub, control = endpoints(self.config, self.home.root)
        self.chronicle = Chronicle(self.home.db, self.config.game.steps_per_level)
        self.publisher = JournaledPublisher(pub, self.run_id, RealmState(run=self.run_id), chronicle=self.chronicle)
        self.server = ControlServer(
            control,
            self._handle,
            self.publisher,
            heartbeat_s=self.config.bus.heartbeat_s,
            max_message_bytes=self.config.bus.max_message_bytes,
        ).start()
        self._install_signal_handlers()

        self.publisher.emit(
            TrainerStarted(
                trainer=TrainerInfo(
                    model=self.config.model.name,
                    device=str(self.engine.device),
                    parameters=self.engine.parameters,
                    pid=os.getpid(),
                    started=time.time(),
                    steps_per_level=self.config.game.steps_per_level,
                ),
                step=self.engine.step,
                checkpoints=tuple(self.ledger.present()),
                quests_completed=self.queue.completed_count(),
            )
        )
        self.publisher.emit(AchievementsRestored(achievements=self.chronicle.earned()))
        self.publisher.emit(ConfigChanged(config=fields(self.config)))
        for quest in self.queue.queued_infos():
            self.publisher.emit(QuestQueued(quest=quest))
        for text in _startup_notes(removed, registered, missing, requeued):
            self.publisher.emit(Notice(level="warning", text=text))
        log.info("trainer up: step %d, control at %s, events at %s", self.engine.step, control, pub)

    def _shutdown(self) -> None:
        try:
            if self.engine is not None and self.publisher is not None:
                self.publisher.emit(BattleChanged(status="stopping"))
                if self.engine.step != self._saved_step:
                    self._save_checkpoint(quest=None)
                self.publisher.emit(BattleChanged(status="stopped"))
        finally:
            if self.server:
                self.server.stop()
            if self.publisher:
                self.publisher.close()
            if self.ledger:
                self.ledger.close()
            if self.chronicle:
                self.chronicle.close()
            if self._lock_file:
                self._lock_file.close()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._request_stop())

    def _request_stop(self) -> None:
        self.controls.stop.set()
        self.controls.wake.set()

    # ------------------------------------------------------------------ control requests

    def _handle(self, request: Request) -> Reply:
        if isinstance(request, SnapshotRequest):
            return self.publisher.snapshot()
        if isinstance(request, PauseRequest):
            self.controls.pause.set()
            self.controls.wake.set()
            return Ack(message="pausing: DIO stops after the current step")
        if isinstance(request, ResumeRequest):
            self.controls.pause.clear()
            self.controls.wake.set()
            return Ack(message="resuming")
        if isinstance(request, StopRequest):
            self._request_stop()
            return Ack(message="stopping: DIO saves a checkpoint, then the trainer exits")
        if isinstance(request, JournalRequest):
            return self.chronicle.journal(request)
        if isinstance(request, ConfigUpdateRequest):
            return self._propose_config(request)
        raise ValueError(f"unsupported request {type(request).__name__}")

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while self._may_continue():
            self._intake()
            queued = self.queue.queued()
            if queued:
                priority, path = queued[0]
                self._battle(path, priority)
            elif self.config.idle.enabled:
                write_idle_quest(self.home.queued("low"), self.config.idle.examples, seed=self.engine.step)
            else:
                self._set_status("idle")
                self.controls.wait(POLL_S)

    def _may_continue(self) -> bool:
        """Block while paused; False once the trainer must stop. Runs between optimizer steps."""
        self._apply_pending_config()
        if self.max_steps is not None and self.engine.step - self._start_step >= self.max_steps:
            self.controls.stop.set()
        if self.controls.pause.is_set() and not self.controls.stop.is_set():
            status = self.publisher.state.battle.status
            self._set_status("paused")
            while self.controls.pause.is_set() and not self.controls.stop.is_set():
                self.controls.wait(POLL_S)
                self._apply_pending_config()
            self._set_status(status if status != "paused" else "training")
        return not self.controls.stop.is_set()

    # ------------------------------------------------------------------ the armory (live config)

    def _propose_config(self, request: ConfigUpdateRequest) -> Reply:
        with self._config_lock:
            base = self._pending_config or self.config
            try:
                new = propose(base, request.key, request.value, request.confirm)
            except ArmoryRefused as exc:
                return ErrorReply(message=str(exc))
            self._pending_config = new
        self.controls.wake.set()
        value = dict((f.key, f.value) for f in fields(new))[request.key]
        return Ack(message=f"{request.key} = {value} accepted: applies before the next step")

    def _apply_pending_config(self) -> None:
        with self._config_lock:
            new, self._pending_config = self._pending_config, None
        if new is None:
            return
        changed = changed_keys(self.config, new)
        self.config = new
        apply_to_engine(self.engine, new)
        if changed:
            log.info("armory: %s", ", ".join(changed))
            self.publisher.emit(ConfigChanged(config=fields(new), changed=changed))

    def _set_status(self, status: str, reason: str = "") -> None:
        if self.publisher.state.battle.status != status:
            self.publisher.emit(BattleChanged(status=status, reason=reason))

    def _intake(self) -> None:
        for path in self.queue.inbox_files():
            try:
                examples = read_messages_jsonl(path)
            except QuestFormatError as exc:
                self._fail_quest(self.queue.activate(path), str(exc))
                continue
            queued = self.queue.enqueue(path, "normal")
            self.publisher.emit(QuestQueued(quest=QuestInfo(name=queued.name, examples=len(examples))))

    def _fail_quest(self, active: Path, reason: str) -> None:
        self.queue.finish(active, "failed", reason)
        log.warning("quest %s failed: %s", active.name, reason)
        self.publisher.emit(QuestFinished(result=QuestResult(name=active.name, outcome="failed", reason=reason, time=time.time())))

    def _battle(self, path: Path, priority: str) -> None:
        active = self.queue.activate(path)
        try:
            examples = self.engine.encode(read_messages_jsonl(active))
        except QuestFormatError as exc:
            self._fail_quest(active, str(exc))
            return
        n_val = min(self.config.train.val_examples, len(examples) // 10)
        train, val = examples[n_val:], examples[:n_val]
        batches = self.engine.batches(train, order_seed=f"{self.config.train.seed}:{active.name}")
        source = "idle" if active.name.startswith("idle-") else "inbox"
        quest = QuestInfo(name=active.name, examples=len(examples), priority=priority, source=source)
        self.publisher.emit(QuestStarted(quest=quest, total_steps=len(batches)))
        for index, batch in enumerate(batches, start=1):
            if not self._may_continue():
                self.queue.enqueue(active, priority)  # not finished: back to the queue
                return
            self._train_one(batch, index, len(batches), active.name)
            if val and self.engine.step % self.config.train.val_every == 0:
                self.publisher.emit(ValMetrics(step=self.engine.step, val_loss=self.engine.evaluate(val)))
        if val:
            self.publisher.emit(ValMetrics(step=self.engine.step, val_loss=self.engine.evaluate(val)))
        if source == "inbox":
            self._save_checkpoint(quest=active.name)
        self.queue.finish(active, "done")
        result = QuestResult(name=active.name, outcome="done", steps=len(batches), time=time.time())
        self.publisher.emit(QuestFinished(result=result))

    def _train_one(self, batch, index: int, total: int, quest: str) -> None:
        result = self.engine.train_step(batch)
        seconds = max(result.seconds, 1e-9)
        self.publisher.emit(
            StepMetrics(
                step=self.engine.step,
                loss=result.loss,
                lr=result.lr,
                grad_norm=result.grad_norm,
                tokens=result.tokens,
                tokens_per_s=result.tokens / seconds,
                examples_per_s=result.examples / seconds,
                quest_step=index,
                quest_total=total,
            )
        )
        if self.engine.step % self.config.train.checkpoint_every == 0:
            self._save_checkpoint(quest=quest)

    def _save_checkpoint(self, quest: str | None) -> None:
        state = self.publisher.state
        sidecar = {
            "time": time.time(),
            "train_loss": state.battle.loss,
            "val_loss": state.hero.val_loss,
            "lr": state.battle.lr,
            "quest": quest,
            "model": self.config.model.name,
        }
        folder = write_checkpoint(
            self.home.checkpoints, self.engine.step, datetime.now(), self.engine.save, sidecar
        )
        info = self.ledger.record(folder, read_sidecar(folder))
        self._saved_step = self.engine.step
        log.info("saved %s", folder.name)
        self.publisher.emit(CheckpointSaved(checkpoint=info))


def _startup_notes(removed: list[Path], registered: int, missing: int, requeued: list[Path]) -> list[str]:
    notes = [f"removed an unfinished checkpoint save: {path.name}" for path in removed]
    if registered:
        notes.append(f"ledger: registered {registered} checkpoint folder(s) it did not know")
    if missing:
        notes.append(f"ledger: {missing} checkpoint(s) are missing from disk")
    notes += [f"quest {path.name} was interrupted; it is back at the front of the queue" for path in requeued]
    return notes
