"""The headless trainer: the process that owns a data root, its bus, and its training thread.

One thread trains (``trainer.training_loop``); the control server's thread answers requests,
dispatched by type through one table, by setting flags that the training thread reads between
optimizer steps. Every event goes through ``Publisher.emit``, which applies it to the trainer's
state and publishes it under one lock. The trainer never imports Textual.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from realm.bus import ControlServer, Later, socket_file
from realm.config import RealmConfig, endpoints, profile_of
from realm.errors import SetupError
from realm.home import Home, HomeBusy, hold_lock
from realm.hosts import connect_oracle, serve_setup
from realm.protocol import (
    AchievementsRestored,
    Ack,
    BattleChanged,
    ConfigChanged,
    ConfigUpdateRequest,
    ErrorReply,
    JournalRequest,
    Notice,
    PauseRequest,
    QuestAddRequest,
    QuestGenerateRequest,
    QuestResult,
    RealmState,
    Reply,
    Request,
    ResumeRequest,
    ShopBuyRequest,
    SkipRequest,
    StopRequest,
    TrainerInfo,
    TrainerStarted,
)
from realm.state import RECENT_QUESTS
from realm.vault.checkpoints import complete_checkpoints, read_sidecar, remove_partials
from realm.vault.ledger import Ledger
from realm.vault.retention import finish_interrupted_deletes
from realm.vault.service import VAULT_REQUESTS, VaultService, served_step
from trainer import lineage
from trainer.checkpointer import AutoPromoter, Checkpointer
from trainer.chronicle import Chronicle, JournaledPublisher
from trainer.disk_watch import DiskWatch
from trainer.live_config import LiveConfig, fields
from trainer.lockstep import Solo, follow, join
from trainer.quest_board import QuestBoard
from trainer.queue import QuestQueue
from trainer.sdnotify import Notifier
from trainer.shop import Shop
from trainer.suite_scorer import SuiteScorer
from trainer.telemetry import MetricsLog, TrainerGpu, matmul_peak_flops, skill_record
from trainer.trackers import Trackers, check_trackers, run_name
from trainer.training_loop import Controls, TrainingLoop

log = logging.getLogger("realm.trainer")


class TrainerBusy(HomeBusy):
    """Another trainer already owns this data root."""


class Daemon:
    def __init__(self, config: RealmConfig, home: Path, *, max_steps: int | None = None) -> None:
        self.home = Home(home).ensure()
        self.max_steps = max_steps
        self.controls = Controls()
        self.live = LiveConfig(config, wake=self.controls.wake.set, home=self.home.root, refusal=self._refusal)
        self.queue = QuestQueue(self.home)
        self.run_id = uuid.uuid4().hex[:12]
        self.engine = None
        self.publisher: JournaledPublisher | None = None
        self.server: ControlServer | None = None
        self.ledger: Ledger | None = None
        self.chronicle: Chronicle | None = None
        self.loop: TrainingLoop | None = None
        self.disk: DiskWatch | None = None
        self.skill_runner = None  # trainer.skills.SkillRunner when skills are enabled
        self.notifier = Notifier()
        self.metrics_log = MetricsLog(None)
        self.start_step = 0
        self.resumed = False  # the engine's weights are the latest checkpoint's
        self.progress: dict[str, int] = {}  # quest name -> examples of it already trained
        self.telemetry: tuple = (0.0, None)  # (peak FLOP/s, TrainerGpu), for the MFU of each step
        self._lock_file = None
        self._vault: VaultService | None = None
        self._dispatch: dict[type, Callable] = {}
        self.shop = Shop(self)
        self.lockstep = Solo()  # under torchrun / accelerate launch: rank 0's orders to the other ranks

    @property
    def config(self) -> RealmConfig:
        return self.live.config

    def _refusal(self, new: RealmConfig) -> str:
        """Why a live change cannot run on this trainer's device (the start-up memory check), or ""."""
        return self.engine.refusal(new.train) if self.engine is not None else ""

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> int:
        """Train until stopped (request, signal, or ``max_steps``); return the exit code."""
        self.lockstep = join(self.config)
        if not self.lockstep.leads:
            return follow(self.config, self.lockstep)  # ranks > 0: train what rank 0 orders, nothing else
        self._lock_file = hold_lock(self.home.trainer_lock, "trainer", TrainerBusy)
        try:
            self._start()
            self.loop.run()
            return 0
        finally:
            self._shutdown()

    def _start(self) -> None:
        if self.config.skills.enabled:
            from trainer.skills import check_mix

            check_mix(self.config.skills)  # before the model loads: a config error stops the start
        check_trackers(self.config.train.log_with)
        notes = self._open_vault()
        latest = (complete_checkpoints(self.home.checkpoints) or [None])[-1]
        check_same_model(latest, self.config.model.name)
        self._load_engine(latest)
        requeued = self.queue.requeue_active()
        # a stop mid-quest is how a quest pauses across runs: news, not a warning
        resumed = [f"quest {path.name} was interrupted; it is back at the front of the queue" for path in requeued]
        pub, control = endpoints(self.config, self.home.root)
        secure = serve_setup(self.config, self.home.root, [pub, control])  # CURVE beyond loopback
        self.chronicle = Chronicle(
            self.home.db,
            self.config.game.steps_per_level,
            on_error=lambda exc: self.disk.note_failed_write(f"journal {self.home.db}", exc),
        )
        self.publisher = JournaledPublisher(
            pub, self.run_id, RealmState(run=self.run_id), chronicle=self.chronicle, socket_setup=secure
        )
        self.loop = self._training_loop()
        self._dispatch = self._handlers()
        self.server = ControlServer(
            control,
            self._handle,
            self.publisher,
            heartbeat_s=self.config.bus.heartbeat_s,
            max_message_bytes=self.config.bus.max_message_bytes,
            socket_setup=secure,
        ).start()
        self._install_signal_handlers()
        self._announce(latest, notes, resumed)
        log.info("trainer up: step %d, control at %s, events at %s", self.engine.step, control, pub)
        self.notifier.ready(f"step {self.engine.step}")

    def _open_vault(self) -> list[str]:
        """The ledger, with what a stop in the middle of a save or a delete left behind cleared
        up; returns what there was to say about it."""
        self.ledger = Ledger(self.home.db)
        finished = finish_interrupted_deletes(self.ledger, self.home.checkpoints)
        removed = remove_partials(self.home.checkpoints)
        registered, missing = self.ledger.reconcile(self.home.checkpoints)
        notes = [f"finished deleting {name}: retention was stopped in the middle of it" for name in finished]
        notes += [f"removed an unfinished checkpoint save: {path.name}" for path in removed]
        if registered:
            notes.append(f"ledger: registered {registered} checkpoint folder(s) it did not know")
        if missing:
            notes.append(f"ledger: {missing} checkpoint(s) are missing from disk")
        return notes

    def _load_engine(self, latest: Path | None) -> None:
        from trainer.engine import Engine  # torch is heavy: import it once the lock is ours

        log.info(
            "loading %s%s (profile %s)",
            self.config.model.name,
            f" from {latest.name}" if latest else "",
            profile_of(self.config.model),
        )
        self.lockstep.send("start", latest)
        self.engine = Engine(self.config, checkpoint=latest)
        self.start_step = self.engine.step
        self.resumed = latest is not None
        self._start_engine_extras()

    def _start_engine_extras(self) -> None:
        """Resume position, telemetry, the metrics log, the watchdog."""
        self.progress = examples_trained(self.engine.progress or {}, self.config.train)
        train = self.config.train
        peak_flops = train.peak_flops or matmul_peak_flops(self.engine.device, seconds=0.1)
        self.telemetry = (peak_flops, TrainerGpu(self.engine.device))
        trackers = None
        if train.log_with and self.engine.is_main:
            trackers = Trackers(train.log_with, self.home.logs, run_name(self.run_id), self._tracker_failed)
        if train.metrics_log and self.engine.is_main:
            path = self.home.logs / "metrics.jsonl"
            self.metrics_log = MetricsLog(
                path,
                on_error=lambda exc: self.disk.note_failed_write(f"metrics log {path}", exc),
                max_bytes=int(train.log_max_mb * 2**20),
                keep=train.log_keep,
                trackers=trackers,
            )
        elif trackers:
            self.metrics_log = MetricsLog(None, trackers=trackers)
        self.controls.on_wait = self.notifier.ping

    def _tracker_failed(self, text: str) -> None:
        if self.publisher is not None:
            self.publisher.emit(Notice(level="warning", text=text))

    def _checkpoints_in_use(self) -> tuple[int, ...]:
        """What retention keeps for now: the checkpoint an oracle eval round reads and the one the
        oracle serves (a delete refuses it too; deleted, the Oracle would name a checkpoint the
        Vault no longer has). Asked at each save where an oracle may listen: not when this home's
        oracle socket does not exist."""
        rounds = self.skill_runner.checkpoints_in_use() if self.skill_runner else ()
        _, control, _ = connect_oracle(self.config, self.home.root)
        path = socket_file(control)
        if path is not None and not path.exists():
            return rounds
        try:
            serving, _ = served_step(self.config, self.home.root)
        except Exception as exc:  # a save must not fail on the oracle: without an answer nothing more is kept
            log.warning("retention could not ask the oracle what it serves: %s", exc)
            serving = None
        return (*rounds, serving) if serving is not None else rounds

    def _training_loop(self) -> TrainingLoop:
        emit, config = self.publisher.emit, lambda: self.config
        checkpointer = Checkpointer(
            self.home.checkpoints,
            self.ledger,
            self.engine,
            emit,
            config=config,
            in_use=self._checkpoints_in_use,
        )
        self.disk = DiskWatch(checkpointer, self.controls, emit, self._flush_waiting_writes)
        scorer = SuiteScorer(
            self.home, self.ledger, self.engine, emit, self.metrics_log, config=config, skills=self._skills_in_mix
        )
        promoter = AutoPromoter(self.home.root, self.ledger, self._vault_service, emit, config=config)
        board = QuestBoard(self.config, self.home, self.queue, self.publisher)
        return TrainingLoop(self, board, checkpointer, self.disk, scorer, promoter)

    def _flush_waiting_writes(self) -> bool:
        return all([self.metrics_log.flush(), self.chronicle.flush()])  # a list: both are tried

    def _skills_in_mix(self) -> list:
        return self.skill_runner.skills_in_mix() if self.skill_runner else []

    def _announce(self, latest: Path | None, notes: list[str], resumed: list[str]) -> None:
        info = TrainerInfo(
            model=self.config.model.name,
            device=str(self.engine.device),
            parameters=self.engine.parameters,
            pid=os.getpid(),
            started=time.time(),
            steps_per_level=self.config.game.steps_per_level,
            profile=profile_of(self.config.model),
        )
        milestones, recent = self.chronicle.milestones()
        self.publisher.emit(
            TrainerStarted(
                trainer=info,
                step=self.engine.step,
                checkpoints=tuple(self.ledger.present()),
                quests_completed=self.queue.completed_count(),
                champion=self.loop.scorer.champion,
                milestones=milestones,
                recent_milestones=recent,
                gold_spent=self.chronicle.gold_spent(),
                recent_quests=self._ended_quests(),
            )
        )
        self._start_skills()
        if latest is not None:  # its weights are the engine's: score it if a kill cut its scoring short
            self.loop.scorer.score(self.engine.step)
        self.publisher.emit(AchievementsRestored(achievements=self.chronicle.earned()))
        self.publisher.emit(ConfigChanged(config=fields(self.config, self.home.root)))
        self.loop.board.announce_queue()
        if self.lockstep.world > 1:
            text = f"training on {self.lockstep.world} processes: each optimizer step is shared between them"
            self.publisher.emit(Notice(level="info", text=text))
        for text in resumed:
            self.publisher.emit(Notice(level="info", text=text))
        for text in notes:
            self.publisher.emit(Notice(level="warning", text=text))

    def _ended_quests(self) -> tuple[QuestResult, ...]:
        """The newest quests that ended, as their folders hold them, so the board can retry a quest
        that failed in an earlier run (steps and losses are not on disk: 0 and None)."""
        ended = [e for e in self.queue.listing() if e.state in ("done", "skipped", "failed")]
        ended.sort(key=lambda entry: entry.time)
        return tuple(
            QuestResult(
                name=e.name,
                outcome=e.state,
                reason=e.reason,
                time=e.time,
                source=lineage.source(self.home, e.name),
                title=lineage.title(self.home, e.name),
            )
            for e in ended[-RECENT_QUESTS:]
        )

    def _start_skills(self) -> None:
        if not self.config.skills.enabled:
            return
        from trainer.skills import SkillRunner

        runner = SkillRunner(self.config, self.home, self.engine, self._emit_skill_event, self.loop.checkpoint_for_eval)
        try:
            runner.start()
        except ValueError as exc:  # a bad skill YAML or mix: say so, train on without skills
            runner.close()
            log.error("skills disabled: %s", exc)
            self.publisher.emit(Notice(level="error", text=f"skills disabled: {exc}"))
            return
        self.skill_runner = self.loop.skill_runner = runner

    def _emit_skill_event(self, event) -> None:
        """The skill runner's events; a round's accuracies and a level-up go to the metrics log too."""
        self.publisher.emit(event)
        record = skill_record(event)
        if record is not None:
            self.metrics_log.write(record)

    def _shutdown(self) -> None:
        self.notifier.stopping()
        try:
            if self.loop is not None:
                self.publisher.emit(BattleChanged(status="stopping"))
                if self.skill_runner:
                    self.skill_runner.finish()  # a round still on the oracle is recorded, not lost
                if self.engine.step != self.loop.saved_step:
                    self.loop.save_checkpoint(quest=None)
                self.publisher.emit(BattleChanged(status="stopped"))
        finally:
            self.lockstep.close(self.engine)  # the other ranks stop, checking their weights against ours
            if self.server:
                self.server.stop()
            for part in (
                self.publisher,
                self.ledger,
                self.metrics_log,
                self.skill_runner,
                self.chronicle,
                self._lock_file,
            ):
                if part is not None:
                    part.close()

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._request_stop())

    def _request_stop(self) -> None:
        self.controls.stop.set()
        self.controls.wake.set()

    # ------------------------------------------------------------------ control requests

    def _handlers(self) -> dict[type, Callable[[Request], Reply | Later]]:
        """Request type -> handler; snapshots the ControlServer answers from the publisher."""
        vault = {kind: lambda request: self._vault_service().handle(request) for kind in VAULT_REQUESTS}
        return {
            PauseRequest: self._pause,
            ResumeRequest: self._resume,
            StopRequest: self._stop,
            SkipRequest: self.loop.request_skip,
            JournalRequest: self.chronicle.journal,
            ConfigUpdateRequest: self.live.propose,
            QuestGenerateRequest: self._generate_quest,
            ShopBuyRequest: self.shop.buy,
            **self.loop.board.handlers(),
            **vault,
        }

    def _handle(self, request: Request) -> Reply | Later:
        handler = self._dispatch.get(type(request))
        if handler is None:
            raise ValueError(f"unsupported request {type(request).__name__}")
        return handler(request)

    def _pause(self, request: PauseRequest) -> Reply:
        self.disk.paused = False  # the user's pause: only a resume ends it
        self.controls.pause.set()
        self.controls.wake.set()
        return Ack(message="pausing: DIO stops after the current step")

    def _resume(self, request: ResumeRequest) -> Reply:
        self.controls.pause.clear()
        self.controls.wake.set()
        return Ack(message="resuming")

    def _stop(self, request: StopRequest) -> Reply:
        self._request_stop()
        return Ack(message="stopping: DIO saves a checkpoint, then the trainer exits")

    def _generate_quest(self, request: QuestGenerateRequest) -> Reply | Later:
        if self.skill_runner is None:
            why = (
                "not loaded yet (or their config failed: see the trainer's log)"
                if self.config.skills.enabled
                else "off in this trainer (skills.enabled: false)"
            )
            return ErrorReply(message=f"no skill to draw a quest from: skills are {why}")
        return Later(lambda: self.generated_quest(request))  # thousands of chats take seconds

    def generated_quest(self, request: QuestGenerateRequest) -> Reply:
        """Draw the quest from the skill, then admit it through the quest board like an added file."""
        from realm.skills.curriculum import GeneratorExhausted

        try:
            name, content, meta = self.skill_runner.generated_quest(
                request.skill, request.level, request.count, request.seed
            )
        except (ValueError, GeneratorExhausted) as exc:
            return ErrorReply(message=f"generate {request.skill} L{request.level}: {exc}")
        added = QuestAddRequest(name=name, content=content, priority=request.priority, request_id=request.request_id)
        return self.loop.board.add(added, meta)

    def _vault_service(self) -> VaultService:
        if self._vault is None:
            self._vault = VaultService(self.config, self.home.root, self.ledger, self.publisher)
        return self._vault


def check_same_model(latest: Path | None, name: str) -> None:
    """A vault goes on training only as the model its checkpoints are: with another ``model.name``
    the run would load the vault's weights and train them under the other name and its profile."""
    saved = (read_sidecar(latest) or {}).get("model") if latest is not None else None
    if saved and saved != name:
        raise SetupError(
            f"model.name is {name}, but this home's vault holds {saved} (latest {latest.name}): "
            f"set model.name: {saved} to go on training it, or give {name} a home of its own (--home DIR)"
        )


def examples_trained(progress: dict, train) -> dict[str, int]:
    """Quest name -> examples trained, from a checkpoint's data position (older checkpoints
    counted optimizer steps, of the batch size then: taken to be the one now)."""
    if "examples" in progress:
        return dict(progress["examples"])
    return {name: steps * train.batch_size * train.grad_accum for name, steps in progress.get("quests", {}).items()}
