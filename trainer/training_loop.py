"""The training thread: quest after quest, step after step, and the checkpoints between them.

``TrainingLoop.run`` takes the next queued quest (or writes an idle one), trains it step by
step, and between two optimizer steps reads the flags that requests and signals set
(``Controls``), applies an accepted config change, and settles failed writes. Everything it
does goes out through the publisher.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import msgspec

from realm.game.narration import counted
from realm.protocol import (
    Ack,
    BattleChanged,
    CheckpointSaved,
    ErrorReply,
    Notice,
    Reply,
    SkipRequest,
    StepMetrics,
    ValMetrics,
)
from realm.quests.split import split
from trainer import lineage
from trainer.checkpointer import AutoPromoter, Checkpointer, DiskFull
from trainer.disk_watch import DiskWatch
from trainer.idle import queue_idle_quest
from trainer.lineage import OWN_SOURCES
from trainer.live_config import LiveConfig
from trainer.quest_board import QuestBoard, quest_epochs
from trainer.quest_plan import QuestPlan, shuffled
from trainer.queue import QuestGone
from trainer.suite_scorer import SuiteScorer

log = logging.getLogger("realm.trainer")

POLL_S = 0.2  # how often an idle or paused trainer looks at its inbox and flags
RESTING = "the queue is empty; idle skill quests are off for this model (idle.enabled: true turns them on)"
INBOX_EVERY_S = 2.0  # how often a battle looks at the inbox between its steps
NONFINITE_PAUSE_AFTER = 3  # steps in a row with an inf/nan loss before training pauses
OWN_FAILURES_TO_PAUSE = 3  # the game's own quests failing whole in a row before training pauses


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


class TrainingLoop:
    def __init__(
        self,
        daemon,
        board: QuestBoard,
        checkpointer: Checkpointer,
        disk: DiskWatch,
        scorer: SuiteScorer,
        promoter: AutoPromoter,
    ) -> None:
        self.live: LiveConfig = daemon.live
        self.home = daemon.home
        self.engine = daemon.engine
        self.controls: Controls = daemon.controls
        self.publisher = daemon.publisher
        self.lockstep = daemon.lockstep
        self.metrics_log = daemon.metrics_log
        self.notifier = daemon.notifier
        self.telemetry = daemon.telemetry  # (peak FLOP/s or 0, TrainerGpu)
        self.max_steps = daemon.max_steps
        self.start_step = daemon.start_step
        self.progress: dict[str, int] = daemon.progress  # quest name -> examples of it already trained
        self.board, self.checkpointer, self.disk = board, checkpointer, disk
        self.scorer, self.promoter = scorer, promoter
        self.skill_runner = None  # trainer.skills.SkillRunner when skills are enabled
        self.saved_step = daemon.start_step if daemon.resumed else -1
        self._skip_name: str | None = None  # the active quest a skip request asked to end
        self._inbox_checked = 0.0
        self._nonfinite_in_a_row = 0
        self._own_failed_in_a_row = 0  # the game's own quests that failed whole, since one was fought
        self._split_line = ""  # how the active quest's examples were divided

    @property
    def config(self):
        return self.live.config

    def run(self) -> None:
        """Train until the trainer must stop."""
        while self.may_continue():
            self._intake()
            queued = self.board.queue.queued()
            if queued:
                priority, path = queued[0]
                try:
                    self._battle(path, priority)
                except QuestGone:  # a request moved or removed it as it was picked
                    continue
            elif self.config.idle.enabled:
                self._write_idle_quest()
            else:
                self._set_status("idle", RESTING)
                self.controls.wait(POLL_S)

    def _write_idle_quest(self) -> None:
        """The queue is empty: a quest from the skill mix, else the placeholder, so DIO never idles."""
        folder, n = self.home.queued("low"), self.config.idle.examples
        if self.skill_runner and self.skill_runner.write_idle_quest(folder, n):
            return
        queue_idle_quest(self.home, n, seed=self.engine.step)

    def may_continue(self) -> bool:
        """Block while paused; False once the trainer must stop. Runs between optimizer steps."""
        self._apply_pending_config()
        self.disk.settle()
        if self.max_steps is not None and self.engine.step - self.start_step >= self.max_steps:
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
            self.disk.resume_if_room()
        self._set_status(status if status != "paused" else "training")

    def _apply_pending_config(self) -> None:
        changed = self.live.apply_pending(self.engine, self.lockstep, self.publisher.emit)
        if "skills.mix" in changed and self.skill_runner:
            self.skill_runner.use_mix(self.config.skills)  # the next eval round and idle quest draw from it

    def _save_owed_checkpoint(self) -> None:
        if self.disk.owed_save_due():
            self.save_unsaved_steps()

    def _set_status(self, status: str, reason: str = "") -> None:
        if self.publisher.state.battle.status != status:
            self.publisher.emit(BattleChanged(status=status, reason=reason))

    def _intake(self) -> None:
        """Inbox files -> the queue (QUICK validation) or failed/ (with the reason)."""
        self._inbox_checked = time.monotonic()
        self.board.take_inbox()

    # ------------------------------------------------------------------ skipping a quest

    def request_skip(self, request: SkipRequest) -> Reply:
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

    # ------------------------------------------------------------------ a battle

    def _battle(self, path: Path, priority: str) -> None:
        taken = self.board.take(path, self.engine.tokenizer)
        if taken is None:
            self._own_quest_failed(path.name)
            return
        self._own_failed_in_a_row = 0
        active, examples = taken
        plan, val = self._plan(active, examples)
        quest = self.board.start(
            active, priority, len(examples), len(val), plan.total_steps(self._per_step()), self._split_line, plan.epochs
        )
        if plan.done:
            text = f"quest {active.name} continues where it stopped: {plan.done} of {plan.examples} examples trained"
            self.publisher.emit(Notice(level="info", text=text))
        val_start = self._validate(val) if val and not plan.done else None  # what the victory compares with
        val_end = val_start
        step_at_start = self.engine.step
        while not plan.finished:
            if not self.may_continue():
                return  # left in active/: a restart continues it first, from its checkpointed position
            per_step = self._per_step()  # after may_continue: a live batch-size change applies here
            if not self._between_steps(active, plan.steps_done, plan.total_steps(per_step)):
                return
            if val and plan.at_held_out_start():
                val_end = self._validate(val)  # the last look at the held-out lines before they are trained
            batch = plan.next_batch(per_step)
            plan.advance(len(batch))
            self._train_one(batch, plan, per_step, active.name)
            if val and not plan.in_held_out and self.engine.step % self.config.train.val_every == 0:
                val_end = self._validate(val)
        if val and not plan.held_out:
            val_end = self._validate(val)
        if self.engine.step == step_at_start and plan.steps_done:  # every step of it skipped: nothing was won
            self.board.fail(
                active, f"none of its {counted(plan.steps_done, 'step')} changed the weights (each skipped)"
            )
            self.progress.pop(active.name, None)
            return
        if quest.source not in OWN_SOURCES and self.engine.step != self.saved_step:
            self.save_checkpoint(quest=active.name)
        self.board.finish(active, plan.steps_done, trained=plan.done, val=(val_start, val_end))
        self.progress.pop(active.name, None)

    def _per_step(self) -> int:
        return self.config.train.batch_size * self.config.train.grad_accum

    def _plan(self, active: Path, examples: list) -> tuple[QuestPlan, list]:
        """The quest's passes (one shuffle each epoch, then the held-out pass with val_after: train)
        and its encoded held-out examples."""
        train = self.config.train
        own = lineage.source(self.home, active.name) in OWN_SOURCES
        # the game's own quests repeat items on purpose (corrections 4x): their weight is kept
        keep = own or self.config.quests.duplicates == "keep"
        parts = split(examples, max_held_out=train.val_examples, keep_duplicates=keep, salt=active.name if own else "")
        self._split_line = parts.summary()
        val = self.engine.encode(parts.held_out)
        encoded = self.engine.encode(parts.train)
        epochs = quest_epochs(self.home, active.name, self.config)
        seeds = [f"{train.seed}:{active.name}"] + [f"{train.seed}:{active.name}:epoch{e}" for e in range(2, epochs + 1)]
        passes = [shuffled(encoded, seed) for seed in seeds]
        trained_val = bool(val) and train.val_after == "train"
        if trained_val:
            passes.append(shuffled(val, f"{train.seed}:{active.name}:held-out"))
        done = self.progress.get(active.name, 0)  # examples trained before a restart
        return QuestPlan(passes, held_out=trained_val, done=done, per_step=self._per_step()), val

    def _train_one(self, batch, plan: QuestPlan, per_step: int, quest: str) -> None:
        micro_before = self.engine.micro_batch
        result = self.lockstep.train(self.engine, batch)  # every rank takes this step
        self.progress[quest] = plan.done
        index, total = plan.steps_done, plan.total_steps(per_step)
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
        peak_flops, trainer_gpu = self.telemetry
        gpu, gpu_note, gpu_memory_mb = trainer_gpu.read()
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
            quest_epoch=plan.trained_epoch if plan.epochs > 1 else 0,
            quest_epochs=plan.epochs if plan.epochs > 1 else 0,
            flops_per_s=flops_per_s,
            mfu=flops_per_s / peak_flops if peak_flops else 0.0,
            gpu_memory_mb=gpu_memory_mb,
            micro_batch=result.micro_batch,
            gpu=gpu,
            gpu_note=gpu_note,
        )
        self.publisher.emit(metrics)
        record = {**msgspec.structs.asdict(metrics), "gpu": msgspec.to_builtins(gpu)}
        self.metrics_log.write({"kind": "step", "quest": quest, "time": time.time(), **record})
        self.notifier.ping()
        if self.engine.step % self.config.train.checkpoint_every == 0:
            self.save_checkpoint(quest=quest)
        if self.skill_runner:
            self.skill_runner.after_step(result.seconds)

    def _skipped_step(self, result, index: int, quest: str) -> None:
        """fp16 loss scaling met inf/nan gradients: say so; the batch is consumed, nothing else changed."""
        text = (
            f"fp16: inf/nan gradients at {quest} step {index}; the optimizer step was skipped (weights, "
            f"optimizer and lr unchanged; still at step {self.engine.step}) and the loss scale lowered to {result.loss_scale:g}"
        )
        self._step_not_taken("skipped", quest, text, loss=result.loss, loss_scale=result.loss_scale)

    def _nonfinite_step(self, result, index: int, quest: str) -> None:
        """An inf/nan loss or gradient: the step was skipped; several in a row pause training, with the reason."""
        self._nonfinite_in_a_row += 1
        text = (
            f"{quest} step {index}: loss {result.loss:g}, gradient norm {result.grad_norm:g}: not finite, so the "
            f"optimizer step was skipped (weights, optimizer and lr unchanged; still at step {self.engine.step})"
        )
        self._step_not_taken("nonfinite", quest, text, loss=result.loss, grad_norm=result.grad_norm)
        if self._nonfinite_in_a_row >= NONFINITE_PAUSE_AFTER:
            self._nonfinite_in_a_row = 0  # a resume gets as many tries again
            if self.engine.weights_finite():
                advice = "Lower train.lr or check the quest, then resume"
            else:  # a resume would only skip more steps: the weights must come back from a checkpoint
                back = (
                    f"the last checkpoint (step {self.saved_step})" if self.saved_step >= 0 else "the model as it began"
                )
                advice = (
                    "The weights hold inf/nan now (a step ruined them, as too high a train.lr does): lower "
                    f"train.lr, then stop and start the trainer to go on from {back}"
                )
            self.pause_for(
                f"the loss or gradients were not finite for {NONFINITE_PAUSE_AFTER} steps in a row (last at {quest} step "
                f"{index}); training paused at step {self.engine.step}. {advice}"
            )

    def _step_not_taken(self, kind: str, quest: str, text: str, **numbers: float) -> None:
        log.warning(text)
        self.publisher.emit(Notice(level="warning", text=text))
        self.metrics_log.write({"kind": kind, "quest": quest, "time": time.time(), "step": self.engine.step, **numbers})

    def _own_quest_failed(self, name: str) -> None:
        """An empty queue makes the next idle quest at once, so one that fails whole each time would
        spin forever without a step: pause after OWN_FAILURES_TO_PAUSE in a row, saying why."""
        if lineage.source(self.home, name) not in OWN_SOURCES:
            return
        self._own_failed_in_a_row += 1
        if self._own_failed_in_a_row >= OWN_FAILURES_TO_PAUSE:
            self._own_failed_in_a_row = 0
            self.pause_for(
                f"the game's own quests failed {OWN_FAILURES_TO_PAUSE} times in a row (the last: {name}); "
                "the reasons are in quests/failed/. Resume to try again"
            )

    def pause_for(self, reason: str) -> None:
        """Pause training with ``reason`` in the battle status (on top of the log)."""
        log.error(reason)
        self.publisher.emit(Notice(level="error", text=reason))
        if not self.controls.stop.is_set():
            self.controls.pause.set()  # before the status: a resume sent on seeing it must find the flag set
            self.publisher.emit(BattleChanged(status="paused", reason=reason))

    def _validate(self, val) -> float:
        """Loss on the quest's held-out examples: a signal about this quest alone (DEF is the suite's)."""
        event = ValMetrics(step=self.engine.step, val_loss=self.engine.evaluate(val))
        self.publisher.emit(event)
        self.metrics_log.write({"kind": "val", "time": time.time(), **msgspec.structs.asdict(event)})
        return event.val_loss

    def save_checkpoint(self, quest: str | None) -> None:
        """Save, record, prune. A full disk: retention frees room and the save is retried; if it
        still fails, training pauses with the reason in the status until a save fits (nothing is
        lost but the steps since the last checkpoint, and only if the trainer is then killed)."""
        if not self.engine.is_main:
            return
        if not self.engine.weights_finite():  # the newest checkpoint must stay one worth loading
            self.pause_for(
                f"checkpoint at step {self.engine.step} not saved: the weights hold inf/nan; "
                "the checkpoints saved before are intact. Lower train.lr, then restart the trainer"
            )
            return
        self.engine.progress = {"examples": dict(self.progress), "active": quest}
        try:
            info = self.checkpointer.save(_sidecar(self.publisher.state, quest, self.config.model.name))
        except DiskFull as exc:
            self.disk.save_owed = True
            self.disk.pause(str(exc), exc.watch)
            return
        self.saved_step = self.engine.step
        log.info("saved %s", info.name)
        self.publisher.emit(CheckpointSaved(checkpoint=info))
        self.scorer.score(info.step)
        self.checkpointer.prune()
        self.promoter.after_save()

    def checkpoint_for_eval(self) -> int | None:
        """The step of a checkpoint holding the current weights (an oracle eval names it),
        saved now when this step has none; None when the save failed (e.g. disk full)."""
        self.save_unsaved_steps()
        return self.engine.step if self.saved_step == self.engine.step else None

    def save_unsaved_steps(self) -> None:
        if self.saved_step != self.engine.step:
            quest = self.publisher.state.battle.quest
            self.save_checkpoint(quest=quest.name if quest else None)


def _sidecar(state, quest: str | None, model: str) -> dict:
    """What the vault keeps beside a checkpoint's weights."""
    return {
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
        "model": model,
    }
