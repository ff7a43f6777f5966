"""Every message that crosses the bus, as msgspec Structs in tagged unions.

Three families travel:

* ``Published``: what the trainer's PUB socket sends, an ``Envelope`` (one event with the
  run id, a per-run sequence number and a time) or a ``Heartbeat`` (the last sequence
  number, sent when idle, so a subscriber can tell a gap from silence).
* ``Request``: what a client sends to a ROUTER socket.
* ``Reply``: what comes back.

The realm's state types live here too, because the snapshot reply carries them; the reducer
that changes them is ``realm.state.apply``.

Decoding is strict: unknown tags, wrong types and oversized frames raise ``ProtocolError``
with a message that says what was wrong, never anything else.
"""

from __future__ import annotations

from typing import Literal, Union

import msgspec

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

BattleStatus = Literal["starting", "idle", "training", "paused", "stopping", "stopped"]
QuestOutcome = Literal["done", "skipped", "failed"]
Priority = Literal["high", "normal", "low"]
LogLevel = Literal["info", "warning", "error"]


class ProtocolError(ValueError):
    """A frame that is not a valid message of the expected family."""


class _Wire(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


# --------------------------------------------------------------------------- state types


class QuestInfo(_Wire):
    name: str
    examples: int = 0
    priority: Priority = "normal"
    source: str = "inbox"  # "inbox" for dropped files, "idle" for quests the trainer made


class QuestResult(_Wire):
    name: str
    outcome: QuestOutcome
    steps: int = 0
    reason: str = ""
    time: float = 0.0


class CheckpointInfo(_Wire):
    step: int
    name: str
    time: float
    train_loss: float | None = None
    val_loss: float | None = None
    quest: str | None = None


class TrainerInfo(_Wire):
    model: str
    device: str
    parameters: int
    pid: int
    started: float
    steps_per_level: int = 1000
    version: int = PROTOCOL_VERSION


class LogLine(_Wire):
    time: float
    level: LogLevel
    text: str


class HeroState(_Wire):
    steps: int = 0
    loss_ema: float | None = None
    val_loss: float | None = None
    quests_completed: int = 0


class BattleState(_Wire):
    status: BattleStatus = "starting"
    quest: QuestInfo | None = None
    quest_step: int = 0
    quest_total: int = 0
    loss: float | None = None
    lr: float = 0.0
    grad_norm: float = 0.0
    tokens_per_s: float = 0.0
    examples_per_s: float = 0.0
    losses: tuple[tuple[int, float], ...] = ()  # (step, loss), the last LOSS_HISTORY points
    val_losses: tuple[tuple[int, float], ...] = ()


class BoardState(_Wire):
    queued: tuple[QuestInfo, ...] = ()
    recent: tuple[QuestResult, ...] = ()


class VaultState(_Wire):
    checkpoints: tuple[CheckpointInfo, ...] = ()  # newest last


# --------------------------------------------------------------------------- tui: achievements, armory (state)

ConfigKind = Literal["safe", "critical", "fixed"]


class Achievement(_Wire):
    id: str
    name: str
    time: float
    step: int = 0


class ConfigField(_Wire):
    key: str  # dotted, e.g. "train.lr"
    value: str  # YAML text of the value, e.g. "0.003", "true", "builtin:dio-nano"
    kind: ConfigKind = "fixed"  # safe: editable live; critical: needs confirmation; fixed: not over the bus
    help: str = ""


class RealmState(_Wire):
    run: str = ""
    trainer: TrainerInfo | None = None
    hero: HeroState = HeroState()
    battle: BattleState = BattleState()
    board: BoardState = BoardState()
    vault: VaultState = VaultState()
    log: tuple[LogLine, ...] = ()
    achievements: tuple[Achievement, ...] = ()  # earned, oldest first (persisted by the trainer)
    config: tuple[ConfigField, ...] = ()  # the trainer's running config (the Armory)


# --------------------------------------------------------------------------- events


class _Event(_Wire, tag_field="type"):
    pass


class TrainerStarted(_Event, tag="trainer_started"):
    trainer: TrainerInfo
    step: int
    checkpoints: tuple[CheckpointInfo, ...] = ()
    quests_completed: int = 0


class BattleChanged(_Event, tag="battle_changed"):
    status: BattleStatus
    reason: str = ""


class QuestQueued(_Event, tag="quest_queued"):
    quest: QuestInfo


class QuestStarted(_Event, tag="quest_started"):
    quest: QuestInfo
    total_steps: int


class StepMetrics(_Event, tag="step"):
    step: int
    loss: float
    lr: float
    grad_norm: float
    tokens: int
    tokens_per_s: float
    examples_per_s: float
    quest_step: int
    quest_total: int


class ValMetrics(_Event, tag="val"):
    step: int
    val_loss: float


class QuestFinished(_Event, tag="quest_finished"):
    result: QuestResult


class CheckpointSaved(_Event, tag="checkpoint_saved"):
    checkpoint: CheckpointInfo


class Notice(_Event, tag="notice"):
    level: LogLevel
    text: str


# --------------------------------------------------------------------------- tui: achievements, armory (events)


class AchievementsRestored(_Event, tag="achievements_restored"):
    achievements: tuple[Achievement, ...]


class AchievementUnlocked(_Event, tag="achievement_unlocked"):
    achievement: Achievement


class ConfigChanged(_Event, tag="config_changed"):
    config: tuple[ConfigField, ...]
    changed: tuple[str, ...] = ()  # keys that changed; empty when the trainer announces its config


Event = Union[
    TrainerStarted,
    BattleChanged,
    QuestQueued,
    QuestStarted,
    StepMetrics,
    ValMetrics,
    QuestFinished,
    CheckpointSaved,
    Notice,
    AchievementsRestored,
    AchievementUnlocked,
    ConfigChanged,
]


# --------------------------------------------------------------------------- published


class Envelope(_Wire, tag="event"):
    run: str
    seq: int
    time: float
    event: Event


class Heartbeat(_Wire, tag="heartbeat"):
    run: str
    seq: int
    time: float
    status: BattleStatus = "idle"


Published = Union[Envelope, Heartbeat]


# --------------------------------------------------------------------------- requests


class _Request(_Wire, tag_field="type"):
    pass


class SnapshotRequest(_Request, tag="snapshot"):
    pass


class PauseRequest(_Request, tag="pause"):
    pass


class ResumeRequest(_Request, tag="resume"):
    pass


class StopRequest(_Request, tag="stop"):
    pass


# --------------------------------------------------------------------------- tui: journal, armory (requests)


class JournalRequest(_Request, tag="journal"):
    """What happened since a client last looked.

    Entries of ``run`` after its bus sequence ``since_seq``, plus entries of any other run
    after ``since_time`` (the trainer restarted meanwhile). Both zero: the newest ``limit``.
    """

    run: str = ""
    since_seq: int = 0
    since_time: float = 0.0
    limit: int = 200


class ConfigUpdateRequest(_Request, tag="config_update"):
    key: str  # dotted, e.g. "train.lr"
    value: str  # YAML text, e.g. "1e-3"
    confirm: bool = False  # required for critical keys (model, max_length): the seed's safety rule


Request = Union[SnapshotRequest, PauseRequest, ResumeRequest, StopRequest, JournalRequest, ConfigUpdateRequest]


class _Reply(_Wire, tag_field="type"):
    pass


class Snapshot(_Reply, tag="snapshot"):
    run: str
    seq: int
    state: RealmState


class Ack(_Reply, tag="ack"):
    message: str = ""


class ErrorReply(_Reply, tag="error"):
    message: str


class JournalEntry(_Wire):
    id: int  # the journal's own row number, increasing across runs
    run: str
    seq: int  # the bus sequence number of the event it records (0 if none)
    time: float
    kind: str  # trainer | battle | level | quest | quest_done | quest_failed | quest_skipped | checkpoint | achievement | config | notice
    text: str
    step: int = 0


class Journal(_Reply, tag="journal"):
    entries: tuple[JournalEntry, ...]
    more: bool = False  # True when more entries matched than ``limit``; the newest are sent


Reply = Union[Snapshot, Ack, ErrorReply, Journal]


# --------------------------------------------------------------------------- codec

_encoder = msgspec.msgpack.Encoder()
_decoders = {
    "published": msgspec.msgpack.Decoder(Published),
    "request": msgspec.msgpack.Decoder(Request),
    "reply": msgspec.msgpack.Decoder(Reply),
}


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


def _decode(family: str, frame: bytes, limit: int):
    if len(frame) > limit:
        raise ProtocolError(f"{family} message of {len(frame)} bytes exceeds the {limit}-byte limit")
    try:
        return _decoders[family].decode(frame)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        raise ProtocolError(f"invalid {family} message: {exc}") from None
    except UnicodeDecodeError as exc:  # msgspec lets a bad UTF-8 string through as this
        raise ProtocolError(f"invalid {family} message: a string is not UTF-8 ({exc.reason})") from None


def decode_published(frame: bytes, limit: int = MAX_MESSAGE_BYTES) -> Envelope | Heartbeat:
    return _decode("published", frame, limit)


def decode_request(frame: bytes, limit: int = MAX_MESSAGE_BYTES) -> Request:
    return _decode("request", frame, limit)


def decode_reply(frame: bytes, limit: int = MAX_MESSAGE_BYTES) -> Reply:
    return _decode("reply", frame, limit)
