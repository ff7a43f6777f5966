"""The one reducer: ``apply(state, event) -> state``, and the facts derived from states.

The trainer applies each event to its own state before publishing it; every TUI applies the
same events to the snapshot it fetched. Because both run this function, they cannot disagree.
It is pure: it never mutates its input and reads no clock, file or socket. The line an
event adds is ``narrate``'s, to the story's ``log`` or the ``notices`` as ``policy`` says;
``level_up`` says which level DIO reached between two states.
"""

from __future__ import annotations

from msgspec.structs import replace

from realm.game.hero import hero_level
from realm.game.milestones import RECENT_MILESTONES
from realm.game.narration import narrate, policy
from realm.protocol import (
    AchievementsRestored,
    AchievementUnlocked,
    BattleChanged,
    BattleState,
    BoardState,
    ChampionChanged,
    CheckpointDeleted,
    CheckpointSaved,
    CheckpointScored,
    CheckpointsPruned,
    ConfigChanged,
    Event,
    GoldSpent,
    LineageCount,
    LineageCounted,
    LogLine,
    MilestoneReached,
    Notice,
    OracleLoaded,
    OracleLoadFailed,
    OracleLoading,
    OracleStarted,
    OracleState,
    OracleTelemetry,
    OracleUnloaded,
    QuestFinished,
    QuestQueued,
    QuestStarted,
    QueueChanged,
    RealmState,
    SkillEvalPoint,
    SkillEvaluated,
    SkillLevelUp,
    SkillsLoaded,
    SkillState,
    SkillUnlocked,
    StepMetrics,
    TrainerStarted,
    ValMetrics,
    VaultState,
)

__all__ = ["RealmState", "apply", "every_line", "level_up", "LOSS_HISTORY", "LOG_LINES", "RECENT_QUESTS", "EMA_WEIGHT"]

LOSS_HISTORY = 300
LOG_LINES = 200
RECENT_QUESTS = 20
EMA_WEIGHT = 0.1  # weight of the newest loss in the smoothed loss behind ATK
SKILL_HISTORY = 60  # eval rounds kept per skill in the state


def apply(state: RealmState, event: Event, time: float = 0.0) -> RealmState:
    """Return the state after ``event``; ``time`` is the envelope's time, used for the log."""
    handler = _HANDLERS.get(type(event))
    if handler is None:
        return state
    before, state = state, handler(state, event, time)
    line = narrate(event, before)
    if line is None:
        return state
    level, text = line
    said = LogLine(time=time, level=level, text=text)
    if policy(event).audience == "story":
        return replace(state, log=(*state.log, said)[-LOG_LINES:])
    return replace(state, notices=(*state.notices, said)[-LOG_LINES:])


def every_line(state: RealmState) -> tuple[LogLine, ...]:
    """The story and the notices together, oldest first (the Watchtower's raw log)."""
    return tuple(sorted((*state.log, *state.notices), key=lambda line: line.time))


def level_up(before: RealmState, after: RealmState) -> int | None:
    """The level DIO reached going from ``before`` to ``after``, or None when he reached none.

    Only within one trainer's life: a (re)started trainer's first state is where counting
    starts, not a level-up."""
    if before.trainer is None or after.trainer != before.trainer:
        return None
    reached = hero_level(after)
    return reached if reached > hero_level(before) else None


def _trainer_started(state: RealmState, ev: TrainerStarted, time: float) -> RealmState:
    scored = [c.suite for c in ev.checkpoints if c.suite is not None]
    hero = replace(
        state.hero,
        steps=ev.step,
        quests_completed=ev.quests_completed,
        suite=scored[-1] if scored else None,
        milestones=ev.milestones,
        gold_spent=ev.gold_spent,
    )
    return replace(
        state,
        trainer=ev.trainer,
        hero=hero,
        battle=BattleState(status="starting"),
        vault=VaultState(checkpoints=ev.checkpoints, champion=ev.champion),
        milestones=ev.recent_milestones[-RECENT_MILESTONES:],
        board=replace(state.board, recent=ev.recent_quests[-RECENT_QUESTS:]),
    )


def _battle_changed(state: RealmState, ev: BattleChanged, time: float) -> RealmState:
    return replace(state, battle=replace(state.battle, status=ev.status, reason=ev.reason))


def _quest_queued(state: RealmState, ev: QuestQueued, time: float) -> RealmState:
    # The queue trains high before normal before low, FIFO within each: a newcomer goes after
    # the last quest of its own or a higher priority.
    others = [q for q in state.board.queued if q.name != ev.quest.name]
    rank = _PRIORITY_RANK[ev.quest.priority]
    place = sum(1 for q in others if _PRIORITY_RANK[q.priority] <= rank)
    queued = (*others[:place], ev.quest, *others[place:])
    return replace(state, board=replace(state.board, queued=queued))


_PRIORITY_RANK = {"high": 0, "normal": 1, "low": 2}


def _queue_changed(state: RealmState, ev: QueueChanged, time: float) -> RealmState:
    return replace(state, board=replace(state.board, queued=ev.queued))


def _quest_started(state: RealmState, ev: QuestStarted, time: float) -> RealmState:
    queued = tuple(q for q in state.board.queued if q.name != ev.quest.name)
    battle = replace(
        state.battle,
        status="training",
        reason="",
        quest=ev.quest,
        quest_step=0,
        quest_total=ev.total_steps,
        quest_epoch=0,
        quest_epochs=0,
    )
    return replace(
        state,
        hero=replace(state.hero, val_loss=None),  # a quest val loss belongs to its own quest
        battle=battle,
        board=replace(state.board, queued=queued),
    )


def _step(state: RealmState, ev: StepMetrics, time: float) -> RealmState:
    old = state.hero.loss_ema
    ema = ev.loss if old is None else (1 - EMA_WEIGHT) * old + EMA_WEIGHT * ev.loss
    hero = replace(state.hero, steps=ev.step, loss_ema=ema)
    battle = replace(
        state.battle,
        status="training",
        reason="",
        quest_step=ev.quest_step,
        quest_total=ev.quest_total,
        quest_epoch=ev.quest_epoch,
        quest_epochs=ev.quest_epochs,
        loss=ev.loss,
        lr=ev.lr,
        grad_norm=ev.grad_norm,
        tokens_per_s=ev.tokens_per_s,
        examples_per_s=ev.examples_per_s,
        mfu=ev.mfu,
        gpu_memory_mb=ev.gpu_memory_mb,
        gpu=ev.gpu,
        gpu_note=ev.gpu_note,
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
        battle = replace(battle, quest=None, quest_step=0, quest_total=0, quest_epoch=0, quest_epochs=0)
    return replace(state, hero=replace(state.hero, quests_completed=completed), battle=battle, board=board)


def _checkpoint_saved(state: RealmState, ev: CheckpointSaved, time: float) -> RealmState:
    kept = tuple(c for c in state.vault.checkpoints if c.step != ev.checkpoint.step)
    return replace(state, vault=replace(state.vault, checkpoints=(*kept, ev.checkpoint)))


def _checkpoint_scored(state: RealmState, ev: CheckpointScored, time: float) -> RealmState:
    checkpoints = tuple(replace(c, suite=ev.suite) if c.step == ev.step else c for c in state.vault.checkpoints)
    newest = max((c.step for c in checkpoints if c.suite is not None), default=None)
    hero = replace(state.hero, suite=ev.suite) if newest is None or ev.step >= newest else state.hero
    return replace(state, hero=hero, vault=replace(state.vault, checkpoints=checkpoints))


def _champion_changed(state: RealmState, ev: ChampionChanged, time: float) -> RealmState:
    return replace(state, vault=replace(state.vault, champion=ev.step))


def _checkpoints_pruned(state: RealmState, ev: CheckpointsPruned, time: float) -> RealmState:
    gone = set(ev.steps)
    vault = replace(state.vault, checkpoints=tuple(c for c in state.vault.checkpoints if c.step not in gone))
    return replace(state, vault=vault)


def _notice(state: RealmState, ev: Notice, time: float) -> RealmState:
    return state  # its words are the whole of it: the log line


# --------------------------------------------------------------------------- skills


def _skills_loaded(state: RealmState, ev: SkillsLoaded, time: float) -> RealmState:
    return replace(state, skills=ev.skills)


def _with_skill(state: RealmState, skill_id: str, change) -> RealmState:
    skills = state.skills.skills
    if not any(s.id == skill_id for s in skills):
        skills = (*skills, SkillState(id=skill_id))
    skills = tuple(change(s) if s.id == skill_id else s for s in skills)
    return replace(state, skills=replace(state.skills, skills=skills))


def _skill_evaluated(state: RealmState, ev: SkillEvaluated, time: float) -> RealmState:
    points = [
        SkillEvalPoint(level=ev.level, step=ev.step, accuracy=ev.accuracy, probe=ev.probe, probe_items=ev.probe_items)
    ]
    if ev.next_accuracy is not None:
        points.append(SkillEvalPoint(level=ev.level + 1, step=ev.step, accuracy=ev.next_accuracy))

    def change(skill: SkillState) -> SkillState:
        return replace(
            skill,
            accuracy=ev.accuracy,
            history=(*skill.history, *points)[-SKILL_HISTORY:],
            last_items=ev.items,
            next_eval_step=ev.next_eval_step,
        )

    state = _with_skill(state, ev.skill, change)
    skills = replace(
        state.skills,
        eval_seconds=state.skills.eval_seconds + ev.seconds,
        train_seconds=state.skills.train_seconds + ev.train_seconds,
    )
    return replace(state, skills=skills)


def _skill_level_up(state: RealmState, ev: SkillLevelUp, time: float) -> RealmState:
    return _with_skill(state, ev.skill, lambda s: replace(s, level=ev.level, accuracy=None, last_items=()))


def _skill_unlocked(state: RealmState, ev: SkillUnlocked, time: float) -> RealmState:
    return _with_skill(state, ev.skill, lambda s: replace(s, waits_for="", waits_level=0))


def _lineage_counted(state: RealmState, ev: LineageCounted, time: float) -> RealmState:
    totals = {(c.generator, c.validator): c.count for c in state.skills.lineage}
    for c in ev.counts:
        totals[(c.generator, c.validator)] = totals.get((c.generator, c.validator), 0) + c.count
    lineage = tuple(LineageCount(generator=g, validator=v, count=n) for (g, v), n in sorted(totals.items()))
    return replace(state, skills=replace(state.skills, lineage=lineage))


# --------------------------------------------------------------------------- oracle and vault


def _oracle_started(state: RealmState, ev: OracleStarted, time: float) -> RealmState:
    return replace(state, oracle=OracleState(info=ev.info))


def _oracle_loading(state: RealmState, ev: OracleLoading, time: float) -> RealmState:
    return replace(state, oracle=replace(state.oracle, loading=ev.ref))


def _oracle_loaded(state: RealmState, ev: OracleLoaded, time: float) -> RealmState:
    return replace(state, oracle=replace(state.oracle, serving=ev.serving, loading=None, last_error=""))


def _oracle_load_failed(state: RealmState, ev: OracleLoadFailed, time: float) -> RealmState:
    return replace(state, oracle=replace(state.oracle, loading=None, last_error=ev.reason))


def _oracle_unloaded(state: RealmState, ev: OracleUnloaded, time: float) -> RealmState:
    return replace(state, oracle=replace(state.oracle, serving=None))


def _oracle_telemetry(state: RealmState, ev: OracleTelemetry, time: float) -> RealmState:
    oracle = replace(
        state.oracle,
        tokens_per_s=ev.tokens_per_s,
        active=ev.active,
        queued=ev.queued,
        served=ev.served,
        gpus=ev.gpus,
        gpu_note=ev.gpu_note,
    )
    return replace(state, oracle=oracle)


def _checkpoint_deleted(state: RealmState, ev: CheckpointDeleted, time: float) -> RealmState:
    kept = tuple(c for c in state.vault.checkpoints if c.step != ev.step)
    return replace(state, vault=replace(state.vault, checkpoints=kept))


# --------------------------------------------------------------------------- tui: achievements, armory


def _achievements_restored(state: RealmState, ev: AchievementsRestored, time: float) -> RealmState:
    return replace(state, achievements=ev.achievements)


def _achievement_unlocked(state: RealmState, ev: AchievementUnlocked, time: float) -> RealmState:
    earned = tuple(a for a in state.achievements if a.id != ev.achievement.id) + (ev.achievement,)
    return replace(state, achievements=earned)


def _milestone_reached(state: RealmState, ev: MilestoneReached, time: float) -> RealmState:
    hero = replace(state.hero, milestones=state.hero.milestones + 1)
    return replace(state, hero=hero, milestones=(*state.milestones, ev.milestone)[-RECENT_MILESTONES:])


def _gold_spent(state: RealmState, ev: GoldSpent, time: float) -> RealmState:
    return replace(state, hero=replace(state.hero, gold_spent=state.hero.gold_spent + ev.price))


def _config_changed(state: RealmState, ev: ConfigChanged, time: float) -> RealmState:
    return replace(state, config=ev.config)


_HANDLERS = {
    TrainerStarted: _trainer_started,
    BattleChanged: _battle_changed,
    QuestQueued: _quest_queued,
    QuestStarted: _quest_started,
    StepMetrics: _step,
    ValMetrics: _val,
    QuestFinished: _quest_finished,
    CheckpointSaved: _checkpoint_saved,
    CheckpointScored: _checkpoint_scored,
    ChampionChanged: _champion_changed,
    Notice: _notice,
    CheckpointsPruned: _checkpoints_pruned,
    QueueChanged: _queue_changed,
    SkillsLoaded: _skills_loaded,
    SkillEvaluated: _skill_evaluated,
    SkillLevelUp: _skill_level_up,
    SkillUnlocked: _skill_unlocked,
    LineageCounted: _lineage_counted,
    OracleStarted: _oracle_started,
    OracleLoading: _oracle_loading,
    OracleLoaded: _oracle_loaded,
    OracleLoadFailed: _oracle_load_failed,
    OracleUnloaded: _oracle_unloaded,
    OracleTelemetry: _oracle_telemetry,
    CheckpointDeleted: _checkpoint_deleted,
    AchievementsRestored: _achievements_restored,
    AchievementUnlocked: _achievement_unlocked,
    ConfigChanged: _config_changed,
    MilestoneReached: _milestone_reached,
    GoldSpent: _gold_spent,
}

assert set(_HANDLERS) == set(Event.__args__), "every event needs a handler"  # type: ignore[attr-defined]
