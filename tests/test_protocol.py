"""The wire protocol: every message round-trips; nothing malformed gets past as anything
but a ``ProtocolError``."""

from __future__ import annotations

import random

import msgspec
import pytest

from realm import protocol
from realm.protocol import (
    MAX_MESSAGE_BYTES,
    Ack,
    BattleChanged,
    BattleState,
    BoardState,
    CheckpointInfo,
    CheckpointSaved,
    Envelope,
    ErrorReply,
    Event,
    Heartbeat,
    HeroState,
    LogLine,
    Notice,
    PauseRequest,
    ProtocolError,
    QuestAddRequest,
    QuestEntry,
    QuestFinished,
    QuestInfo,
    QuestList,
    QuestListRequest,
    QuestMoveRequest,
    QuestQueued,
    QuestRemoveRequest,
    QuestResult,
    QuestRetryRequest,
    QuestStarted,
    QueueChanged,
    RealmState,
    Reply,
    Request,
    ResumeRequest,
    SkipRequest,
    Snapshot,
    SnapshotRequest,
    StepMetrics,
    StopRequest,
    TrainerInfo,
    TrainerStarted,
    ValMetrics,
    VaultState,
    decode_published,
    decode_reply,
    decode_request,
    encode,
)

TRAINER = TrainerInfo(model="builtin:dio-nano", device="cpu", parameters=400_000, pid=4242, started=1.7e9)
QUEST = QuestInfo(name="sy-l1-0001.jsonl", examples=256, priority="high", source="idle")
CKPT = CheckpointInfo(
    step=200, name="checkpoint-200-20250101-1200", time=1.7e9, train_loss=1.5, val_loss=1.75, quest="q"
)

EVENTS: list = [
    TrainerStarted(trainer=TRAINER, step=12, checkpoints=(CKPT,), quests_completed=3),
    TrainerStarted(trainer=TRAINER, step=0),
    BattleChanged(status="paused", reason="by request"),
    BattleChanged(status="idle"),
    QuestQueued(quest=QUEST),
    QuestStarted(quest=QUEST, total_steps=40),
    StepMetrics(
        step=13,
        loss=2.25,
        lr=3e-3,
        grad_norm=0.5,
        tokens=4096,
        tokens_per_s=12345.5,
        examples_per_s=48.0,
        quest_step=1,
        quest_total=40,
    ),
    ValMetrics(step=50, val_loss=1.875),
    QuestFinished(result=QuestResult(name="q", outcome="done", steps=40, time=1.7e9)),
    QuestFinished(result=QuestResult(name="q", outcome="failed", reason="bad json on line 3")),
    CheckpointSaved(checkpoint=CKPT),
    CheckpointSaved(checkpoint=CheckpointInfo(step=1, name="c", time=0.0)),
    Notice(level="warning", text="disk at 90 % — ünïcødé ok"),
    # the engine's measurements, retention
    protocol.CheckpointsPruned(steps=(200, 400), reason="retention"),
    StepMetrics(
        step=14,
        loss=2.0,
        lr=3e-3,
        grad_norm=0.5,
        tokens=4096,
        tokens_per_s=1.0,
        examples_per_s=1.0,
        quest_step=2,
        quest_total=40,
        flops_per_s=1e9,
        mfu=0.25,
        gpu_memory_mb=1024.5,
        micro_batch=8,
    ),
    ValMetrics(step=60, val_loss=1.5),
    protocol.CheckpointScored(
        step=200,
        seconds=0.5,
        suite=protocol.SuiteScore(
            version="3f2a9c0d1e2b",
            loss=1.25,
            accuracy=0.4,
            files=(("mine.jsonl", 1.25), ("builtin:bin-L1", 2.0)),
            skills=(("bin", 0.4),),
        ),
    ),
    protocol.ChampionChanged(step=200, score=-0.85),
    protocol.ChampionChanged(step=None),
    QueueChanged(queued=(QUEST, QuestInfo(name="b.jsonl", format="sharegpt", quarantined=2))),
    protocol.OracleStarted(info=protocol.OracleInfo(node="3090", device="cuda:0", pid=7, started=1.7e9)),
    protocol.OracleLoading(ref="champion"),
    protocol.OracleLoaded(
        serving=protocol.OracleServing(step=200, name=CKPT.name, source="fetched", loaded_at=1.7e9, load_seconds=0.5)
    ),
    protocol.OracleLoadFailed(ref="12", reason="no checkpoint at step 12 in the ledger"),
    protocol.OracleUnloaded(),
    protocol.OracleTelemetry(
        tokens_per_s=512.5,
        active=2,
        queued=1,
        served=9,
        gpus=(
            protocol.GpuInfo(
                index=0, name="RTX 3090", utilization=55.0, memory_used_mb=1200.0, memory_total_mb=24576.0
            ),
        ),
    ),
    protocol.OracleTelemetry(tokens_per_s=0.0, active=0, queued=0, served=0, gpu_note="no NVIDIA GPU"),
    protocol.CheckpointDeleted(step=200, name=CKPT.name),
]

# skills
_SKILL_ITEM = protocol.SkillEvalItem(
    prompt="①⓪ + ⓪① =",
    expected="⓪①①",
    response="⓪①⓪",
    correct=False,
    explanation="wrong value: got 2, expected 3 (⓪①①)",
)
EVENTS += [
    protocol.SkillsLoaded(
        skills=protocol.SkillsState(
            active="bin",
            skills=(
                protocol.SkillState(
                    id="bin",
                    name="Binary Alchemy",
                    level=2,
                    max_level=30,
                    accuracy=0.6,
                    history=(protocol.SkillEvalPoint(level=2, step=50, accuracy=0.6, probe=0.5),),
                    last_items=(_SKILL_ITEM,),
                    next_eval_step=100,
                ),
            ),
            lineage=(protocol.LineageCount(generator="bin@1.0.0", validator="", count=256),),
        )
    ),
    protocol.SkillEvaluated(
        skill="bin",
        level=2,
        step=100,
        accuracy=0.8,
        probe=0.75,
        next_accuracy=0.2,
        items=(_SKILL_ITEM,),
        next_eval_step=150,
        seconds=1.5,
        train_seconds=30.0,
        corrections=3,
    ),
    protocol.SkillLevelUp(skill="bin", level=3, step=150, reason="3 evals >= 80%"),
    protocol.SkillUnlocked(skill="sy", after="bin", level=2, step=160),
    protocol.LineageCounted(counts=(protocol.LineageCount(generator="bin@1.0.0", validator="eval_overlap", count=2),)),
]

FULL_STATE = RealmState(
    run="run-1",
    trainer=TRAINER,
    hero=HeroState(steps=1234, loss_ema=1.5, val_loss=1.75, quests_completed=7),
    battle=BattleState(
        status="training",
        quest=QUEST,
        quest_step=3,
        quest_total=40,
        loss=1.25,
        lr=1e-3,
        grad_norm=0.25,
        tokens_per_s=1.0,
        examples_per_s=2.0,
        losses=((1, 3.0), (2, 2.5)),
        val_losses=((50, 2.0),),
    ),
    board=BoardState(queued=(QUEST,), recent=(QuestResult(name="old", outcome="skipped"),)),
    vault=VaultState(checkpoints=(CKPT,)),
    log=(LogLine(time=1.0, level="info", text="hello"),),
)

REQUESTS: list = [
    SnapshotRequest(),
    PauseRequest(),
    ResumeRequest(),
    StopRequest(),
    QuestAddRequest(name="q.jsonl", content=b'{"text": "\xc3\xa9"}\n', priority="high", request_id="r1"),
    QuestListRequest(),
    QuestRetryRequest(name="q.jsonl"),
    QuestRemoveRequest(name="q.jsonl"),
    QuestMoveRequest(name="q.jsonl", priority="low", position=0),
    SkipRequest(),
    SnapshotRequest(),
    PauseRequest(),
    ResumeRequest(),
    StopRequest(),
    protocol.PingRequest(),
    protocol.PromoteRequest(ref="200"),
    protocol.ManifestRequest(ref="latest"),
    protocol.ChunkRequest(step=200, file="model.safetensors", offset=0, size=65536),
    protocol.DeleteCheckpointRequest(step=200),
]
REPLIES: list = [
    Snapshot(run="run-1", seq=99, state=FULL_STATE),
    Snapshot(run="", seq=0, state=RealmState()),
    Ack(),
    Ack(message="paused"),
    ErrorReply(message="no such checkpoint"),
    QuestList(
        quests=(
            QuestEntry(name="q.jsonl", state="queued", priority="high", bytes=10),
            QuestEntry(name="f.jsonl", state="failed", reason="line 3: not valid JSON"),
        )
    ),
    protocol.Pong(role="trainer", run="run-1", version=1, time=1.7e9),
    protocol.Manifest(
        checkpoint=CKPT,
        weights_sha256="ab" * 32,
        files=(protocol.ManifestFile(name="model.safetensors", size=10, sha256="cd" * 32),),
    ),
    protocol.Chunk(step=200, file="model.safetensors", offset=0, data=b"\x00\xffbytes"),
]

# --------------------------------------------------------------------------- tui: journal, achievements, armory
ACHIEVEMENT = protocol.Achievement(id="first-blood", name="First Blood", time=1.7e9, step=1)
FIELDS = (protocol.ConfigField(key="train.lr", value="0.003", kind="safe", help="lr"),)
EVENTS += [
    protocol.AchievementsRestored(achievements=(ACHIEVEMENT,)),
    protocol.AchievementUnlocked(achievement=ACHIEVEMENT),
    protocol.ConfigChanged(config=FIELDS, changed=("train.lr",)),
]
REQUESTS += [
    protocol.JournalRequest(run="run-1", since_seq=5, since_time=1.7e9, limit=10),
    protocol.ConfigUpdateRequest(key="train.max_length", value="128", confirm=True),
]
REQUESTS += [protocol.QuestGenerateRequest(skill="bin", level=2, count=12, priority="high", seed="s1")]
MILESTONE = protocol.Milestone(kind="streak", text="3 quests won in a row", time=1.7e9, step=30)
EVENTS += [
    protocol.MilestoneReached(milestone=MILESTONE),
    protocol.GoldSpent(item="quest", price=300, detail="queued bin-L2-64x-1.jsonl (high)"),
]
REQUESTS += [protocol.ShopBuyRequest(item="quest", skill="bin", level=2, request_id="r-1")]
REPLIES += [
    protocol.Journal(
        entries=(
            protocol.JournalEntry(
                id=1, run="run-1", seq=4, time=1.7e9, kind="level", text="DIO reached level 2", step=1000
            ),
        ),
        more=True,
    ),
]


def _members(union) -> set[type]:
    return set(union.__args__)


def test_samples_cover_every_type():
    assert {type(e) for e in EVENTS} == _members(Event)
    assert {type(r) for r in REQUESTS} == _members(Request)
    assert {type(r) for r in REPLIES} == _members(Reply)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_envelope_round_trip(event):
    envelope = Envelope(run="run-1", seq=7, time=1.7e9 + 0.125, event=event)
    decoded = decode_published(encode(envelope))
    assert decoded == envelope
    assert type(decoded.event) is type(event)


def test_heartbeat_round_trip():
    for heartbeat in (Heartbeat(run="r", seq=0, time=0.0), Heartbeat(run="r", seq=10**12, time=1.5, status="paused")):
        assert decode_published(encode(heartbeat)) == heartbeat


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_request_round_trip(request_):
    assert decode_request(encode(request_)) == request_


@pytest.mark.parametrize("reply", REPLIES, ids=lambda r: type(r).__name__)
def test_reply_round_trip(reply):
    assert decode_reply(encode(reply)) == reply


def test_floats_survive_exactly():
    value = 0.1 + 0.2  # not representable in float32: the wire must carry float64
    event = ValMetrics(step=1, val_loss=value)
    assert decode_published(encode(Envelope(run="r", seq=1, time=value, event=event))).event.val_loss == value


def test_decoders_accept_bytes_like():
    frame = encode(Heartbeat(run="r", seq=1, time=1.0))
    assert decode_published(bytearray(frame)) == decode_published(memoryview(frame)) == decode_published(frame)


def test_wire_uses_type_tags():
    raw = msgspec.msgpack.decode(encode(Envelope(run="r", seq=1, time=0.0, event=Notice(level="info", text="x"))))
    assert raw["type"] == "event"
    assert raw["event"]["type"] == "notice"
    assert msgspec.msgpack.decode(encode(PauseRequest())) == {"type": "pause"}


def test_messages_are_frozen():
    with pytest.raises(AttributeError):
        Ack().message = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- rejection


def raw(obj) -> bytes:
    return msgspec.msgpack.encode(obj)


def _envelope_dict(**changes) -> dict:
    base = msgspec.to_builtins(Envelope(run="r", seq=1, time=1.0, event=Notice(level="info", text="x")))
    base.update(changes)
    return base


DECODERS = {"published": decode_published, "request": decode_request, "reply": decode_reply}


def rejects(decoder, frame: bytes) -> str:
    with pytest.raises(ProtocolError) as info:
        decoder(frame)
    return str(info.value)


@pytest.mark.parametrize("family", DECODERS)
@pytest.mark.parametrize(
    "frame",
    [b"", b"\x00", b"\xc1", b"hello world", b"\xff" * 32, b'{"type": "snapshot"}', bytes(range(256))],
    ids=["empty", "zero", "never-used", "text", "ff", "json", "all-bytes"],
)
def test_garbage_bytes(family, frame):
    message = rejects(DECODERS[family], frame)
    assert message.startswith(f"invalid {family} message: ")


@pytest.mark.parametrize(
    ("decoder", "message"),
    [
        (decode_published, Envelope(run="r", seq=1, time=1.0, event=EVENTS[0])),
        (decode_published, Heartbeat(run="r", seq=1, time=1.0)),
        (decode_request, PauseRequest()),
        (decode_reply, REPLIES[0]),
    ],
    ids=["envelope", "heartbeat", "request", "snapshot"],
)
def test_every_truncation_is_rejected(decoder, message):
    frame = encode(message)
    for cut in range(len(frame)):
        rejects(decoder, frame[:cut])


def test_trailing_bytes_are_rejected():
    frame = encode(PauseRequest())
    assert "trailing" in rejects(decode_request, frame + b"\x00").lower()


def test_invalid_utf8_string():
    frame = encode(ErrorReply(message="abc")).replace(b"\xa3abc", b"\xa3a\xffc")
    try:  # the library's own reason, whichever exception it uses for this
        msgspec.msgpack.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
    message = rejects(decode_reply, frame)
    assert message.startswith("invalid reply message: ") and reason in message
    frame = encode(PauseRequest()).replace(b"\xa4type", b"\xa4t\xfepe")  # a key, not a value
    assert rejects(decode_request, frame).startswith("invalid request message: ")


def test_unknown_tag():
    message = rejects(decode_request, raw({"type": "explode"}))
    assert "invalid request message" in message and "explode" in message


def test_missing_tag():
    assert "type" in rejects(decode_request, raw({}))


def test_unknown_event_tag():
    message = rejects(decode_published, raw(_envelope_dict(event={"type": "dragon", "hp": 3})))
    assert "dragon" in message and "$.event" in message


def test_wrong_family():
    # a perfectly good message of one family is not a message of another
    rejects(decode_published, encode(SnapshotRequest()))  # tag "snapshot" is not published
    rejects(decode_request, encode(Heartbeat(run="r", seq=1, time=1.0)))
    rejects(decode_reply, encode(PauseRequest()))
    rejects(decode_published, encode(Ack()))


def test_wrong_field_type_names_the_field():
    message = rejects(decode_published, raw(_envelope_dict(seq="one")))
    assert "Expected `int`, got `str`" in message and "$.seq" in message


def test_wrong_nested_field_type_names_the_path():
    bad = _envelope_dict(
        event={
            "type": "step",
            "step": 1,
            "loss": "low",
            "lr": 0.1,
            "grad_norm": 0.0,
            "tokens": 1,
            "tokens_per_s": 0.0,
            "examples_per_s": 0.0,
            "quest_step": 0,
            "quest_total": 0,
        }
    )
    message = rejects(decode_published, raw(bad))
    assert "$.event.loss" in message


def test_wrong_literal_value():
    message = rejects(decode_published, raw(_envelope_dict(event={"type": "battle_changed", "status": "dancing"})))
    assert "dancing" in message


def test_missing_required_field():
    bad = _envelope_dict()
    del bad["seq"]
    assert "seq" in rejects(decode_published, raw(bad))


def test_extra_field_top_level():
    message = rejects(decode_published, raw(_envelope_dict(extra=1)))
    assert "unknown field `extra`" in message


def test_extra_field_nested():
    message = rejects(
        decode_published, raw(_envelope_dict(event={"type": "notice", "level": "info", "text": "x", "x": 1}))
    )
    assert "unknown field `x`" in message and "$.event" in message


def test_extra_field_in_request_and_snapshot_state():
    assert "unknown field" in rejects(decode_request, raw({"type": "pause", "force": True}))
    snap = msgspec.to_builtins(REPLIES[0])
    snap["state"]["hero"]["mana"] = 3
    assert "$.state.hero" in rejects(decode_reply, raw(snap))


def test_wrong_top_level_type():
    for obj in ([1, 2, 3], "snapshot", 7, None, 1.5, True):
        assert "Expected `object`" in rejects(decode_request, raw(obj))


@pytest.mark.parametrize("family", DECODERS)
def test_oversized_frame(family):
    frame = b"\x00" * (MAX_MESSAGE_BYTES + 1)
    message = rejects(DECODERS[family], frame)
    assert message == f"{family} message of {MAX_MESSAGE_BYTES + 1} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit"


def test_frame_at_the_limit_is_decoded():
    frame = encode(ErrorReply(message="x" * 100))
    assert decode_reply(frame, limit=len(frame)) == ErrorReply(message="x" * 100)
    assert "exceeds the" in rejects(lambda f: decode_reply(f, limit=len(frame) - 1), frame)


def test_oversized_valid_message_is_rejected_before_decoding():
    frame = encode(Notice(level="info", text="x" * 2000))
    with pytest.raises(ProtocolError, match="exceeds the 1000-byte limit"):
        decode_published(frame, limit=1000)


def test_protocol_error_is_a_value_error():
    assert issubclass(ProtocolError, ValueError)


# --------------------------------------------------------------------------- fuzz


def _check_only_protocol_errors(frames) -> int:
    """Feed every frame to every decoder; return how many were rejected."""
    rejected = 0
    for frame in frames:
        for decode in DECODERS.values():
            try:
                decode(frame)
            except ProtocolError as exc:
                assert str(exc), "a ProtocolError must say what was wrong"
                rejected += 1
            # any other exception type fails the test with its traceback
    return rejected


def test_random_bytes_raise_only_protocol_error():
    rng = random.Random(20250101)
    frames = [rng.randbytes(rng.randrange(0, 96)) for _ in range(4000)]
    # msgpack maps (fixmap 0x80-0x8f) reach the struct decoders instead of failing on byte one
    frames += [bytes([0x80 | rng.randrange(16)]) + rng.randbytes(rng.randrange(0, 64)) for _ in range(2000)]
    rejected = _check_only_protocol_errors(frames)
    assert rejected >= 0.99 * 3 * len(frames)


def test_mutated_valid_frames_raise_only_protocol_error():
    # flip, drop and insert bytes in real frames so the decoder gets deep before failing
    rng = random.Random(7)
    seeds = [encode(Envelope(run="r", seq=i, time=1.0, event=e)) for i, e in enumerate(EVENTS)]
    seeds += [encode(m) for m in REQUESTS + REPLIES] + [encode(Heartbeat(run="r", seq=1, time=2.0))]
    frames = []
    for _ in range(4000):
        frame = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 4)):
            op = rng.randrange(3)
            at = rng.randrange(len(frame))
            if op == 0:
                frame[at] = rng.randrange(256)
            elif op == 1 and len(frame) > 1:
                del frame[at]
            else:
                frame.insert(at, rng.randrange(256))
        frames.append(bytes(frame))
    rejected = _check_only_protocol_errors(frames)
    assert rejected > len(frames)  # most mutants are rejected by at least the two wrong families


def test_module_exports_codec():
    assert protocol.encode is encode
    assert protocol.PROTOCOL_VERSION == 1
