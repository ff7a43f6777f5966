"""The one reducer: ``apply(state, event) -> state``.

The trainer applies each event to its own state before publishing it; every TUI applies the
same events to the snapshot it fetched. Because both run this function, they cannot disagree.
It is pure: it never mutates its input and reads no clock, file or socket.
"""

from __future__ import annotations

from msgspec.structs import replace

from realm.protocol import (
    AchievementsRestored,
    AchievementUnlocked,
    ConfigChanged,
    BattleChanged,
    BattleState,
    BoardState,
    CheckpointSaved,
    Event,
    LogLine,
    Notice,
    QuestFinished,
    QuestQueued,
    QuestStarted,
    RealmState,
    StepMetrics,
    TrainerStarted,
    ValMetrics,
    VaultState,
)

__all__ = ["RealmState", "apply", "LOSS_HISTORY", "LOG_LINES", "RECENT_QUESTS", "EMA_WEIGHT"]

LOSS_HISTORY = 300
LOG_LINES = 200
RECENT_QUESTS = 20
EMA_WEIGHT = 0.1  # weight of the newest loss in the smoothed loss behind ATK


def apply(state: RealmState, event: Event, time: float = 0.0) -> RealmState:
    """Return the state after ``event``; ``time`` is the envelope's time, used for the log."""
    handler = _HANDLERS.get(type(event))
    if handler is None:
        return state
    return handler(state, event, time)


def _log(state: RealmState, time: float, level: str, text: str) -> tuple[LogLine, ...]:
    return (*state.log, LogLine(time=time, level=level, text=text))[-LOG_LINES:]


def _trainer_started(state: RealmState, ev: TrainerStarted, time: float) -> RealmState:
    hero = replace(state.hero, steps=ev.step, quests_completed=ev.quests_completed)
    return replace(
        state,
        trainer=ev.trainer,
        hero=hero,
        battle=BattleState(status="starting"),
        vault=VaultState(checkpoints=ev.checkpoints),
        log=_log(state, time, "info", f"DIO awakens at step {ev.step} ({ev.trainer.model} on {ev.trainer.device})"),
    )


def _battle_changed(state: RealmState, ev: BattleChanged, time: float) -> RealmState:
    battle = replace(state.battle, status=ev.status)
    text = f"battle {ev.status}" + (f": {ev.reason}" if ev.reason else "")
    return replace(state, battle=battle, log=_log(state, time, "info", text))


def _quest_queued(state: RealmState, ev: QuestQueued, time: float) -> RealmState:
    queued = tuple(q for q in state.board.queued if q.name != ev.quest.name) + (ev.quest,)
    return replace(state, board=replace(state.board, queued=queued))


def _quest_started(state: RealmState, ev: QuestStarted, time: float) -> RealmState:
    queued = tuple(q for q in state.board.queued if q.name != ev.quest.name)
    battle = replace(state.battle, status="training", quest=ev.quest, quest_step=0, quest_total=ev.total_steps)
    return replace(
        state,
        battle=battle,
        board=replace(state.board, queued=queued),
        log=_log(state, time, "info", f"DIO enters battle: {ev.quest.name} ({ev.total_steps} steps)"),
    )


def _step(state: RealmState, ev: StepMetrics, time: float) -> RealmState:
    old = state.hero.loss_ema
    ema = ev.loss if old is None else (1 - EMA_WEIGHT) * old + EMA_WEIGHT * ev.loss
    hero = replace(state.hero, steps=ev.step, loss_ema=ema)
    battle = replace(
        state.battle,
        status="training",
        quest_step=ev.quest_step,
        quest_total=ev.quest_total,
        loss=ev.loss,
        lr=ev.lr,
        grad_norm=ev.grad_norm,
        tokens_per_s=ev.tokens_per_s,
        examples_per_s=ev.examples_per_s,
        losses=(*state.battle.losses, (ev.step, ev.loss))[-LOSS_HISTORY:],
    )
    return replace(state, hero=hero, battle=battle)


def _val(state: RealmState, ev: ValMetrics, time: float) -> RealmState:
    hero = replace(state.hero, val_loss=ev.val_loss)
    battle = replace(state.battle, val_losses=(*state.battle.val_losses, (ev.step, ev.val_loss))[-LOSS_HISTORY:])
    return replace(state, hero=hero, battle=battle)


def _quest_finished(state: RealmState, ev: QuestFinished, time: float) -> RealmState:
    result = ev.result
    completed = state.hero.quests_completed + (result.outcome == "done")
    queued = tuple(q for q in state.board.queued if q.name != result.name)
    board = BoardState(queued=queued, recent=(*state.board.recent, result)[-RECENT_QUESTS:])
    battle = state.battle
    if battle.quest is not None and battle.quest.name == result.name:
        battle = replace(battle, quest=None, quest_step=0, quest_total=0)
    text = f"quest {result.name}: {result.outcome}" + (f" ({result.reason})" if result.reason else "")
    level = "warning" if result.outcome == "failed" else "info"
    return replace(
        state,
        hero=replace(state.hero, quests_completed=completed),
        battle=battle,
        board=board,
        log=_log(state, time, level, text),
    )


def _checkpoint_saved(state: RealmState, ev: CheckpointSaved, time: float) -> RealmState:
    kept = tuple(c for c in state.vault.checkpoints if c.step != ev.checkpoint.step)
    vault = VaultState(checkpoints=(*kept, ev.checkpoint))
    return replace(state, vault=vault, log=_log(state, time, "info", f"vault: saved {ev.checkpoint.name}"))


def _notice(state: RealmState, ev: Notice, time: float) -> RealmState:
    return replace(state, log=_log(state, time, ev.level, ev.text))


# --------------------------------------------------------------------------- tui: achievements, armory


def _achievements_restored(state: RealmState, ev: AchievementsRestored, time: float) -> RealmState:
    return replace(state, achievements=ev.achievements)


def _achievement_unlocked(state: RealmState, ev: AchievementUnlocked, time: float) -> RealmState:
    earned = tuple(a for a in state.achievements if a.id != ev.achievement.id) + (ev.achievement,)
    text = f"achievement unlocked: {ev.achievement.name}"
    return replace(state, achievements=earned, log=_log(state, time, "info", text))


def _config_changed(state: RealmState, ev: ConfigChanged, time: float) -> RealmState:
    if not ev.changed:
        return replace(state, config=ev.config)
    values = {f.key: f.value for f in ev.config}
    text = "armory: " + ", ".join(f"{key} = {values.get(key, '?')}" for key in ev.changed)
    return replace(state, config=ev.config, log=_log(state, time, "info", text))


_HANDLERS = {
    TrainerStarted: _trainer_started,
    BattleChanged: _battle_changed,
    QuestQueued: _quest_queued,
    QuestStarted: _quest_started,
    StepMetrics: _step,
    ValMetrics: _val,
    QuestFinished: _quest_finished,
    CheckpointSaved: _checkpoint_saved,
    Notice: _notice,
    AchievementsRestored: _achievements_restored,
    AchievementUnlocked: _achievement_unlocked,
    ConfigChanged: _config_changed,
}

assert set(_HANDLERS) == set(Event.__args__), "every event needs a handler"  # type: ignore[attr-defined]
