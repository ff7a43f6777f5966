"""The headless trainer: watches the queue, trains, checkpoints, and publishes every change.

One thread trains; the control server's thread answers requests by setting flags that the
training thread reads between optimizer steps. Every event goes through
``Publisher.emit``, which applies it to the trainer's state and publishes it under one lock.
The trainer never imports Textual.
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

import msgspec

from realm.bus import ControlServer, Later, Publisher
from realm.config import RealmConfig, endpoints
from realm.home import Home, HomeBusy, hold_lock
from realm.hosts import serve_setup
from realm.protocol import (
    Ack,
    ErrorReply,
    BattleChanged,
    CheckpointSaved,
    Notice,
    PauseRequest,
    RealmState,
    Reply,
    Request,
    ResumeRequest,
    SkipRequest,
    StepMetrics,
    StopRequest,
    TrainerInfo,
    TrainerStarted,
    ValMetrics,
)
from realm.protocol import AchievementsRestored, ConfigChanged, ConfigUpdateRequest, JournalRequest
from realm.protocol import ChampionChanged, CheckpointScored
from realm.protocol import QuestAddRequest, QuestGenerateRequest
from realm.vault.checkpoints import complete_checkpoints, remove_partials
from realm.vault.ledger import Ledger
from realm.vault.retention import finish_interrupted_deletes
from trainer.checkpointer import Checkpointer, DiskFull, first_line
from trainer.idle import queue_idle_quest
from trainer.lineage import OWN_SOURCES
from trainer.quest_board import QuestBoard
from trainer.lockstep import Solo, follow, join
from trainer.queue import QuestGone, QuestQueue
from trainer.sdnotify import Notifier
from trainer.split import split
from trainer.telemetry import GpuMemory, MetricsLog, matmul_peak_flops
from realm.vault.champion import board, champion
from trainer import suite as evaluation_suite
from realm.vault.service import VAULT_REQUESTS, VaultService, served_step
from trainer.armory import ArmoryRefused, apply_to_engine, changed_keys, fields, propose
from trainer.chronicle import Chronicle, JournaledPublisher

log = logging.getLogger("realm.trainer")

POLL_S = 0.2  # how often an idle or paused trainer looks at its inbox and flags
# Test hook: seconds to sleep inside a suite scoring (scored, not yet recorded), so a test can
# SIGKILL the trainer mid-scoring deterministically. Unset in normal use.
SCORE_PAUSE_ENV = "REALM_TEST_SCORE_PAUSE_S"
INBOX_EVERY_S = 2.0  # how often a battle looks at the inbox between its steps
NONFINITE_PAUSE_AFTER = 3  # steps in a row with an inf/nan loss before training pauses


class TrainerBusy(HomeBusy):
    """Another trainer already owns this data root."""


class Controls:
    """Flags set by requests and signals, read by the training thread between steps."""

    def __init__(self) -> None:
        self.pause = threading.Event()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.on_wait = lambda: None  # the systemd watchdog ping: waiting in the loop is alive

    def wait(self, seconds: float) -> None:
        self.on_wait()
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
        self.checkpointer: Checkpointer | None = None
        self._failed_writes: dict[str, Exception] = {}  # metrics or journal: what failed last, by any thread
        self._warned_writes: set[str] = set()
        self._disk_paused = False  # paused by a full disk: resumes by itself once a save fits
        self._save_owed = False  # a full disk refused a checkpoint: saved first on resuming
        self._lock_file = None
        self._start_step = 0
        self._saved_step = -1
        self._nonfinite_in_a_row = 0
        self.notifier = Notifier()
        self.metrics_log = MetricsLog(None)
        self._progress: dict[str, int] = {}  # quest name -> optimizer steps of it already trained
        self.board: QuestBoard | None = None
        self._skip_name: str | None = None  # the active quest a skip request asked to end
        self._inbox_checked = 0.0
        self.skill_runner = None  # trainer.skills.SkillRunner when skills are enabled
        self._vault: VaultService | None = None
        self._champion_step: int | None = None  # the last champion auto-promote looked at
        self._published_champion: int | None = None
        self._suite: evaluation_suite.Suite | None = None
        self._suite_stamp: tuple | None = None
        self.chronicle: Chronicle | None = None
        self._config_lock = threading.Lock()
        self._pending_config: RealmConfig | None = None  # accepted by a request, applied between steps
        self.lockstep = Solo()  # under torchrun / accelerate launch: rank 0's orders to the other ranks

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> int:
        """Train until stopped (request, signal, or ``max_steps``); return the exit code."""
        self.lockstep = join(self.config)
        if not self.lockstep.leads:
            return follow(self.config, self.lockstep)  # ranks > 0: train what rank 0 orders, nothing else
        self._take_lock()
        try:
            self._start()
            self._loop()
            return 0
        finally:
            self._shutdown()

    def _take_lock(self) -> None:
        self._lock_file = hold_lock(self.home.trainer_lock, "trainer", TrainerBusy)

    def _start(self) -> None:
        from trainer.engine import Engine  # torch is heavy: import it once the lock is ours

        if self.config.skills.enabled:
            from trainer.skills import check_mix

            check_mix(self.config.skills)  # before the model loads: a config error stops the start
        self.ledger = Ledger(self.home.db)
        finished = finish_interrupted_deletes(self.ledger, self.home.checkpoints)
        removed = remove_partials(self.home.checkpoints)
        registered, missing = self.ledger.reconcile(self.home.checkpoints)
        best = champion(self.ledger, self.config.champion)
        self._published_champion = best.step if best else None
        latest = (complete_checkpoints(self.home.checkpoints) or [None])[-1]
        log.info("loading %s%s", self.config.model.name, f" from {latest.name}" if latest else "")
        self.lockstep.send("start", latest)
        self.engine = Engine(self.config, checkpoint=latest)
        self._start_step = self.engine.step
        self._saved_step = self.engine.step if latest else -1
        self._start_engine_extras()
        requeued = self.queue.requeue_active()

        pub, control = endpoints(self.config, self.home.root)
        secure = serve_setup(self.config, self.home.root, [pub, control])  # CURVE beyond loopback
        self.chronicle = Chronicle(self.home.db, self.config.game.steps_per_level,
                                   on_error=lambda exc: self._note_failed_write(f"journal {self.home.db}", exc))
        self.publisher = JournaledPublisher(
            pub, self.run_id, RealmState(run=self.run_id), chronicle=self.chronicle, socket_setup=secure
        )
        self.checkpointer = Checkpointer(
            self.home.checkpoints, self.ledger, self.engine, self.publisher.emit, config=lambda: self.config,
            in_use=lambda: self.skill_runner.checkpoints_in_use() if self.skill_runner else (),
        )
        self.board = QuestBoard(self.config, self.home, self.queue, self.publisher)
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
                champion=self._published_champion,
            )
        )
        self._start_skills()
        if latest is not None:  # its weights are the engine's: score it if a kill cut its scoring short
            self._score_checkpoint(self.engine.step)
        self.publisher.emit(AchievementsRestored(achievements=self.chronicle.earned()))
        self.publisher.emit(ConfigChanged(config=fields(self.config)))
        self.board.announce_queue()
        if self.lockstep.world > 1:
            text = f"training on {self.lockstep.world} processes: each optimizer step is shared between them"
            self.publisher.emit(Notice(level="info", text=text))
        for text in _startup_notes(finished, removed, registered, missing, requeued):
            self.publisher.emit(Notice(level="warning", text=text))
        log.info("trainer up: step %d, control at %s, events at %s", self.engine.step, control, pub)
        self.notifier.ready(f"step {self.engine.step}")

    def _start_engine_extras(self) -> None:
        """Issue 3: resume position, telemetry, the fixed validation set, the watchdog."""
        self._progress = dict((self.engine.progress or {}).get("quests", {}))
        train = self.config.train
        self._peak_flops = train.peak_flops or matmul_peak_flops(self.engine.device, seconds=0.1)
        self._gpu_memory = GpuMemory(self.engine.device)
        if train.metrics_log and self.engine.is_main:
            path = self.home.logs / "metrics.jsonl"
            self.metrics_log = MetricsLog(path, on_error=lambda exc: self._note_failed_write(f"metrics log {path}", exc))
        self.controls.on_wait = self.notifier.ping

    def _start_skills(self) -> None:
        if not self.config.skills.enabled:
            return
        from trainer.skills import SkillRunner

        runner = SkillRunner(self.config, self.home, self.engine, self.publisher.emit, self._checkpoint_for_eval)
        try:
            runner.start()
        except ValueError as exc:  # a bad skill YAML or mix: say so, train on without skills
            runner.close()
            log.error("skills disabled: %s", exc)
            self.publisher.emit(Notice(level="error", text=f"skills disabled: {exc}"))
            return
        self.skill_runner = runner

    def _shutdown(self) -> None:
        self.notifier.stopping()
        try:
            if self.engine is not None and self.publisher is not None:
                self.publisher.emit(BattleChanged(status="stopping"))
                if self.skill_runner:
                    self.skill_runner.finish()  # a round still on the oracle is recorded, not lost
                if self.engine.step != self._saved_step:
                    self._save_checkpoint(quest=None)
                self.publisher.emit(BattleChanged(status="stopped"))
        finally:
            self.lockstep.close(self.engine)  # the other ranks stop, checking their weights against ours
            if self.server:
                self.server.stop()
            if self.publisher:
                self.publisher.close()
            if self.ledger:
                self.ledger.close()
            self.metrics_log.close()
            if self.skill_runner:
                self.skill_runner.close()
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

    def _handlers(self) -> dict[type, Callable[[Request], Reply | Later]]:
        """Request type -> handler; snapshots the ControlServer answers from the publisher."""
        vault = {kind: lambda request: self._vault_service().handle(request) for kind in VAULT_REQUESTS}
        return {
            PauseRequest: self._pause,
            ResumeRequest: self._resume,
            StopRequest: self._stop,
            SkipRequest: self._request_skip,
            JournalRequest: self.chronicle.journal,
            ConfigUpdateRequest: self._propose_config,
            QuestGenerateRequest: self._generate_quest,
            **self.board.handlers(),
            **vault,
        }

    def _handle(self, request: Request) -> Reply | Later:
        handler = self._dispatch.get(type(request))
        if handler is None:
            raise ValueError(f"unsupported request {type(request).__name__}")
        return handler(request)

    def _pause(self, request: PauseRequest) -> Reply:
        self._disk_paused = False  # the user's pause: only a resume ends it
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
            why = ("not loaded yet (or their config failed: see the trainer's log)" if self.config.skills.enabled
                   else "off in this trainer (skills.enabled: false)")
            return ErrorReply(message=f"no skill to draw a quest from: skills are {why}")
        return Later(lambda: self._generated_quest(request))  # thousands of chats take seconds

    def _generated_quest(self, request: QuestGenerateRequest) -> Reply:
        """Draw the quest from the skill, then admit it through the quest board like an added file."""
        from realm.skills.curriculum import GeneratorExhausted

        try:
            name, content, meta = self.skill_runner.generated_quest(request.skill, request.level, request.count, request.seed)
        except (ValueError, GeneratorExhausted) as exc:
            return ErrorReply(message=f"generate {request.skill} L{request.level}: {exc}")
        added = QuestAddRequest(name=name, content=content, priority=request.priority, request_id=request.request_id)
        return self.board.add(added, meta)

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while self._may_continue():
            self._intake()
            queued = self.queue.queued()
            if queued:
                priority, path = queued[0]
                try:
                    self._battle(path, priority)
                except QuestGone:  # a request moved or removed it as it was picked
                    continue
            elif self.config.idle.enabled:
                self._write_idle_quest()
            else:
                self._set_status("idle")
                self.controls.wait(POLL_S)

    def _write_idle_quest(self) -> None:
        """The queue is empty: a quest from the skill mix, else the placeholder, so DIO never idles."""
        folder, n = self.home.queued("low"), self.config.idle.examples
        if self.skill_runner and self.skill_runner.write_idle_quest(folder, n):
            return
        queue_idle_quest(self.home, n, seed=self.engine.step)

    def _may_continue(self) -> bool:
        """Block while paused; False once the trainer must stop. Runs between optimizer steps."""
        self._apply_pending_config()
        self._settle_failed_writes()
        if self.max_steps is not None and self.engine.step - self._start_step >= self.max_steps:
            self.controls.stop.set()
        self._save_owed_checkpoint()  # a resume may have come before this call
        while self.controls.pause.is_set() and not self.controls.stop.is_set() and not self._skip_pending():
            self._sit_out_pause()
            self._save_owed_checkpoint()  # on a disk still full this pauses again
        return not self.controls.stop.is_set()

    def _sit_out_pause(self) -> None:
        status = self.publisher.state.battle.status
        self._set_status("paused")
        while self.controls.pause.is_set() and not self.controls.stop.is_set() and not self._skip_pending():
            self.controls.wait(POLL_S)  # a skip ends the quest now; the next call pauses again
            self._apply_pending_config()
            if self.skill_runner:
                self.skill_runner.while_paused()
            self._resume_if_disk_has_room()
        self._set_status(status if status != "paused" else "training")

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
        self.lockstep.send("config", new)
        if changed:
            log.info("armory: %s", ", ".join(changed))
            self.publisher.emit(ConfigChanged(config=fields(new), changed=changed))

    def _set_status(self, status: str, reason: str = "") -> None:
        if self.publisher.state.battle.status != status:
            self.publisher.emit(BattleChanged(status=status, reason=reason))

    def _intake(self) -> None:
        """Inbox files -> the queue (QUICK validation) or failed/ (with the reason)."""
        self._inbox_checked = time.monotonic()
        self.board.take_inbox()

    def _request_skip(self, request: SkipRequest) -> Reply:
        quest = self.publisher.state.battle.quest
        if quest is None:
            return ErrorReply(message="no quest is being trained, so there is nothing to skip")
        self._skip_name = quest.name
        self.controls.wake.set()
        return Ack(message=f"skipping {quest.name}: it ends after the current step")

    def _skip_pending(self) -> bool:
        quest = self.publisher.state.battle.quest
        return quest is not None and quest.name == self._skip_name

    def _between_steps(self, active: Path, done_steps: int, total: int) -> bool:
        """Quest business between two optimizer steps; False when the quest ends here (skip)."""
        if time.monotonic() - self._inbox_checked >= INBOX_EVERY_S:
            self._intake()
        if self._skip_name != active.name:
            return True
        self._skip_name = None
        self.board.skip(active, done_steps, total)
        return False

    def _battle(self, path: Path, priority: str) -> None:
        taken = self.board.take(path, self.engine.tokenizer)
        if taken is None:
            return
        active, examples = taken
        train = self.config.train
        parts = split(examples, max_held_out=train.val_examples, keep_duplicates=self.config.quests.duplicates == "keep")
        val = self.engine.encode(parts.held_out)
        batches = self.engine.batches(self.engine.encode(parts.train), order_seed=f"{train.seed}:{active.name}")
        if val and train.val_after == "train":
            batches += self.engine.batches(val, order_seed=f"{train.seed}:{active.name}:held-out")
        trained_val_from = len(batches) - (self.engine.steps_for(len(val)) if val and train.val_after == "train" else 0)
        quest = self.board.start(active, priority, len(examples), len(parts.held_out), len(batches), parts.summary())
        done = min(self._progress.get(active.name, 0), len(batches))  # trained before a restart
        if done:
            text = f"quest {active.name} continues where it stopped: step {done} of {len(batches)} already trained"
            self.publisher.emit(Notice(level="info", text=text))
        for index, batch in enumerate(batches, start=1):
            if index <= done:
                continue
            if not self._may_continue():
                return  # left in active/: a restart continues it first, from its checkpointed position
            if not self._between_steps(active, index - 1, len(batches)):
                return
            if val and index == trained_val_from + 1:
                self._validate(val)  # the last look at the held-out lines before they are trained
            self._train_one(batch, index, len(batches), active.name)
            if val and index <= trained_val_from and self.engine.step % train.val_every == 0:
                self._validate(val)
        if val and trained_val_from == len(batches):
            self._validate(val)
        if quest.source not in OWN_SOURCES and self.engine.step != self._saved_step:
            self._save_checkpoint(quest=active.name)
        self.board.finish(active, len(batches))
        self._progress.pop(active.name, None)

    def _train_one(self, batch, index: int, total: int, quest: str) -> None:
        micro_before = self.engine.micro_batch
        result = self.lockstep.train(self.engine, batch)  # every rank takes this step
        self._progress[quest] = index
        if result.oom_retries:
            text = (
                f"out of memory: micro-batch {micro_before} -> {result.micro_batch} examples; the step was redone "
                "with more accumulation, so the effective batch is unchanged"
            )
            log.warning(text)
            self.publisher.emit(Notice(level="warning", text=text))
        if result.nonfinite:
            self._nonfinite_step(result, index, quest)
            return
        if result.skipped:
            self._skipped_step(result, index, quest)
            return
        self._nonfinite_in_a_row = 0
        seconds = max(result.seconds, 1e-9)
        flops_per_s = result.flops / seconds
        metrics = StepMetrics(
            step=self.engine.step,
            loss=result.loss,
            lr=result.lr,
            grad_norm=result.grad_norm,
            tokens=result.tokens,
            tokens_per_s=result.tokens / seconds,
            examples_per_s=result.examples / seconds,
            quest_step=index,
            quest_total=total,
            flops_per_s=flops_per_s,
            mfu=flops_per_s / self._peak_flops if self._peak_flops else 0.0,
            gpu_memory_mb=self._gpu_memory.used_mb(),
            micro_batch=result.micro_batch,
        )
        self.publisher.emit(metrics)
        self.metrics_log.write({"kind": "step", "quest": quest, "time": time.time(), **msgspec.structs.asdict(metrics)})
        self.notifier.ping()
        if self.engine.step % self.config.train.checkpoint_every == 0:
            self._save_checkpoint(quest=quest)
        if self.skill_runner:
            self.skill_runner.after_step(result.seconds)

    def _skipped_step(self, result, index: int, quest: str) -> None:
        """fp16 loss scaling met inf/nan gradients: say so; the batch is consumed, nothing else changed."""
        text = (
            f"fp16: inf/nan gradients at {quest} step {index}; the optimizer step was skipped (weights, "
            f"optimizer and lr unchanged; still at step {self.engine.step}) and the loss scale lowered to {result.loss_scale:g}"
        )
        log.warning(text)
        self.publisher.emit(Notice(level="warning", text=text))
        self.metrics_log.write({"kind": "skipped", "quest": quest, "time": time.time(), "step": self.engine.step,
                                "loss": result.loss, "loss_scale": result.loss_scale})

    def _nonfinite_step(self, result, index: int, quest: str) -> None:
        """An inf/nan loss or gradient: the step was skipped; several in a row pause training, with the reason."""
        self._nonfinite_in_a_row += 1
        text = (
            f"{quest} step {index}: loss {result.loss:g}, gradient norm {result.grad_norm:g}: not finite, so the "
            f"optimizer step was skipped (weights, optimizer and lr unchanged; still at step {self.engine.step})"
        )
        log.warning(text)
        self.publisher.emit(Notice(level="warning", text=text))
        self.metrics_log.write({"kind": "nonfinite", "quest": quest, "time": time.time(), "step": self.engine.step,
                                "loss": result.loss, "grad_norm": result.grad_norm})
        if self._nonfinite_in_a_row >= NONFINITE_PAUSE_AFTER:
            self._nonfinite_in_a_row = 0  # a resume gets as many tries again
            self._pause_for(
                f"the loss or gradients were not finite for {NONFINITE_PAUSE_AFTER} steps in a row (last at {quest} step "
                f"{index}); training paused at step {self.engine.step}. Lower train.lr or check the quest, then resume"
            )

    def _pause_for(self, reason: str) -> None:
        """Pause training with ``reason`` in the battle status (on top of the log)."""
        log.error(reason)
        self.publisher.emit(Notice(level="error", text=reason))
        if not self.controls.stop.is_set():
            self.controls.pause.set()  # before the status: a resume sent on seeing it must find the flag set
            self.publisher.emit(BattleChanged(status="paused", reason=reason))

    def _validate(self, val) -> None:
        """Loss on the quest's held-out examples: a signal about this quest alone (DEF is the suite's)."""
        event = ValMetrics(step=self.engine.step, val_loss=self.engine.evaluate(val))
        self.publisher.emit(event)
        self.metrics_log.write({"kind": "val", "time": time.time(), **msgspec.structs.asdict(event)})

    def _save_checkpoint(self, quest: str | None) -> None:
        """Save, record, prune. A full disk: retention frees room and the save is retried; if it
        still fails, training pauses with the reason in the status until a save fits (nothing is
        lost but the steps since the last checkpoint, and only if the trainer is then killed)."""
        if not self.engine.is_main:
            return
        if not self.engine.weights_finite():  # the newest checkpoint must stay one worth loading
            self._pause_for(f"checkpoint at step {self.engine.step} not saved: the weights hold inf/nan; "
                            "the checkpoints saved before are intact. Lower train.lr, then restart the trainer")
            return
        state = self.publisher.state
        self.engine.progress = {"quests": dict(self._progress), "active": quest}
        sidecar = {
            "time": time.time(),
            "train_loss": state.battle.loss,
            "val_loss": state.hero.val_loss,
            "lr": state.battle.lr,
            "quest": quest,
            "skill": state.skills.active or None,
            # what the champion board scores: each skill's level and latest accuracy at it
            "skills": {
                skill.id: {"level": skill.level, "accuracy": skill.accuracy}
                for skill in state.skills.skills
                if skill.accuracy is not None
            },
            "model": self.config.model.name,
        }
        try:
            info = self.checkpointer.save(sidecar)
        except DiskFull as exc:
            self._save_owed = True
            self._pause_for_disk(str(exc))
            return
        self._saved_step = self.engine.step
        log.info("saved %s", info.name)
        self.publisher.emit(CheckpointSaved(checkpoint=info))
        self._score_checkpoint(info.step)
        self.checkpointer.prune()
        self._maybe_auto_promote()

    def _checkpoint_for_eval(self) -> int | None:
        """The step of a checkpoint holding the current weights (an oracle eval names it),
        saved now when this step has none; None when the save failed (e.g. disk full)."""
        self._save_unsaved_steps()
        return self.engine.step if self._saved_step == self.engine.step else None

    def _save_unsaved_steps(self) -> None:
        if self._saved_step != self.engine.step:
            quest = self.publisher.state.battle.quest
            self._save_checkpoint(quest=quest.name if quest else None)

    # ------------------------------------------------------------------ a full disk

    def _note_failed_write(self, what: str, exc: Exception) -> None:
        """A metrics or journal write failed (on any thread); the training thread settles it."""
        self._failed_writes[what] = exc

    def _settle_failed_writes(self) -> None:
        """Retry the waiting writes; on a full disk retention makes room first, and if the
        writes still fail, or a save would not fit, training pauses. Anything else is a warning."""
        if not self._failed_writes:
            return
        failed, self._failed_writes = self._failed_writes, {}
        if self.checkpointer.room_for_save() and self._flush_waiting_writes():
            return  # the space came back, or the cause went away
        what, exc = next(iter(failed.items()))
        if not self.checkpointer.disk_full(exc):
            self._warn_failed_write(what, exc)
            return
        freed = self.checkpointer.prune(everything_allowed=True)
        if self._flush_waiting_writes() and self.checkpointer.room_for_save():
            return
        self._pause_for_disk(self.checkpointer.reason(f"could not write the {what}", exc, freed))

    def _flush_waiting_writes(self) -> bool:
        return all([self.metrics_log.flush(), self.chronicle.flush()])  # a list: both are tried

    # ------------------------------------------------------------------ the evaluation suite

    def _score_checkpoint(self, step: int) -> None:
        """Score the weights saved as ``step`` (the engine's own) on the evaluation suite, once
        per suite version. The score is one ledger row, written whole or not at all."""
        suite = self._current_suite()
        if suite.empty or self.ledger.score_of(step, suite.version) is not None:
            return
        started = time.perf_counter()
        try:
            result = evaluation_suite.score(suite, self.engine, self.config.skills.eval_batch_size)
        except Exception as exc:  # a failed evaluation must not end training: the checkpoint stays unranked
            log.exception("suite evaluation failed")
            self.publisher.emit(Notice(level="error", text=f"checkpoint {step}: suite evaluation failed: {exc}"))
            return
        seconds = time.perf_counter() - started
        if os.environ.get(SCORE_PAUSE_ENV):
            time.sleep(float(os.environ[SCORE_PAUSE_ENV]))
        if self.ledger.record_score(step, result, time.time()):
            self.publisher.emit(CheckpointScored(step=step, suite=result, seconds=seconds))
            self.metrics_log.write({"kind": "suite", "time": time.time(), "step": step, "seconds": seconds,
                                    **msgspec.structs.asdict(result)})
        self._publish_champion()

    def _current_suite(self) -> evaluation_suite.Suite:
        """The suite, rebuilt when a validation file or the skill mix changed."""
        skills = [self.skill_runner.skills[s] for s in self.skill_runner.mix] if self.skill_runner else []
        stamp = (evaluation_suite.folder_stamp(self.home.validation), tuple(s.id for s in skills))
        if self._suite is None or stamp != self._suite_stamp:
            old = self._suite.version if self._suite else None
            self._suite = evaluation_suite.build(self.home.validation, self.config, self.engine.tokenizer, skills)
            self._suite_stamp = stamp
            for problem in self._suite.problems:
                self.publisher.emit(Notice(level="warning", text=f"evaluation suite: {problem}; left out"))
            if old is not None and old != self._suite.version:
                text = (f"evaluation suite changed ({old} -> {self._suite.version}): checkpoints are ranked "
                        "against others scored on the new suite only")
                self.publisher.emit(Notice(level="info", text=text))
        return self._suite

    def _publish_champion(self) -> None:
        best = board(self.ledger, self.config.champion)
        step = best[0].checkpoint.step if best and best[0].rank == 1 else None
        if step != self._published_champion:
            self._published_champion = step
            self.publisher.emit(ChampionChanged(step=step, score=best[0].score if step is not None else None))

    def _warn_failed_write(self, what: str, exc: Exception) -> None:
        if what in self._warned_writes:
            return
        self._warned_writes.add(what)
        text = (f"could not write the {what} ({first_line(exc)}); what it missed waits in memory and is retried "
                "with the next write")
        log.warning(text)
        self.publisher.emit(Notice(level="warning", text=text))

    def _pause_for_disk(self, reason: str) -> None:
        log.error(reason)
        self.publisher.emit(Notice(level="error", text=reason))
        if self.controls.stop.is_set():
            return
        # a pause the user asked for stays theirs to end, and so does one the free space cannot
        # show the end of (a full quota)
        if not self.controls.pause.is_set() and not self.checkpointer.room_for_save():
            self._disk_paused = True
        self.controls.pause.set()  # before the status: a resume sent on seeing it must find the flag set
        self.publisher.emit(BattleChanged(status="paused", reason=reason))

    def _resume_if_disk_has_room(self) -> None:
        """A disk-full pause ends by itself once a checkpoint fits and the waiting writes are in."""
        if not self._disk_paused or not self.checkpointer.room_for_save() or not self._flush_waiting_writes():
            return
        self._disk_paused = False
        self._failed_writes.clear()
        text = f"disk has room again ({self.checkpointer.space()}): training resumes"
        log.info(text)
        self.publisher.emit(Notice(level="info", text=text))
        self.controls.pause.clear()

    def _save_owed_checkpoint(self) -> None:
        """After a disk-full pause, the checkpoint the full disk refused, before training on."""
        if self._save_owed and not self.controls.pause.is_set() and not self.controls.stop.is_set():
            self._save_owed = False
            self._save_unsaved_steps()

    # ------------------------------------------------------------------ vault and oracle

    def _vault_service(self) -> VaultService:
        if self._vault is None:
            self._vault = VaultService(self.config, self.home.root, self.ledger, self.publisher)
        return self._vault

    def _maybe_auto_promote(self) -> None:
        """The deployment orchestrator: with ``oracle.auto_promote``, send each new champion that
        beats the served checkpoint by ``champion.margin`` on the current suite."""
        if not self.config.oracle.auto_promote:
            return
        rows = board(self.ledger, self.config.champion)
        if not rows or rows[0].rank != 1 or rows[0].checkpoint.step == self._champion_step:
            return
        best = rows[0]
        self._champion_step = best.checkpoint.step
        scores = {row.checkpoint.step: row.score for row in rows if row.rank}
        margin = self.config.champion.margin
        service = self._vault_service()

        def send() -> None:
            serving, _ = served_step(self.config, self.home.root)
            if serving == best.checkpoint.step:
                return
            served = scores.get(serving) if serving is not None else None
            if served is not None and best.score - served < margin:
                text = (f"auto-promote: champion {best.checkpoint.name} beats the served checkpoint {serving} by "
                        f"{best.score - served:.3f}, under champion.margin {margin:g}; still serving {serving}")
                self.publisher.emit(Notice(level="info", text=text))
                return
            reply = service.promote(str(best.checkpoint.step))
            level = "warning" if isinstance(reply, ErrorReply) else "info"
            self.publisher.emit(Notice(level=level, text=f"auto-promote {best.checkpoint.name}: {reply.message}"))

        threading.Thread(target=send, name="realm-auto-promote", daemon=True).start()


def _startup_notes(finished: list[str], removed: list[Path], registered: int, missing: int,
                   requeued: list[Path]) -> list[str]:  # fmt: skip
    notes = [f"finished deleting {name}: retention was stopped in the middle of it" for name in finished]
    notes += [f"removed an unfinished checkpoint save: {path.name}" for path in removed]
    if registered:
        notes.append(f"ledger: registered {registered} checkpoint folder(s) it did not know")
    if missing:
        notes.append(f"ledger: {missing} checkpoint(s) are missing from disk")
    notes += [f"quest {path.name} was interrupted; it is back at the front of the queue" for path in requeued]
    return notes
