"""The one reducer: each event's effect, purity, caps, and the Clone property."""

from __future__ import annotations

import random

import msgspec
import pytest

from realm.protocol import (
    BattleChanged,
    BattleState,
    BoardState,
    CheckpointInfo,
    CheckpointSaved,
    HeroState,
    LogLine,
    Notice,
    QuestFinished,
    QuestInfo,
    QuestQueued,
    QuestResult,
    QuestStarted,
    QueueChanged,
    RealmState,
    Snapshot,
    StepMetrics,
    TrainerInfo,
    TrainerStarted,
    ValMetrics,
    VaultState,
    decode_reply,
    encode,
)
from realm.state import EMA_WEIGHT, LOG_LINES, LOSS_HISTORY, RECENT_QUESTS, apply

TRAINER = TrainerInfo(model="builtin:dio-nano", device="cpu", parameters=1000, pid=1, started=100.0)


def step(n: int, loss: float = 2.0, quest_step: int = 0, quest_total: int = 10) -> StepMetrics:
    return StepMetrics(
        step=n,
        loss=loss,
        lr=1e-3,
        grad_norm=0.5,
        tokens=100,
        tokens_per_s=1000.0,
        examples_per_s=10.0,
        quest_step=quest_step,
        quest_total=quest_total,
    )


def quest(name: str, examples: int = 8, priority: str = "normal") -> QuestInfo:
    return QuestInfo(name=name, examples=examples, priority=priority)


def ckpt(step_: int, name: str | None = None, loss: float | None = None) -> CheckpointInfo:
    return CheckpointInfo(step=step_, name=name or f"checkpoint-{step_}", time=float(step_), train_loss=loss)


def run_all(events, state: RealmState | None = None, t0: float = 0.0) -> RealmState:
    state = state if state is not None else RealmState(run="r")
    for i, event in enumerate(events):
        state = apply(state, event, t0 + i)
    return state


# --------------------------------------------------------------------------- each event


def test_trainer_started():
    old = RealmState(
        run="r",
        hero=HeroState(steps=5, loss_ema=1.0),
        battle=BattleState(status="training", loss=1.0, losses=((5, 1.0),)),
        board=BoardState(queued=(quest("a"),)),
        vault=VaultState(checkpoints=(ckpt(1),)),
    )
    ev = TrainerStarted(trainer=TRAINER, step=400, checkpoints=(ckpt(200), ckpt(400)), quests_completed=4)
    new = apply(old, ev, 12.5)
    assert new.trainer == TRAINER
    assert new.hero.steps == 400 and new.hero.quests_completed == 4
    assert new.hero.loss_ema == 1.0  # the smoothed loss is not forgotten
    assert new.battle == BattleState(status="starting")  # a new battle view, no stale loss
    assert new.vault.checkpoints == (ckpt(200), ckpt(400))  # the trainer's vault replaces ours
    assert new.board == old.board
    assert new.log[-1] == LogLine(time=12.5, level="info", text="DIO awakens at step 400 (builtin:dio-nano on cpu)")
    assert new.run == "r"


def test_battle_changed():
    state = apply(RealmState(), BattleChanged(status="paused", reason="by request"), 3.0)
    assert state.battle.status == "paused"
    assert state.log == (LogLine(time=3.0, level="info", text="battle paused: by request"),)
    state = apply(state, BattleChanged(status="idle"), 4.0)
    assert state.battle.status == "idle"
    assert state.log[-1].text == "battle idle"


def test_quest_queued_keeps_the_training_order_of_priorities():
    state = run_all(
        [
            QuestQueued(quest=quest(name, priority=p))
            for name, p in [
                ("n1", "normal"),
                ("l1", "low"),
                ("n2", "normal"),
                ("h1", "high"),
                ("l2", "low"),
                ("h2", "high"),
            ]
        ]
    )
    assert [q.name for q in state.board.queued] == ["h1", "h2", "n1", "n2", "l1", "l2"]


def test_queue_changed_replaces_the_queue_as_sent():
    state = run_all([QuestQueued(quest=quest("a")), QuestQueued(quest=quest("b"))])
    state = apply(state, QueueChanged(queued=(quest("b", priority="high"), quest("c"))))
    assert [(q.name, q.priority) for q in state.board.queued] == [("b", "high"), ("c", "normal")]
    assert state.log == ()


def test_quest_queued_appends_and_dedupes_by_name():
    state = run_all([QuestQueued(quest=quest("a")), QuestQueued(quest=quest("b"))])
    assert [q.name for q in state.board.queued] == ["a", "b"]
    state = apply(state, QuestQueued(quest=quest("a", examples=99)))
    assert [q.name for q in state.board.queued] == ["b", "a"]  # re-queued: moved to the back, updated
    assert state.board.queued[-1].examples == 99
    assert state.log == ()  # queueing is board news, not a log line


def test_quest_started():
    state = run_all([QuestQueued(quest=quest("a")), QuestQueued(quest=quest("b"))])
    state = apply(state, QuestStarted(quest=quest("a"), total_steps=40), 9.0)
    assert [q.name for q in state.board.queued] == ["b"]
    assert state.battle.status == "training"
    assert state.battle.quest == quest("a")
    assert (state.battle.quest_step, state.battle.quest_total) == (0, 40)
    assert state.log[-1] == LogLine(time=9.0, level="info", text="DIO enters battle: a — 8 rows, 40 steps")
    state = apply(state, QuestStarted(quest=quest("b"), total_steps=1), 10.0)
    assert state.log[-1].text == "DIO enters battle: b — 8 rows, 1 step"


def test_step_metrics():
    state = apply(RealmState(), step(7, loss=2.5, quest_step=3, quest_total=10))
    assert state.hero.steps == 7
    assert state.hero.loss_ema == 2.5  # the first loss seeds the EMA
    battle = state.battle
    assert battle.status == "training"
    assert (battle.quest_step, battle.quest_total) == (3, 10)
    assert (battle.loss, battle.lr, battle.grad_norm) == (2.5, 1e-3, 0.5)
    assert (battle.tokens_per_s, battle.examples_per_s) == (1000.0, 10.0)
    assert battle.losses == ((7, 2.5),)
    assert state.log == ()  # steps are too frequent for the log


def test_ema_math():
    state = run_all([step(1, 2.0), step(2, 1.0)])
    assert state.hero.loss_ema == pytest.approx((1 - EMA_WEIGHT) * 2.0 + EMA_WEIGHT * 1.0)
    losses = [4.0, 3.0, 3.5, 1.0, 0.5]
    state = run_all([step(i, loss) for i, loss in enumerate(losses)])
    ema = losses[0]
    for loss in losses[1:]:
        ema = (1 - EMA_WEIGHT) * ema + EMA_WEIGHT * loss
    assert state.hero.loss_ema == pytest.approx(ema)
    assert state.battle.loss == 0.5  # the raw loss is the latest, unsmoothed


def test_ema_constant_loss_stays_put():
    assert run_all([step(i, 1.25) for i in range(50)]).hero.loss_ema == pytest.approx(1.25)


def test_val_metrics():
    state = run_all([ValMetrics(step=50, val_loss=2.0), ValMetrics(step=100, val_loss=1.5)])
    assert state.hero.val_loss == 1.5
    assert state.battle.val_losses == ((50, 2.0), (100, 1.5))
    assert state.hero.steps == 0  # validation does not advance XP


def test_quest_finished_clears_current_quest():
    state = run_all([QuestQueued(quest=quest("a")), QuestStarted(quest=quest("a"), total_steps=5), step(5, 1.0, 5, 5)])
    result = QuestResult(name="a", outcome="done", steps=5, time=10.0)
    state = apply(state, QuestFinished(result=result), 10.0)
    assert state.battle.quest is None
    assert (state.battle.quest_step, state.battle.quest_total) == (0, 0)
    assert state.board.recent == (result,)
    assert state.hero.quests_completed == 1
    assert state.log[-1] == LogLine(
        time=10.0, level="info", text="Victory: a — 8 rows, 5 steps"
    )  # 1 of its 5 losses held: no loss said


def test_quest_finished_other_name_keeps_current_quest():
    state = run_all([QuestQueued(quest=quest("b")), QuestStarted(quest=quest("a"), total_steps=5)])
    state = apply(state, QuestFinished(result=QuestResult(name="b", outcome="skipped", reason="removed")))
    assert state.battle.quest == quest("a")
    assert state.board.queued == ()  # a finished quest leaves the board even if never started
    assert state.log[-1].text == "Retreat: b (removed)"


def test_only_done_counts_as_completed():
    events = [
        QuestFinished(result=QuestResult(name="a", outcome="done")),
        QuestFinished(result=QuestResult(name="b", outcome="skipped")),
        QuestFinished(result=QuestResult(name="c", outcome="failed", reason="bad file")),
        QuestFinished(result=QuestResult(name="d", outcome="done")),
    ]
    state = run_all(events)
    assert state.hero.quests_completed == 2
    assert type(state.hero.quests_completed) is int
    assert [r.name for r in state.board.recent] == ["a", "b", "c", "d"]
    assert state.log[2] == LogLine(time=2.0, level="warning", text="Defeat: c (bad file)")
    assert [line.level for line in state.log] == ["info", "info", "warning", "info"]


def test_recent_quests_capped():
    state = run_all([QuestFinished(result=QuestResult(name=f"q{i}", outcome="done")) for i in range(RECENT_QUESTS + 7)])
    assert len(state.board.recent) == RECENT_QUESTS
    assert state.board.recent[-1].name == f"q{RECENT_QUESTS + 6}"
    assert state.board.recent[0].name == "q7"
    assert state.hero.quests_completed == RECENT_QUESTS + 7  # the count is not capped


def test_checkpoint_saved_appends():
    state = run_all([CheckpointSaved(checkpoint=ckpt(100)), CheckpointSaved(checkpoint=ckpt(200))])
    assert [c.step for c in state.vault.checkpoints] == [100, 200]
    assert state.notices[-1].text == "vault: saved checkpoint-200"  # housekeeping: a folder name
    assert state.log == ()


def test_checkpoint_saved_replaces_same_step():
    state = run_all([CheckpointSaved(checkpoint=ckpt(100)), CheckpointSaved(checkpoint=ckpt(200))])
    again = ckpt(100, name="checkpoint-100-again", loss=0.5)
    state = apply(state, CheckpointSaved(checkpoint=again))
    assert [c.step for c in state.vault.checkpoints] == [200, 100]  # newest last, no duplicate
    assert state.vault.checkpoints[-1] == again


def test_notice():
    state = apply(RealmState(), Notice(level="error", text="disk full"), 5.0)
    assert state.notices == (LogLine(time=5.0, level="error", text="disk full"),)


def test_unknown_event_leaves_state_alone():
    state = RealmState(run="r")
    assert apply(state, object()) is state  # type: ignore[arg-type]


def test_time_defaults_to_zero():
    assert apply(RealmState(), Notice(level="info", text="x")).notices[0].time == 0.0


# --------------------------------------------------------------------------- caps


def test_loss_history_capped():
    state = run_all([step(i, float(i)) for i in range(LOSS_HISTORY + 50)])
    assert len(state.battle.losses) == LOSS_HISTORY
    assert state.battle.losses[0] == (50, 50.0)
    assert state.battle.losses[-1] == (LOSS_HISTORY + 49, float(LOSS_HISTORY + 49))


def test_val_history_capped():
    state = run_all([ValMetrics(step=i, val_loss=1.0) for i in range(LOSS_HISTORY + 3)])
    assert len(state.battle.val_losses) == LOSS_HISTORY
    assert state.battle.val_losses[0] == (3, 1.0)


def test_notices_capped_apart_from_the_story():
    state = run_all(
        [BattleChanged(status="paused")] + [Notice(level="info", text=f"n{i}") for i in range(LOG_LINES + 25)]
    )
    assert len(state.notices) == LOG_LINES
    assert state.notices[0].text == "n25"
    assert state.notices[-1].text == f"n{LOG_LINES + 24}"
    assert [line.text for line in state.log] == ["battle paused"]  # a flood of housekeeping keeps the story


def test_story_log_capped():
    state = run_all([BattleChanged(status="paused", reason=f"r{i}") for i in range(LOG_LINES + 25)])
    assert len(state.log) == LOG_LINES
    assert state.log[0].text == "battle paused: r25"


# --------------------------------------------------------------------------- purity


def _all_kinds_of_events() -> list:
    return [
        TrainerStarted(trainer=TRAINER, step=0, checkpoints=(ckpt(0),)),
        BattleChanged(status="idle"),
        QuestQueued(quest=quest("a")),
        QuestQueued(quest=quest("b")),
        QuestStarted(quest=quest("a"), total_steps=3),
        step(1, 3.0, 1, 3),
        step(2, 2.0, 2, 3),
        ValMetrics(step=2, val_loss=2.5),
        step(3, 1.0, 3, 3),
        QuestFinished(result=QuestResult(name="a", outcome="done", steps=3)),
        CheckpointSaved(checkpoint=ckpt(3)),
        CheckpointSaved(checkpoint=ckpt(3, name="again")),
        Notice(level="warning", text="hot"),
        BattleChanged(status="paused", reason="user"),
    ]


def test_apply_does_not_change_its_input():
    state = RealmState(run="r")
    for i, event in enumerate(_all_kinds_of_events()):
        before = encode(state)
        event_before = encode(event)
        new = apply(state, event, float(i))
        assert encode(state) == before, f"{type(event).__name__} mutated the state"
        assert encode(event) == event_before
        assert new is not state
        state = new


def test_apply_is_deterministic():
    events = _all_kinds_of_events()
    assert run_all(events) == run_all(events)
    assert encode(run_all(events)) == encode(run_all(events))


def test_state_is_frozen():
    state = run_all(_all_kinds_of_events())
    for obj in (state, state.hero, state.battle, state.board, state.vault, state.log[0], state.trainer):
        name = msgspec.structs.fields(type(obj))[0].name
        with pytest.raises(AttributeError):
            setattr(obj, name, getattr(obj, name))
    assert isinstance(state.battle.losses, tuple)
    assert isinstance(state.board.queued, tuple)
    assert isinstance(state.log, tuple)


def test_state_is_hashable_and_comparable():
    a, b = run_all(_all_kinds_of_events()), run_all(_all_kinds_of_events())
    assert a == b and hash(a) == hash(b)


# --------------------------------------------------------------------------- the Clone property


def _random_events(rng: random.Random, n: int) -> list:
    names = [f"quest-{i}" for i in range(6)]
    events = [TrainerStarted(trainer=TRAINER, step=0)]
    steps = 0
    for _ in range(n):
        kind = rng.randrange(9)
        name = rng.choice(names)
        if kind <= 2:
            steps += 1
            events.append(step(steps, rng.uniform(0.1, 5.0), rng.randrange(10), 10))
        elif kind == 3:
            events.append(ValMetrics(step=steps, val_loss=rng.uniform(0.1, 5.0)))
        elif kind == 4:
            events.append(QuestQueued(quest=quest(name, rng.randrange(1, 99), rng.choice(["high", "normal", "low"]))))
        elif kind == 5:
            events.append(QuestStarted(quest=quest(name), total_steps=rng.randrange(1, 50)))
        elif kind == 6:
            outcome = rng.choice(["done", "skipped", "failed"])
            events.append(QuestFinished(result=QuestResult(name=name, outcome=outcome, steps=steps)))
        elif kind == 7:
            events.append(CheckpointSaved(checkpoint=ckpt(rng.randrange(0, steps + 1))))
        else:
            events.append(
                rng.choice(
                    [
                        Notice(level=rng.choice(["info", "warning", "error"]), text=f"n{rng.random()}"),
                        BattleChanged(status=rng.choice(["idle", "training", "paused", "stopping"])),
                    ]
                )
            )
    return events


@pytest.mark.parametrize("seed", range(5))
def test_snapshot_midway_then_rest_equals_all(seed):
    """A mirror that snapshots at any point and applies the rest ends where the trainer is."""
    rng = random.Random(seed)
    events = _random_events(rng, 800)
    times = [1000.0 + i * 0.5 for i in range(len(events))]
    full = RealmState(run="r")
    for event, t in zip(events, times):
        full = apply(full, event, t)
    for cut in sorted({0, 1, len(events) // 2, len(events) - 1, len(events), *rng.sample(range(len(events)), 8)}):
        state = RealmState(run="r")
        for event, t in zip(events[:cut], times[:cut]):
            state = apply(state, event, t)
        # the snapshot crosses the wire, as it does for a TUI
        snap = decode_reply(encode(Snapshot(run="r", seq=cut, state=state)))
        mirrored = snap.state
        for event, t in zip(events[snap.seq :], times[snap.seq :]):
            mirrored = apply(mirrored, event, t)
        assert mirrored == full, f"diverged after a snapshot at {cut}"
    assert len(full.battle.losses) == min(LOSS_HISTORY, sum(isinstance(e, StepMetrics) for e in events))
