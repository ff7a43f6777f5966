"""Narration: a Progress Quest style line for a notable event, built only from its numbers.

``narrate`` is pure: the same event and state give the same line. Most steps say nothing (a
flood of 1000 steps a second must not flood the chronicle); every ``STEP_EVERY``-th step does.
"""

from __future__ import annotations

from realm.protocol import (
    AchievementUnlocked,
    BattleChanged,
    ChampionChanged,
    CheckpointSaved,
    CheckpointScored,
    ConfigChanged,
    Event,
    QuestFinished,
    QuestStarted,
    StepMetrics,
    TrainerStarted,
    ValMetrics,
)

STEP_EVERY = 50
_FOES = ("goblin", "wraith", "gradient imp", "loss hydra", "token swarm", "perplexity golem", "overfit slime")
_BLOWS = ("cleaves", "smites", "parries and strikes", "lunges at", "hammers", "outwits")


def _pick(options: tuple[str, ...], n: int) -> str:
    return options[n % len(options)]


def narrate(event: Event, steps_per_level: int = 1000) -> str | None:
    if isinstance(event, StepMetrics):
        if event.step % steps_per_level == 0:
            return f"DIO feels stronger: level {1 + event.step // steps_per_level} at step {event.step:,}!"
        if event.step % STEP_EVERY:
            return None
        foe = _pick(_FOES, event.step // STEP_EVERY)
        blow = _pick(_BLOWS, event.step // STEP_EVERY + 3)
        return f"Step {event.step:,}: DIO {blow} a {foe} for {event.loss:.3f} damage"
    if isinstance(event, QuestStarted):
        return f"DIO sets out against {event.quest.name}: {event.total_steps:,} foes await"
    if isinstance(event, QuestFinished):
        r = event.result
        if r.outcome == "done":
            return f"Quest {r.name} is won in {r.steps:,} steps. +100 gold"
        if r.outcome == "failed":
            return f"Quest {r.name} is lost: {r.reason or 'no reason given'}"
        return f"DIO walks away from {r.name}"
    if isinstance(event, ValMetrics):
        return f"DIO tests himself on the quest's held-out lines: quest val {event.val_loss:.3f}"
    if isinstance(event, CheckpointSaved):
        return f"DIO rests at a shrine; the vault keeps {event.checkpoint.name}"
    if isinstance(event, CheckpointScored):
        loss = event.suite.loss
        accuracy = event.suite.accuracy
        said = [f"suite loss {loss:.3f}" if loss is not None else "", f"{accuracy:.0%} of the frozen trials" if accuracy is not None else ""]
        return f"The judges weigh checkpoint {event.step:,}: " + ", ".join(p for p in said if p)
    if isinstance(event, ChampionChanged) and event.step is not None:
        return f"Checkpoint {event.step:,} is crowned champion (score {event.score:.3f})"
    if isinstance(event, BattleChanged):
        return {
            "paused": "DIO lowers his sword and waits",
            "training": "DIO takes up his sword again",
            "idle": "DIO rests at camp; no quest calls",
            "stopping": "DIO breaks camp",
            "stopped": "DIO sleeps",
        }.get(event.status)
    if isinstance(event, AchievementUnlocked):
        return f"★ Achievement: {event.achievement.name}"
    if isinstance(event, TrainerStarted):
        return f"DIO awakens at step {event.step:,}"
    if isinstance(event, ConfigChanged) and event.changed:
        return f"The armourer adjusts DIO's gear: {', '.join(event.changed)}"
    return None
