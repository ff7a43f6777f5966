"""A recorded, deterministic event stream: a short session of DIO's life with fixed times.

Used by the screen snapshots and the TUI benchmark: the events go through the real reducer
into the app's mirror, exactly as a live trainer's would.
"""

from __future__ import annotations

from realm.protocol import (
    Achievement,
    AchievementUnlocked,
    BattleChanged,
    ChampionChanged,
    CheckpointInfo,
    CheckpointSaved,
    CheckpointScored,
    ConfigChanged,
    ConfigField,
    Envelope,
    Event,
    Notice,
    OracleInfo,
    OracleLoaded,
    OracleServing,
    OracleStarted,
    OracleTelemetry,
    QuestFinished,
    QuestInfo,
    QuestQueued,
    QuestResult,
    QuestStarted,
    SkillEvalItem,
    SkillEvaluated,
    SkillsLoaded,
    SkillsState,
    SkillState,
    StepMetrics,
    SuiteScore,
    TrainerInfo,
    TrainerStarted,
    ValMetrics,
)
from realm.state import apply

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
RUN = "demo-run"
STEPS_PER_LEVEL = 100
IDLE_QUEST = "idle-bin-L1-00000000.jsonl"  # named as trainer/skill_quests.py names them
LONG_QUEST = "reverse-words-from-the-whole-of-moby-dick-chapters-one-to-ten.jsonl"
CONFIG = (
    ConfigField(
        key="model.name", value="builtin:dio-nano", kind="fixed", help="set in the config file; read at start-up"
    ),
    ConfigField(key="train.lr", value="0.002", kind="safe", help="AdamW learning rate", overridden=True),
    ConfigField(key="train.max_length", value="256", kind="critical", help="tokens per example"),
    ConfigField(key="train.batch_size", value="16", kind="safe", help="examples per micro-batch"),
    ConfigField(key="train.val_every", value="50", kind="safe", help="validation every N steps"),
    ConfigField(key="idle.enabled", value="true", kind="safe", help="idle quests"),
)


SKILLS = SkillsState(
    active="bin",
    skills=(
        SkillState(id="bin", name="Binary", short_name="BIN", icon="⚙", level=1, max_level=10, next_eval_step=100),
        SkillState(
            id="rev", name="Reverse words", short_name="REV", icon="↺", level=2, max_level=5, next_eval_step=100
        ),
    ),
)


def bin_eval(n: int, accuracy: float) -> SkillEvaluated:
    items = (
        SkillEvalItem(prompt="Convert 5 to binary.", expected="101", response="101", correct=True),
        SkillEvalItem(prompt="Convert 12 to binary.", expected="1100", response="1110", correct=False),
        SkillEvalItem(prompt="Convert 3 to binary.", expected="11", response="11", correct=True),
    )
    return SkillEvaluated(
        skill="bin", level=1, step=n, accuracy=accuracy, next_accuracy=accuracy / 2, items=items, next_eval_step=n + 100
    )


def step(n: int, total: int = 400) -> StepMetrics:
    return StepMetrics(
        step=n,
        loss=3.0 / (1 + n / 50),
        lr=3e-3,
        grad_norm=0.5,
        tokens=4096,
        tokens_per_s=12_345.0,
        examples_per_s=45.0,
        quest_step=min(n, total),
        quest_total=total,
    )


def session(steps: int = 250) -> list[Event]:
    info = TrainerInfo(
        model="builtin:dio-nano",
        device="cpu",
        parameters=412_000,
        pid=4242,
        started=T0,
        steps_per_level=STEPS_PER_LEVEL,
    )
    events: list[Event] = [
        TrainerStarted(trainer=info, step=0),
        ConfigChanged(config=CONFIG),
        SkillsLoaded(skills=SKILLS),
        QuestQueued(quest=QuestInfo(name=LONG_QUEST, examples=512, priority="high")),
        QuestQueued(
            quest=QuestInfo(
                name="correction-bin-L1-00000000.jsonl",
                examples=24,
                source="correction",
                title="Correction · BIN L1 · 3 missed · 2-bit add",
            )
        ),
        QuestQueued(
            quest=QuestInfo(
                name="idle-bin-L1-00000400.jsonl",
                examples=256,
                priority="low",
                source="idle",
                title="BIN L1 2-4-bit add ×192 · REV L2 ×64",
            )
        ),
        QuestFinished(
            result=QuestResult(name="broken.jsonl", outcome="failed", reason="line 3: not JSON", time=T0 + 1)
        ),
        QuestFinished(
            result=QuestResult(
                name="bin-L1-40x-25600001.jsonl",
                outcome="done",
                steps=60,
                source="generated",
                title="BIN L1 · 2-4-bit add",
            )
        ),
        QuestStarted(
            quest=QuestInfo(name=IDLE_QUEST, examples=256, source="idle", title="BIN L1 · 2-4-bit add"), total_steps=400
        ),
        Notice(level="warning", text=f"quest {IDLE_QUEST}: 115 exact duplicate(s) kept (the split folds them)"),
    ]
    for n in range(1, steps + 1):
        events.append(step(n))
        if n == 1:
            events.append(
                AchievementUnlocked(achievement=Achievement(id="first-blood", name="First Blood", time=T0 + 2, step=1))
            )
        if n % 50 == 0:
            events.append(ValMetrics(step=n, val_loss=3.2 / (1 + n / 60)))
        if n % 100 == 0:
            ckpt = CheckpointInfo(
                step=n,
                name=f"checkpoint-{n}-20260101-00{n // 100:02d}",
                time=T0 + n,
                train_loss=3.0 / (1 + n / 50),
                val_loss=3.2 / (1 + n / 60),
                quest=IDLE_QUEST,
            )
            events.append(CheckpointSaved(checkpoint=ckpt))
            suite = SuiteScore(
                version="5c1e0a7d93b2",
                loss=2.9 / (1 + n / 80),
                accuracy=0.02 * n / 100,
                files=(("builtin:bin-L1", 2.9 / (1 + n / 80)),),
                skills=(("bin", 0.02 * n / 100),),
            )
            events.append(CheckpointScored(step=n, suite=suite, seconds=0.8))
            events.append(ChampionChanged(step=n, score=suite.accuracy - suite.loss))
            events.append(bin_eval(n, 0.25 * n / 100 + 0.1))
        if n == 100:
            events.append(
                AchievementUnlocked(achievement=Achievement(id="centurion", name="Centurion", time=T0 + 100, step=100))
            )
    events.append(Notice(level="warning", text="ledger: 1 checkpoint(s) are missing from disk"))
    events.append(
        Notice(level="error", text=f"quest {LONG_QUEST}: could not read quests/queued/high/{LONG_QUEST}: retrying")
    )
    events.append(BattleChanged(status="paused"))
    return events


def oracle_session() -> list[Event]:
    """An oracle on this machine serving the demo's newest checkpoint, on a CPU."""
    info = OracleInfo(node="local", device="cpu", pid=4343, started=T0)
    serving = OracleServing(
        step=200, name="checkpoint-200-20260101-0002", source="shared", loaded_at=T0 + 101, load_seconds=0.42
    )
    return [
        OracleStarted(info=info),
        OracleLoaded(serving=serving),
        OracleTelemetry(tokens_per_s=118.0, active=1, queued=0, served=7, gpu_note="no NVIDIA GPU"),
    ]


def envelopes(events: list[Event], run: str = RUN, t0: float = T0, dt: float = 0.5) -> list[Envelope]:
    return [Envelope(run=run, seq=i, time=t0 + i * dt, event=e) for i, e in enumerate(events, start=1)]


def fill(mirror, events: list[Event] | None = None) -> None:
    """Apply the recorded session to ``mirror`` as a fresh, connected snapshot."""
    state = mirror.state
    seq = 0
    for envelope in envelopes(events if events is not None else session()):
        state = apply(state, envelope.event, envelope.time)
        seq = envelope.seq
    from msgspec.structs import replace

    mirror.state = replace(state, run=RUN)
    mirror.seq = seq
    mirror.connected = True
    mirror.snapshots += 1
