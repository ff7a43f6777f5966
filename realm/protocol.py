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


GAME_SOURCES = ("idle", "correction")  # the sources of the quests the trainer makes itself


class QuestInfo(_Wire):
    name: str
    examples: int = 0
    priority: Priority = "normal"
    # decided when the quest file is written (trainer/lineage.py): "inbox" for dropped and added
    # files, "idle" and "correction" for quests the trainer makes itself, "generated" for one
    # drawn from a skill on request
    source: str = "inbox"
    format: str = ""  # messages | sharegpt | alpaca | completion | text (realm.quests.formats.FORMATS)
    quarantined: int = 0  # lines set aside by validation (see quests/quarantine/NAME.jsonl)
    held_out: int = 0  # distinct examples kept out of training for the quest's own val loss
    epochs: int = 1  # passes over the quest's lines, each reshuffled (realm quest add --epochs)
    title: str = ""  # a game quest's name for people, from its lineage (realm.game.narration.skill_quest_title)


class QuestResult(_Wire):
    name: str
    outcome: QuestOutcome
    steps: int = 0
    reason: str = ""
    time: float = 0.0
    source: str = "inbox"  # as QuestInfo.source
    title: str = ""  # as QuestInfo.title
    examples_trained: int = 0  # rows trained, every pass counted (0: not reported)
    val_loss_start: float | None = None  # the quest's held-out loss before its first step (None: no held-out
    # examples, or resumed after a restart)
    val_loss_end: float | None = None  # its held-out loss at its last look (before a val_after: train pass)


class SuiteScore(_Wire):
    """A checkpoint's scores on the realm's evaluation suite (see trainer/suite.py)."""

    version: str  # the suite's content version: only scores of one version are compared
    loss: float | None = None  # mean loss per answer token over the suite's loss sets (DEF = 1 / loss)
    accuracy: float | None = None  # share of the skills' frozen eval items answered right
    files: tuple[tuple[str, float], ...] = ()  # (loss set, its loss): the user's files, else the built-in set
    skills: tuple[tuple[str, float], ...] = ()  # (skill id, frozen-set accuracy over every level)


class CheckpointInfo(_Wire):
    step: int
    name: str
    time: float
    train_loss: float | None = None
    val_loss: float | None = None  # the quest's own held-out loss at save time: not comparable across quests
    quest: str | None = None
    suite: SuiteScore | None = None  # None until the checkpoint is scored on the suite


class TrainerInfo(_Wire):
    model: str
    device: str
    parameters: int
    pid: int
    started: float
    steps_per_level: int = 1000
    version: int = PROTOCOL_VERSION
    profile: str = ""  # the settings profile the run started from (configs/profiles/)


class LogLine(_Wire):
    time: float
    level: LogLevel
    text: str


class HeroState(_Wire):
    steps: int = 0
    loss_ema: float | None = None
    val_loss: float | None = None  # the active quest's last held-out loss (the Battle's "quest val")
    quests_completed: int = 0
    suite: SuiteScore | None = None  # the newest checkpoint's suite scores (DEF)
    milestones: int = 0  # milestones reached ever (persisted by the trainer): the title's ladder
    gold_spent: int = 0  # gold spent in the shop ever (persisted by the trainer)


class BattleState(_Wire):
    status: BattleStatus = "starting"
    quest: QuestInfo | None = None
    quest_step: int = 0
    quest_total: int = 0
    quest_epoch: int = 0  # as StepMetrics.quest_epoch
    quest_epochs: int = 0
    loss: float | None = None
    lr: float = 0.0
    grad_norm: float = 0.0
    tokens_per_s: float = 0.0
    examples_per_s: float = 0.0
    losses: tuple[tuple[int, float], ...] = ()  # (step, loss), the last LOSS_HISTORY points
    val_losses: tuple[tuple[int, float], ...] = ()
    mfu: float = 0.0  # model FLOPs utilisation of the last step
    gpu_memory_mb: float | None = None  # the training process's GPU memory (pynvml), None without one
    gpu: GpuInfo | None = None  # the training GPU's last NVML reading; None on CPU or without NVML
    gpu_note: str = ""  # why there is no reading on a CUDA device (e.g. "no NVIDIA GPU")
    reason: str = ""  # why the status changed, when it was not asked for (a full disk pauses)


class BoardState(_Wire):
    queued: tuple[QuestInfo, ...] = ()
    recent: tuple[QuestResult, ...] = ()


class VaultState(_Wire):
    checkpoints: tuple[CheckpointInfo, ...] = ()  # newest last
    champion: int | None = None  # the champion's step (realm/vault/champion.py), None before any is scored


# --------------------------------------------------------------------------- skills


class SkillEvalItem(_Wire):
    prompt: str
    expected: str
    response: str
    correct: bool
    explanation: str = ""


class SkillEvalPoint(_Wire):
    level: int  # the level whose eval set was scored
    step: int
    accuracy: float
    probe: float | None = None  # fresh-probe accuracy (rounds at the skill's own level)
    probe_items: int = 0  # the probe's size: ``probe`` is a share of this many fresh items


class SkillState(_Wire):
    id: str
    name: str = ""
    short_name: str = ""
    icon: str = ""
    color: str = "#FFFFFF"
    level: int = 1
    max_level: int = 1
    accuracy: float | None = None  # the latest eval accuracy at the current level
    history: tuple[SkillEvalPoint, ...] = ()  # the last SKILL_HISTORY rounds, every level
    last_items: tuple[SkillEvalItem, ...] = ()  # the latest round's frozen items at the current level
    next_eval_step: int = 0  # 0: none scheduled (a locked skill is not evaluated)
    waits_for: str = ""  # a locked skill: the skill before it in the mix, whose level unlocks it; "": it plays
    waits_level: int = 0  # the level ``waits_for`` must reach


class LineageCount(_Wire):
    generator: str  # "bin@1.0.0", "self_correction", ...
    validator: str  # "" counts generated examples; else rejections by that validator
    count: int


class SkillsState(_Wire):
    active: str = ""  # the skill behind the hero's ACC
    skills: tuple[SkillState, ...] = ()
    lineage: tuple[LineageCount, ...] = ()
    eval_seconds: float = 0.0  # time spent evaluating skills since the trainer started
    train_seconds: float = 0.0  # optimizer-step time since the trainer started (counted at each eval)


# --------------------------------------------------------------------------- oracle state types


class GpuInfo(_Wire):
    index: int
    name: str
    utilization: float  # percent
    memory_used_mb: float
    memory_total_mb: float
    temperature_c: float | None = None  # None where the card does not report it
    power_w: float | None = None


class OracleInfo(_Wire):
    node: str
    device: str
    pid: int
    started: float
    version: int = PROTOCOL_VERSION


class OracleServing(_Wire):
    step: int
    name: str
    source: str  # "shared" (the trainer's disk), "cache" or "fetched" (over the bus)
    loaded_at: float
    load_seconds: float  # from the load/promote request to serving


class OracleState(_Wire):
    info: OracleInfo | None = None
    serving: OracleServing | None = None
    loading: str | None = None  # the reference being loaded while the old model serves
    last_error: str = ""
    tokens_per_s: float = 0.0
    active: int = 0  # sessions generating now
    queued: int = 0  # sessions waiting for a slot
    served: int = 0  # requests finished since start
    gpus: tuple[GpuInfo, ...] = ()
    gpu_note: str = ""  # e.g. "no NVIDIA GPU"


# --------------------------------------------------------------------------- tui: achievements, armory (state)

ConfigKind = Literal["safe", "critical", "fixed"]


class Achievement(_Wire):
    id: str
    name: str
    time: float
    step: int = 0


class Milestone(_Wire):
    kind: str  # skill-level | skill-unlock | best-suite-loss | best-accuracy | streak | checkpoints | first-champion
    text: str  # one line a player can read
    time: float
    step: int = 0


class ConfigField(_Wire):
    key: str  # dotted, e.g. "train.lr"
    value: str  # YAML text of the value, e.g. "0.003", "true", "builtin:dio-nano"
    kind: ConfigKind = "fixed"  # safe: editable live; critical: needs confirmation; fixed: not over the bus
    help: str = ""
    overridden: bool = False  # the value comes from HOME/overrides.yaml (a live change kept), not the config file


class RealmState(_Wire):
    run: str = ""
    trainer: TrainerInfo | None = None
    hero: HeroState = HeroState()
    battle: BattleState = BattleState()
    board: BoardState = BoardState()
    vault: VaultState = VaultState()
    log: tuple[LogLine, ...] = ()  # the story (realm.game.narration.policy): the Chronicle, the Battle log
    skills: SkillsState = SkillsState()
    oracle: OracleState = OracleState()  # filled on an oracle's own PUB socket
    achievements: tuple[Achievement, ...] = ()  # earned, oldest first (persisted by the trainer)
    milestones: tuple[Milestone, ...] = ()  # the most recent, oldest first (persisted by the trainer)
    config: tuple[ConfigField, ...] = ()  # the trainer's running config (the Armory)
    notices: tuple[LogLine, ...] = ()  # the game's housekeeping (the Notices view)


# --------------------------------------------------------------------------- events


class _Event(_Wire, tag_field="type"):
    pass


class TrainerStarted(_Event, tag="trainer_started"):
    trainer: TrainerInfo
    step: int
    checkpoints: tuple[CheckpointInfo, ...] = ()
    quests_completed: int = 0
    champion: int | None = None
    milestones: int = 0  # reached ever, from the chronicle
    recent_milestones: tuple[Milestone, ...] = ()
    gold_spent: int = 0  # from the chronicle's purchases
    recent_quests: tuple[QuestResult, ...] = ()  # the newest quests that ended, in earlier runs too (from disk)


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
    # --- the engine's measurements: additive, with defaults
    flops_per_s: float = 0.0  # model FLOPs (6N per token + attention) per second
    mfu: float = 0.0  # flops_per_s as a share of the device's matmul peak; 0 when unknown
    gpu_memory_mb: float | None = None  # device memory in use (pynvml or torch); None on CPU
    micro_batch: int = 0  # examples per micro-batch (halved on out-of-memory)
    gpu: GpuInfo | None = None  # the training GPU through NVML (realm.gpu); None on CPU or without NVML
    gpu_note: str = ""  # why a CUDA trainer has no reading
    quest_epoch: int = 0  # the pass over the quest's lines this step trains (1-based); 0: a one-pass quest
    quest_epochs: int = 0


class ValMetrics(_Event, tag="val"):
    step: int
    val_loss: float  # on the active quest's held-out examples


class QuestFinished(_Event, tag="quest_finished"):
    result: QuestResult


class CheckpointSaved(_Event, tag="checkpoint_saved"):
    checkpoint: CheckpointInfo


class CheckpointScored(_Event, tag="checkpoint_scored"):
    step: int
    suite: SuiteScore
    seconds: float = 0.0  # how long the scoring took


class ChampionChanged(_Event, tag="champion_changed"):
    step: int | None  # None: no checkpoint is scored on the current suite
    score: float | None = None


class CheckpointsPruned(_Event, tag="checkpoints_pruned"):
    """Retention deleted these checkpoints (``reason``: retention or disk full)."""

    steps: tuple[int, ...]
    reason: str = "retention"


class Notice(_Event, tag="notice"):
    level: LogLevel
    text: str


# --- quests: the queue as the board sees it


class QueueChanged(_Event, tag="queue_changed"):
    """The whole queue in training order, after a remove, a reorder or a reprioritisation."""

    queued: tuple[QuestInfo, ...]


# skills


class SkillsLoaded(_Event, tag="skills_loaded"):
    skills: SkillsState


class SkillEvaluated(_Event, tag="skill_evaluated"):
    skill: str
    level: int  # the skill's level during the round
    step: int
    accuracy: float  # frozen eval set at ``level``
    probe: float | None = None  # fresh probe at ``level``
    probe_items: int = 0  # the probe's size
    next_accuracy: float | None = None  # frozen eval set at ``level + 1`` (a preview)
    items: tuple[SkillEvalItem, ...] = ()
    next_eval_step: int = 0
    seconds: float = 0.0  # this round's generation + grading time
    train_seconds: float = 0.0  # optimizer-step time since the previous round
    corrections: int = 0  # wrong probe items turned into a correction quest
    oracle: str = ""  # the oracle node that generated the answers (skills.eval_on); "": the trainer itself
    oracle_seconds: float = 0.0  # with an oracle: hand-off to answers, wall time (the trainer trained meanwhile)


class SkillLevelUp(_Event, tag="skill_level_up"):
    skill: str
    level: int  # the new level
    step: int
    reason: str = ""


class SkillUnlocked(_Event, tag="skill_unlocked"):
    skill: str  # joins the training and the eval rounds from this step
    after: str  # the skill before it in the mix
    level: int  # the level ``after`` reached (skills.unlock_level)
    step: int


class LineageCounted(_Event, tag="lineage_counted"):
    counts: tuple[LineageCount, ...]  # increments to add


# --- oracle and vault events (the oracle publishes the Oracle* ones on its own PUB socket)


class OracleStarted(_Event, tag="oracle_started"):
    info: OracleInfo


class OracleLoading(_Event, tag="oracle_loading"):
    ref: str


class OracleLoaded(_Event, tag="oracle_loaded"):
    serving: OracleServing


class OracleLoadFailed(_Event, tag="oracle_load_failed"):
    ref: str
    reason: str


class OracleUnloaded(_Event, tag="oracle_unloaded"):
    pass


class OracleTelemetry(_Event, tag="oracle_telemetry"):
    tokens_per_s: float
    active: int
    queued: int
    served: int
    gpus: tuple[GpuInfo, ...] = ()
    gpu_note: str = ""


class CheckpointDeleted(_Event, tag="checkpoint_deleted"):
    step: int
    name: str


# --------------------------------------------------------------------------- tui: achievements, armory (events)


class AchievementsRestored(_Event, tag="achievements_restored"):
    achievements: tuple[Achievement, ...]


class AchievementUnlocked(_Event, tag="achievement_unlocked"):
    achievement: Achievement


class MilestoneReached(_Event, tag="milestone_reached"):
    milestone: Milestone


class GoldSpent(_Event, tag="gold_spent"):
    item: str  # a realm.game.shop item id
    price: int
    detail: str = ""  # what was bought, e.g. the quest's name


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
    CheckpointScored,
    ChampionChanged,
    Notice,
    CheckpointsPruned,
    QueueChanged,
    SkillsLoaded,
    SkillEvaluated,
    SkillLevelUp,
    SkillUnlocked,
    LineageCounted,
    OracleStarted,
    OracleLoading,
    OracleLoaded,
    OracleLoadFailed,
    OracleUnloaded,
    OracleTelemetry,
    CheckpointDeleted,
    AchievementsRestored,
    AchievementUnlocked,
    ConfigChanged,
    MilestoneReached,
    GoldSpent,
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


# --- quests: intake, the queue, skip

QuestState = Literal["queued", "active", "done", "skipped", "failed", "removed"]


class QuestAddRequest(_Request, tag="quest_add"):
    """A quest file sent over the bus (the CLI may run on another host). The trainer writes it
    into its inbox atomically and validates it at once; ``request_id`` makes a retried send
    (Lazy Pirate) land once."""

    name: str
    content: bytes
    priority: Priority = "normal"
    request_id: str = ""
    epochs: int = 0  # passes over the quest's lines; 0: the trainer's quests.epochs


class QuestListRequest(_Request, tag="quest_list"):
    pass


class QuestRetryRequest(_Request, tag="quest_retry"):
    """A failed or skipped quest goes back to the queue."""

    name: str
    priority: Priority = "normal"


class QuestRemoveRequest(_Request, tag="quest_remove"):
    """A queued quest moves to quests/removed/ (never deleted)."""

    name: str


class QuestMoveRequest(_Request, tag="quest_move"):
    """Reprioritise (``priority``) and/or reorder (``position``: 0 is the front of its priority)."""

    name: str
    priority: Priority | None = None
    position: int | None = None


class SkipRequest(_Request, tag="skip"):
    """The active quest ends as skipped after the current optimizer step."""


MAX_GENERATED_CHATS = 10_000  # the most chats one generated quest may hold


class QuestGenerateRequest(_Request, tag="quest_generate"):
    """A quest of ``count`` chats drawn from one skill at one level (the TUI's quest board),
    queued like an added file; ``seed`` makes it repeatable ("" draws a fresh one)."""

    skill: str
    level: int
    count: int = 64
    priority: Priority = "normal"
    seed: str = ""
    request_id: str = ""


# --- vault and oracle requests the trainer answers (realm/vault/service.py)


class PingRequest(_Request, tag="ping"):
    pass


class PromoteRequest(_Request, tag="promote"):
    ref: str  # a ledger reference: a step, a canonical name, "latest" or "champion"


class ManifestRequest(_Request, tag="manifest"):
    ref: str


class ChunkRequest(_Request, tag="chunk"):
    step: int
    file: str  # a name from that checkpoint's manifest, nothing else
    offset: int
    size: int


class DeleteCheckpointRequest(_Request, tag="delete_checkpoint"):
    step: int


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


class ShopBuyRequest(_Request, tag="shop_buy"):
    """Spend gold on an item of ``realm.game.shop.ITEMS``; the trainer checks the price against DIO's gold."""

    item: str
    skill: str = ""  # for a commissioned quest
    level: int = 0
    request_id: str = ""  # a retried request (same id) is answered again, never charged twice


Request = Union[
    SnapshotRequest,
    PauseRequest,
    ResumeRequest,
    StopRequest,
    QuestAddRequest,
    QuestListRequest,
    QuestRetryRequest,
    QuestRemoveRequest,
    QuestMoveRequest,
    SkipRequest,
    PingRequest,
    PromoteRequest,
    ManifestRequest,
    ChunkRequest,
    DeleteCheckpointRequest,
    JournalRequest,
    ConfigUpdateRequest,
    QuestGenerateRequest,
    ShopBuyRequest,
]


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


class QuestEntry(_Wire):
    """One quest file on the trainer's disk, wherever it is in its life."""

    name: str
    state: QuestState
    priority: Priority | None = None  # for queued quests
    position: int = 0  # 0-based place in the training order, for queued quests
    bytes: int = 0
    time: float = 0.0  # when it entered its current folder
    reason: str = ""  # why it failed or was skipped
    quarantine: str = ""  # path of its quarantine file, relative to the data root, if any


class QuestList(_Reply, tag="quest_list"):
    quests: tuple[QuestEntry, ...]


class Pong(_Reply, tag="pong"):
    role: str  # "trainer" or "oracle"
    run: str
    version: int
    time: float  # the answering node's clock, for skew checks


class ManifestFile(_Wire):
    name: str
    size: int
    sha256: str


class Manifest(_Reply, tag="manifest"):
    checkpoint: CheckpointInfo
    weights_sha256: str  # the ledger's digest over the weights (the sidecar's sha256)
    files: tuple[ManifestFile, ...]
    folder: str = ""  # the checkpoint's folder on the trainer's host (the Vault's detail pane shows it)
    folder_bytes: int = 0  # every file in the folder, the optimizer state too (not all are shipped)


class Chunk(_Reply, tag="chunk"):
    step: int
    file: str
    offset: int
    data: bytes


# --------------------------------------------------------------------------- the oracle's control socket
#
# An oracle's ROUTER answers ``OracleRequest``s. Chat replies stream: any number of
# ``ChatDelta`` frames then one ``ChatEnd``, each carrying the request id.

OracleStopReason = Literal["stop", "length", "cancelled", "error", "shutdown"]


class Sampling(_Wire):
    temperature: float = 0.0  # 0 is greedy
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int | None = None


class LoadRequest(_Request, tag="load"):
    ref: str


class UnloadRequest(_Request, tag="unload"):
    pass


class ChatRequest(_Request, tag="chat"):
    id: str
    messages: tuple[dict[str, str], ...]  # [{"role": ..., "content": ...}]
    sampling: Sampling = Sampling()
    checkpoint: str = ""  # a ledger reference; "" is the served (promoted) checkpoint


class GenerateRequest(_Request, tag="generate"):
    id: str
    prompts: tuple[str, ...]  # user messages, each answered on its own
    sampling: Sampling = Sampling()
    checkpoint: str = ""
    # instead of prompts, whole chats (skill evals): encoded, stopped and decoded exactly as the
    # trainer's own eval does (realm.model.greedy), so both give the same answers
    chats: tuple[tuple[dict[str, str], ...], ...] = ()


class CancelRequest(_Request, tag="cancel"):
    id: str


OracleRequest = Union[
    SnapshotRequest,
    PingRequest,
    LoadRequest,
    UnloadRequest,
    PromoteRequest,
    ChatRequest,
    GenerateRequest,
    CancelRequest,
]


class ChatDelta(_Reply, tag="chat_delta"):
    id: str
    text: str
    tokens: int  # generated so far


class ChatEnd(_Reply, tag="chat_end"):
    id: str
    reason: OracleStopReason
    tokens: int
    seconds: float
    checkpoint: str = ""  # the checkpoint that answered
    message: str = ""
    prompt_tokens: int = 0


class GenerateResult(_Reply, tag="generate_result"):
    id: str
    texts: tuple[str, ...]
    checkpoint: str = ""


class Loaded(_Reply, tag="loaded"):
    """The second reply to a load or promote: the checkpoint now serves."""

    serving: OracleServing


OracleReply = Union[Snapshot, Ack, ErrorReply, Pong, ChatDelta, ChatEnd, GenerateResult, Loaded]


# --------------------------------------------------------------------------- tui: journal (replies)


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


Reply = Union[Snapshot, Ack, ErrorReply, QuestList, Pong, Manifest, Chunk, Journal]


# --------------------------------------------------------------------------- codec

_encoder = msgspec.msgpack.Encoder()
_decoders = {
    "published": msgspec.msgpack.Decoder(Published),
    "request": msgspec.msgpack.Decoder(Request),
    "reply": msgspec.msgpack.Decoder(Reply),
    "oracle request": msgspec.msgpack.Decoder(OracleRequest),
    "oracle reply": msgspec.msgpack.Decoder(OracleReply),
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


def decode_oracle_request(frame: bytes, limit: int = MAX_MESSAGE_BYTES) -> OracleRequest:
    return _decode("oracle request", frame, limit)


def decode_oracle_reply(frame: bytes, limit: int = MAX_MESSAGE_BYTES) -> OracleReply:
    return _decode("oracle reply", frame, limit)
