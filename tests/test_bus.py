"""The ZeroMQ bus over real sockets: control requests, the Clone mirror, gaps, restarts,
silence and junk. No mocks; ipc endpoints in a short temporary folder."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from realm import protocol
from realm.bus import (
    LONG_REQUESTS,
    MISSED_HEARTBEATS,
    REPLY_HWM,
    ControlServer,
    Later,
    Publisher,
    RealmClient,
    RequestFailed,
    StateMirror,
    TrainerUnreachable,
    UnsafeEndpoint,
    prepare_endpoint,
    request_async,
)
from realm.protocol import (
    Ack,
    CheckpointInfo,
    CheckpointSaved,
    Envelope,
    ErrorReply,
    Heartbeat,
    Notice,
    PauseRequest,
    QuestFinished,
    QuestInfo,
    QuestQueued,
    QuestResult,
    QueueChanged,
    RealmState,
    ResumeRequest,
    Snapshot,
    SnapshotRequest,
    StepMetrics,
    StopRequest,
    TrainerInfo,
    TrainerStarted,
    encode,
)
from realm.state import apply

pytestmark = pytest.mark.timeout(30)

HB = 0.05  # heartbeat period for most tests: fast, so silence is detected in ~0.15 s


# --------------------------------------------------------------------------- helpers


def step(n: int, loss: float | None = None) -> StepMetrics:
    return StepMetrics(
        step=n,
        loss=loss if loss is not None else 1.0 + 1.0 / (n + 1),
        lr=1e-3,
        grad_norm=0.5,
        tokens=128,
        tokens_per_s=1e4,
        examples_per_s=10.0,
        quest_step=n % 40,
        quest_total=40,
    )


def started(model: str = "builtin:dio-nano") -> TrainerStarted:
    info = TrainerInfo(model=model, device="cpu", parameters=1000, pid=os.getpid(), started=time.time())
    return TrainerStarted(trainer=info, step=0)


def mixed(n: int, start: int = 0) -> list:
    """A stream like a trainer's: mostly steps, now and then something else."""
    events = []
    for i in range(start, start + n):
        if i % 97 == 0:
            events.append(CheckpointSaved(checkpoint=CheckpointInfo(step=i, name=f"checkpoint-{i}", time=float(i))))
        elif i % 31 == 0:
            events.append(QuestQueued(quest=QuestInfo(name=f"q{i}.jsonl", examples=i)))
        elif i % 13 == 0:
            events.append(Notice(level="info", text=f"notice {i}"))
        else:
            events.append(step(i))
    return events


def poll_until(cond: Callable[[], bool], timeout: float = 3.0, every: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


async def wait_until(cond: Callable[[], bool], timeout: float = 3.0, every: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)
    return True


class Trainer:
    """The trainer's side of the bus, as the daemon wires it: Publisher + ControlServer,
    with a context of its own (as a separate process would have)."""

    def __init__(
        self,
        pub: str,
        ctl: str,
        run: str,
        *,
        heartbeat_s: float = HB,
        sndhwm: int = 100_000,
        handler: Callable | None = None,
    ) -> None:
        self.ctx = zmq.Context()
        self.pub = Publisher(pub, run, context=self.ctx, sndhwm=sndhwm)
        self.server = ControlServer(ctl, handler or self.handle, self.pub, heartbeat_s=heartbeat_s, context=self.ctx)
        self.server.start()
        self.closed = False

    def handle(self, request):
        if isinstance(request, SnapshotRequest):
            return self.pub.snapshot()
        return Ack(message=type(request).__name__)

    def emit_all(self, events) -> None:
        for event in events:
            self.pub.emit(event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.server.stop()
            self.pub.close()
            self.ctx.term()


@pytest.fixture
def eps():
    """(pub, control) ipc endpoints in a short private folder (ipc paths max ~100 bytes)."""
    folder = tempfile.mkdtemp(prefix="rb-")
    yield f"ipc://{folder}/run/pub", f"ipc://{folder}/run/ctl"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def trainers():
    """A factory of Trainers, all closed at teardown."""
    made: list[Trainer] = []

    def make(*args, **kwargs) -> Trainer:
        made.append(Trainer(*args, **kwargs))
        return made[-1]

    yield make
    for trainer in made:
        trainer.close()


@pytest.fixture
def zctx():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


@pytest.fixture
async def mirrors():
    """Start StateMirrors as asyncio tasks on a context of their own; cancel them at teardown."""
    ctx = zmq.asyncio.Context()
    tasks: list[asyncio.Task] = []

    def start(pub: str, ctl: str, **kwargs) -> StateMirror:
        kwargs.setdefault("heartbeat_s", HB)
        kwargs.setdefault("request_timeout_s", 0.5)
        mirror = StateMirror(pub, ctl, context=ctx, **kwargs)
        task = asyncio.create_task(mirror.run())
        mirror.task = task  # type: ignore[attr-defined]
        tasks.append(task)
        return mirror

    yield start
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    ctx.destroy(linger=0)


def alive(mirror: StateMirror) -> None:
    task = mirror.task  # type: ignore[attr-defined]
    if task.done():
        raise AssertionError(f"the mirror task died: {task.exception()!r}")


# --------------------------------------------------------------------------- control: RealmClient


def test_client_snapshot_and_commands(eps, trainers):
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1")
    trainer.emit_all(mixed(25))
    client = RealmClient(ctl, timeout_s=1.0, retries=1)
    snap = client.snapshot()
    assert isinstance(snap, Snapshot)
    assert (snap.run, snap.seq) == ("run-1", 25)
    assert snap.state == trainer.pub.state
    for request in (PauseRequest(), ResumeRequest(), StopRequest()):
        assert client.request(request) == Ack(message=type(request).__name__)


def test_ipc_folder_is_private(eps, trainers):
    pub, ctl = eps
    trainers(pub, ctl, "run-1")
    folder = Path(pub[len("ipc://") :]).parent
    assert folder.stat().st_mode & 0o777 == 0o700
    prepare_endpoint("tcp://127.0.0.1:1")  # not ipc: nothing to do, no error


def test_an_ipc_endpoint_in_a_folder_the_realm_does_not_own_is_refused_and_the_folder_left_alone(tmp_path):
    shared = tmp_path / "shared"  # like /tmp: everyone may write, the sticky bit guards their files
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(UnsafeEndpoint, match=f"{shared} is not the realm's own .*mode 1777.*a folder of its own"):
        Publisher(f"ipc://{shared}/pub", "run-1")
    assert shared.stat().st_mode & 0o7777 == 0o1777 and list(shared.iterdir()) == []
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    with pytest.raises(UnsafeEndpoint, match="mode 755"):
        ControlServer(f"ipc://{mine}/ctl", lambda request: Ack(message="ok"))
    assert mine.stat().st_mode & 0o777 == 0o755


def test_socket_files_go_when_their_sockets_close(eps, trainers):
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1")
    folder = Path(pub[len("ipc://") :]).parent
    assert sorted(p.name for p in folder.iterdir()) == ["ctl", "pub"]
    trainer.close()
    assert list(folder.iterdir()) == []
    trainers(pub, ctl, "run-2")  # the folder made by the realm is its own: binding again needs no change


def _raw_req(ctx: zmq.Context, endpoint: str, frame: bytes) -> protocol.Reply:
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(frame)
        assert sock.poll(2000, zmq.POLLIN), "the server did not answer a bad frame"
        return protocol.decode_reply(sock.recv())
    finally:
        sock.close(linger=0)


def _raw_dealer(ctx: zmq.Context, endpoint: str, frames: list[bytes]) -> protocol.Reply:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send_multipart(frames)
        assert sock.poll(2000, zmq.POLLIN), "the server did not answer a bad frame"
        reply = sock.recv_multipart()
        assert reply[0] == b""  # the server always answers in REQ-compatible framing
        return protocol.decode_reply(reply[-1])
    finally:
        sock.close(linger=0)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"garbage",
        b"\xc1",
        b"\x81\xa4type\xa7explode",  # {"type": "explode"}
        encode(Heartbeat(run="r", seq=1, time=0.0)),  # a message of the wrong family
        encode(PauseRequest())[:-2],  # truncated
        protocol.msgspec.msgpack.encode({"type": "pause", "force": True}),
        b"\x81\xa4t\xffpe\xa5pause",  # a key that is not UTF-8
    ],
    ids=["empty", "text", "never-used", "unknown-tag", "wrong-family", "truncated", "extra-field", "bad-utf8"],
)
def test_garbage_request_gets_error_reply_and_server_keeps_serving(eps, trainers, zctx, frame):
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1")
    reply = _raw_req(zctx, ctl, frame)
    assert isinstance(reply, ErrorReply)
    assert reply.message.startswith("invalid request message: ")
    assert trainer.server.bad_requests == 1
    assert RealmClient(ctl, timeout_s=1.0).snapshot().run == "run-1"


def test_garbage_from_dealer_in_any_framing(eps, trainers, zctx):
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1")
    for frames in ([b"", b"junk"], [b"junk"], [b"a", b"b", b"c"], [b"", encode(PauseRequest()), b"junk"]):
        reply = _raw_dealer(zctx, ctl, frames)
        assert isinstance(reply, ErrorReply), frames
    assert trainer.server.bad_requests == 4
    # and a well-formed request over a DEALER still works
    assert _raw_dealer(zctx, ctl, [b"", encode(PauseRequest())]) == Ack(message="PauseRequest")
    assert RealmClient(ctl, timeout_s=1.0).snapshot().run == "run-1"


def test_oversized_requests(eps, zctx):
    pub, ctl = eps
    ctx = zmq.Context()
    publisher = Publisher(pub, "run-1", context=ctx)
    server = ControlServer(
        ctl, lambda r: publisher.snapshot(), publisher, heartbeat_s=HB, max_message_bytes=1000, context=ctx
    ).start()
    try:
        # over the decoder's limit but under the socket's: a clear error comes back
        reply = _raw_req(zctx, ctl, b"\x00" * 1500)
        assert isinstance(reply, ErrorReply)
        assert reply.message == "request message of 1500 bytes exceeds the 1000-byte limit"
        # far over: ZeroMQ drops the connection (MAXMSGSIZE) before the frame is read
        sock = zctx.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(ctl)
        sock.send(b"\x00" * 100_000)
        assert not sock.poll(300, zmq.POLLIN)
        sock.close(linger=0)
        assert RealmClient(ctl, timeout_s=1.0).snapshot().run == "run-1"
    finally:
        server.stop()
        publisher.close()
        ctx.term()


def test_handler_that_raises_gets_error_reply_and_server_survives(eps, trainers):
    pub, ctl = eps
    holder: dict = {}

    def handler(request):
        if isinstance(request, PauseRequest):
            raise RuntimeError("the engine is on fire")
        if isinstance(request, ResumeRequest):
            return object()  # not a message at all: a handler bug, answered as one
        return holder["trainer"].pub.snapshot()

    holder["trainer"] = trainer = trainers(pub, ctl, "run-1", handler=handler)
    client = RealmClient(ctl, timeout_s=1.0, retries=0)
    with pytest.raises(RequestFailed, match="RuntimeError: the engine is on fire"):
        client.request(PauseRequest())
    with pytest.raises(RequestFailed, match="TypeError"):
        client.request(ResumeRequest())
    assert client.snapshot().run == "run-1"
    assert trainer.server._thread.is_alive()
    assert trainer.server.bad_requests == 0  # handler bugs are not bad requests


def test_snapshot_refuses_a_non_snapshot_reply(eps, zctx):
    _, ctl = eps
    server = ControlServer(
        ctl, lambda request: Ack(message="hm"), None, context=zctx
    ).start()  # no publisher: the handler answers
    try:
        with pytest.raises(RequestFailed, match="expected a snapshot, got Ack"):
            RealmClient(ctl, timeout_s=1.0).snapshot()
    finally:
        server.stop()


def big_queue(quests: int = 4000) -> QueueChanged:
    """A board with a long queue: a snapshot of about 1 MB, bigger than a socket's kernel buffer."""
    return QueueChanged(queued=tuple(QuestInfo(name=f"{i:05d}-" + "q" * 240 + ".jsonl") for i in range(quests)))


def non_readers(zctx, ctl: str, peers: int, asks: int) -> list[zmq.Socket]:
    """``peers`` DEALER clients that each send ``asks`` snapshot requests and never read."""
    frame = encode(SnapshotRequest())
    sockets = []
    for _ in range(peers):
        sock = zctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 1)
        sock.connect(ctl)
        sockets.append(sock)
    for _ in range(asks):
        for sock in sockets:
            sock.send_multipart([b"", frame])
    return sockets


def test_peers_that_never_read_get_a_few_replies_queued_and_the_rest_dropped_and_counted(eps, trainers, zctx):
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1")
    trainer.emit_all([big_queue()])
    peers, asks = 4, 200
    sockets = non_readers(zctx, ctl, peers, asks)
    server = trainer.server
    assert poll_until(lambda: server.replies_sent + server.dropped_replies == peers * asks, timeout=20)
    # each peer: its queue on our side, one in its own receive queue, one on its way between them
    assert server.replies_sent <= peers * (REPLY_HWM + 2)
    assert server.dropped_replies >= peers * (asks - REPLY_HWM - 2)
    assert RealmClient(ctl, timeout_s=1.0).snapshot().seq == trainer.pub.seq  # a client that reads is served
    for sock in sockets:
        sock.close(linger=0)


def test_a_snapshot_is_encoded_once_per_state_version(eps, trainers):
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1")
    trainer.emit_all(mixed(50))
    first = trainer.pub.snapshot_frame()
    assert trainer.pub.snapshot_frame() is first  # no change, no new encoding
    assert RealmClient(ctl, timeout_s=1.0).snapshot().seq == 50
    assert trainer.pub.snapshot_frame() is first  # the request was answered from the same bytes
    trainer.pub.emit(step(51))
    assert protocol.decode_reply(trainer.pub.snapshot_frame()).seq == 51


class LongWork:
    """A handler whose StopRequest is long work: it runs until the test releases it."""

    def __init__(self) -> None:
        self.started = threading.Semaphore(0)
        self.release = threading.Event()

    def handle(self, request):
        if isinstance(request, StopRequest):
            return Later(self.work)
        return Ack(message=type(request).__name__)

    def work(self):
        self.started.release()
        assert self.release.wait(20)
        return Ack(message="done at last")


def asker(zctx, ctl: str, request) -> zmq.Socket:
    sock = zctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(ctl)
    sock.send_multipart([b"", encode(request)])
    return sock


def test_a_long_request_runs_off_the_control_thread_so_heartbeats_and_requests_go_on(eps, trainers, zctx):
    pub, ctl = eps
    long = LongWork()
    trainers(pub, ctl, "run-1", handler=long.handle)
    sub = zctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(pub)
    waiting = asker(zctx, ctl, StopRequest())
    assert long.started.acquire(timeout=10)
    try:
        assert RealmClient(ctl, timeout_s=1.0, retries=0).request(PauseRequest()) == Ack(message="PauseRequest")
        assert sub.poll(5000, zmq.POLLIN)  # heartbeats go on while the work runs
        assert isinstance(protocol.decode_published(sub.recv()), Heartbeat)
        assert not waiting.poll(0, zmq.POLLIN)
    finally:
        long.release.set()
    assert waiting.poll(5000, zmq.POLLIN)
    assert protocol.decode_reply(waiting.recv_multipart()[-1]) == Ack(message="done at last")


def test_long_requests_beyond_the_queue_are_answered_busy(eps, trainers, zctx):
    pub, ctl = eps
    long = LongWork()
    trainer = trainers(pub, ctl, "run-1", handler=long.handle)
    running = asker(zctx, ctl, StopRequest())
    assert long.started.acquire(timeout=10)  # the worker holds one; the queue is empty again
    try:
        queued = [asker(zctx, ctl, StopRequest()) for _ in range(LONG_REQUESTS)]
        assert poll_until(lambda: trainer.server._long.full(), timeout=10)
        with pytest.raises(
            RequestFailed, match=f"the trainer is busy with {LONG_REQUESTS} long requests; try again in a moment"
        ):
            RealmClient(ctl, timeout_s=2.0, retries=0).request(StopRequest())
    finally:
        long.release.set()
    for sock in [running, *queued]:  # every accepted one is answered in the end
        assert sock.poll(10_000, zmq.POLLIN)
        assert protocol.decode_reply(sock.recv_multipart()[-1]) == Ack(message="done at last")


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_client_with_nothing_listening_is_unreachable_in_time(eps, transport):
    if transport == "ipc":
        endpoint = eps[1]
    else:  # a port nobody listens on: bind one, note it, close it
        probe = zmq.Context.instance().socket(zmq.ROUTER)
        port = probe.bind_to_random_port("tcp://127.0.0.1")
        probe.close(linger=0)
        endpoint = f"tcp://127.0.0.1:{port}"
    timeout_s, retries = 0.2, 2
    client = RealmClient(endpoint, timeout_s=timeout_s, retries=retries)
    began = time.monotonic()
    with pytest.raises(TrainerUnreachable) as info:
        client.snapshot()
    took = time.monotonic() - began
    budget = (retries + 1) * timeout_s
    assert budget * 0.9 <= took <= budget + 1.0
    message = str(info.value)
    assert endpoint in message
    assert "3 tries, 0.6s" in message
    assert isinstance(info.value, ConnectionError)


def test_client_reaches_a_trainer_that_starts_during_retries(eps, trainers):
    pub, ctl = eps
    timer = threading.Timer(0.3, lambda: trainers(pub, ctl, "late"))
    timer.start()
    try:
        assert RealmClient(ctl, timeout_s=0.5, retries=4).snapshot().run == "late"
    finally:
        timer.join()


# --------------------------------------------------------------------------- the mirror


async def test_late_join_converges(eps, trainers, mirrors):
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1")
    trainer.emit_all([started(), *mixed(999, start=1)])
    assert trainer.pub.seq == 1000
    mirror = mirrors(pub, ctl, recent_limit=100_000)
    assert await wait_until(lambda: mirror.connected)
    first_seq = mirror.seq
    assert first_seq >= 1000  # the history came in the snapshot, not as replayed events
    for batch in range(10):  # more events, while the mirror runs
        trainer.emit_all(mixed(100, start=1000 + 100 * batch))
        await asyncio.sleep(0.005)
    assert await wait_until(lambda: mirror.seq == trainer.pub.seq)
    alive(mirror)
    assert mirror.seq == trainer.pub.seq == 2000
    assert mirror.state == trainer.pub.state
    assert mirror.state.run == "run-1"
    assert len(mirror.recent) > 0  # events were applied live, not only through snapshots
    assert [e.seq for e in mirror.recent] == sorted({e.seq for e in mirror.recent})


async def test_mirror_before_trainer(eps, trainers, mirrors):
    pub, ctl = eps
    mirror = mirrors(pub, ctl, request_timeout_s=0.1)
    await asyncio.sleep(0.3)
    assert not mirror.connected and mirror.snapshots == 0
    trainer = trainers(pub, ctl, "run-1")
    trainer.emit_all(mixed(50))
    assert await wait_until(lambda: mirror.connected and mirror.seq == trainer.pub.seq)
    assert mirror.state == trainer.pub.state


async def test_a_flood_leaves_the_event_loop_turns_for_the_ui(eps, trainers, mirrors):
    """The mirror applies queued events in bounded batches, so a UI on the same loop repaints."""
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1")
    trainer.pub.emit(started())
    mirror = mirrors(pub, ctl, batch=200)
    assert await wait_until(lambda: mirror.connected and mirror.seq == 1)
    trainer.emit_all(mixed(20_000, start=1))  # all queued while the loop is blocked
    turns = 0

    async def ui():
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(ui())
    try:
        assert await wait_until(lambda: mirror.seq == trainer.pub.seq, timeout=10.0, every=0.001)
    finally:
        ticker.cancel()
    assert mirror.snapshots == 1 and mirror.state == trainer.pub.state
    assert turns >= 20_000 // 200 // 2, f"the UI got only {turns} turns while 20000 events were applied"


async def test_forced_gap_is_detected_and_healed(eps, trainers, mirrors):
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1", sndhwm=10)
    trainer.pub.emit(started())
    mirror = mirrors(pub, ctl, rcvhwm=10, recent_limit=1_000_000)
    assert await wait_until(lambda: mirror.connected)
    trainer.pub.emit(step(1))  # prove the subscription is live before flooding
    assert await wait_until(lambda: mirror.seq == trainer.pub.seq)
    first_seq = mirror.seq
    assert mirror.snapshots == 1
    # a slow consumer: flood while the event loop (and so the mirror) is blocked
    trainer.emit_all(mixed(30_000, start=2))
    assert await wait_until(lambda: mirror.seq == trainer.pub.seq, timeout=5.0)
    alive(mirror)
    applied = {e.seq for e in mirror.recent if e.seq > first_seq}
    emitted = trainer.pub.seq - first_seq
    assert len(applied) < emitted, "no event was dropped: the test did not force a gap"
    assert mirror.snapshots > 1  # the gap was seen, and healed by a fresh snapshot
    assert mirror.seq == trainer.pub.seq
    assert mirror.state == trainer.pub.state


async def test_gap_at_the_end_is_healed_by_a_heartbeat(eps, trainers, mirrors, zctx):
    """Events lost with nothing after them: only the heartbeat's seq can reveal the gap."""
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1")
    mirror = mirrors(pub, ctl)
    trainer.pub.emit(started())
    assert await wait_until(lambda: mirror.connected and mirror.seq == 1)
    # emit events the mirror can never see: apply them to the trainer's state as emit would,
    # but send them nowhere (as a full PUB queue would)
    for n in range(2, 12):
        envelope_state = apply(trainer.pub.state, step(n), time.time())
        with trainer.pub._lock:
            trainer.pub.state, trainer.pub.seq = envelope_state, trainer.pub.seq + 1
    assert await wait_until(lambda: mirror.seq == trainer.pub.seq == 11)
    assert mirror.snapshots == 2
    assert mirror.state == trainer.pub.state


async def test_restart_follows_the_new_run(eps, trainers, mirrors):
    pub, ctl = eps
    first = trainers(pub, ctl, "run-a")
    first.emit_all([started("old-model"), *mixed(199, start=1)])
    mirror = mirrors(pub, ctl)
    assert await wait_until(lambda: mirror.seq == first.pub.seq == 200)
    assert mirror.state.run == "run-a"
    first.close()
    second = trainers(pub, ctl, "run-b")  # same endpoints, a new run: seq starts again at 0
    second.emit_all([started("new-model"), *mixed(20, start=1)])
    assert await wait_until(lambda: mirror.state.run == "run-b" and mirror.seq == second.pub.seq)
    alive(mirror)
    assert mirror.seq == 21 < 200
    assert mirror.state == second.pub.state
    assert mirror.state.trainer.model == "new-model"
    second.emit_all(mixed(30, start=21))  # and it keeps following the new run
    assert await wait_until(lambda: mirror.seq == second.pub.seq == 51)
    assert mirror.state == second.pub.state


async def test_restart_while_mirror_is_behind(eps, trainers, mirrors):
    """Old-run events still buffered in the SUB queue must not confuse the mirror."""
    pub, ctl = eps
    first = trainers(pub, ctl, "run-a")
    first.pub.emit(started())
    mirror = mirrors(pub, ctl)
    assert await wait_until(lambda: mirror.connected)
    first.emit_all(mixed(3000, start=1))  # queued for the mirror while the loop is blocked
    first.close()
    second = trainers(pub, ctl, "run-b")
    second.emit_all(mixed(10))
    assert await wait_until(lambda: mirror.state.run == "run-b" and mirror.seq == second.pub.seq, timeout=5)
    assert mirror.state == second.pub.state


async def _beating_and_followed(eps, trainers, mirrors, hb: float, request_timeout_s: float):
    """A trainer beating every ``hb`` seconds, and a mirror connected to it: (trainer, mirror)."""
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1", heartbeat_s=hb)
    trainer.pub.emit(started())
    mirror = mirrors(pub, ctl, heartbeat_s=hb, request_timeout_s=request_timeout_s)
    assert await wait_until(lambda: mirror.connected)
    return trainer, mirror


async def test_silent_trainer_is_disconnected_after_three_heartbeats(eps, trainers, mirrors):
    hb = 0.1
    trainer, mirror = await _beating_and_followed(eps, trainers, mirrors, hb, request_timeout_s=0.2)
    # idle, but heartbeats keep it connected for many heartbeat periods
    stay_until = time.monotonic() + 6 * hb
    while time.monotonic() < stay_until:
        assert mirror.connected
        await asyncio.sleep(0.01)
    heard = mirror.last_heard
    assert time.monotonic() - heard < 2 * hb
    # the control thread (which sends heartbeats) stops: the trainer has gone silent
    trainer.server.stop()
    silent_since = time.monotonic()
    assert await wait_until(lambda: not mirror.connected, timeout=3.0)
    took = time.monotonic() - silent_since
    assert (MISSED_HEARTBEATS - 1) * hb <= took <= MISSED_HEARTBEATS * hb + 1.0, took
    await asyncio.sleep(0.3)
    assert not mirror.connected  # nobody answers the snapshot request either
    alive(mirror)


async def test_heartbeats_keep_an_idle_mirror_connected_and_in_sync(eps, trainers, mirrors):
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1")
    trainer.emit_all(mixed(10))
    mirror = mirrors(pub, ctl)
    assert await wait_until(lambda: mirror.seq == 10)
    before = mirror.last_heard
    await asyncio.sleep(5 * HB)
    assert mirror.connected and mirror.last_heard > before  # heard heartbeats while idle
    assert mirror.snapshots == 1  # heartbeats at our seq cause no resync


def test_heartbeats_when_idle_carry_current_seq(eps, trainers, zctx):
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1", heartbeat_s=HB)
    sub = zctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(pub)
    trainer.emit_all(mixed(5))

    def next_heartbeat(timeout: float = 2.0) -> Heartbeat:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sub.poll(50, zmq.POLLIN):
                message = protocol.decode_published(sub.recv())
                if isinstance(message, Heartbeat):
                    return message
        raise AssertionError("no heartbeat")

    beat = next_heartbeat()
    assert (beat.run, beat.seq) == ("run-1", 5)
    assert beat.status == trainer.pub.state.battle.status == "training"
    trainer.emit_all(mixed(3, start=5))
    assert poll_until(lambda: next_heartbeat().seq == 8)
    gaps = []
    last = None
    for _ in range(5):
        beat = next_heartbeat()
        if last is not None:
            gaps.append(beat.time - last)
        last = beat.time
    assert all(0.5 * HB <= gap <= 4 * HB for gap in gaps), gaps
    sub.close(linger=0)


def test_no_heartbeats_while_events_flow(eps, trainers, zctx):
    hb = 0.3
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1", heartbeat_s=hb)
    sub = zctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(pub)
    assert poll_until(lambda: sub.poll(10, zmq.POLLIN), timeout=2.0)  # the first heartbeat: subscribed
    while sub.poll(0, zmq.POLLIN):
        sub.recv()
    kinds = []
    for n in range(60):  # an event every 10 ms for 0.6 s, two heartbeat periods
        trainer.pub.emit(step(n))
        time.sleep(0.01)
        while sub.poll(0, zmq.POLLIN):
            kinds.append(type(protocol.decode_published(sub.recv())))
    assert Envelope in kinds and Heartbeat not in kinds
    sub.close(linger=0)


async def test_garbled_published_frames_are_counted_and_skipped(eps, mirrors, zctx):
    pub, ctl = eps
    prepare_endpoint(pub)
    raw_pub = zctx.socket(zmq.PUB)
    raw_pub.setsockopt(zmq.LINGER, 0)
    raw_pub.bind(pub)
    base = RealmState(run="g")
    server = ControlServer(ctl, lambda request: Snapshot(run="g", seq=0, state=base), None, context=zctx).start()
    try:
        mirror = mirrors(pub, ctl, heartbeat_s=10.0)  # no heartbeats here: never time out
        assert await wait_until(lambda: mirror.connected)
        sent = 0
        while mirror.bad_messages == 0:  # junk until one arrives: the subscription is live
            raw_pub.send(b"\xc1 not msgpack")
            sent += 1
            await asyncio.sleep(0.02)
            assert sent < 200, "the mirror never received anything"
        counted = mirror.bad_messages
        envelope = encode(Envelope(run="g", seq=1, time=1.0, event=step(1)))
        junk = [
            b"",
            b"hello",
            encode(SnapshotRequest()),  # the wrong family
            envelope[:-3],  # truncated
            encode(Envelope(run="g", seq=1, time=1.0, event=step(1))).replace(b"\xa3run", b"\xa3rux"),  # wrong field
            protocol.msgspec.msgpack.encode({"type": "heartbeat", "run": "g", "seq": 0, "time": 0.0, "extra": 1}),
            b"\x00" * (protocol.MAX_MESSAGE_BYTES + 1),  # oversized
        ]
        expected = base
        for seq in range(1, 21):
            event = step(seq) if seq % 5 else Notice(level="info", text=f"n{seq}")
            raw_pub.send(junk[seq % len(junk)])
            raw_pub.send(encode(Envelope(run="g", seq=seq, time=float(seq), event=event)))
            expected = apply(expected, event, float(seq))
        assert await wait_until(lambda: mirror.seq == 20)
        alive(mirror)
        assert mirror.state == expected
        assert counted + 20 <= mirror.bad_messages <= sent + 20
        assert mirror.snapshots == 1  # junk is skipped, not mistaken for a gap
        assert mirror.connected
    finally:
        server.stop()
        raw_pub.close(linger=0)


async def test_mirror_survives_a_control_endpoint_that_answers_junk(eps, mirrors, zctx):
    pub, ctl = eps
    prepare_endpoint(ctl)
    router = zctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(ctl)
    answered = 0
    stop = threading.Event()

    def serve():
        nonlocal answered
        while not stop.is_set():
            if router.poll(20, zmq.POLLIN):
                identity, *_ = router.recv_multipart()
                router.send_multipart([identity, b"", b"\xc1 junk"])
                answered += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        mirror = mirrors(pub, ctl, request_timeout_s=0.2)
        assert await wait_until(lambda: mirror.bad_messages >= 2)
        await asyncio.sleep(0.5)
        alive(mirror)
        assert not mirror.connected and mirror.snapshots == 0
        assert answered <= 8, f"the mirror asked {answered} times in under a second: it spins"
    finally:
        stop.set()
        thread.join()
        router.close(linger=0)


async def test_mirror_survives_an_error_reply_to_its_snapshot(eps, mirrors, zctx):
    pub, ctl = eps
    calls = []

    def handler(request):
        calls.append(request)
        raise RuntimeError("not ready")

    publisher = Publisher(pub, "run-1", context=zctx)
    server = ControlServer(ctl, handler, None, context=zctx).start()  # no publisher: the handler answers snapshots
    try:
        mirror = mirrors(pub, ctl, request_timeout_s=0.2)
        await asyncio.sleep(0.6)
        alive(mirror)
        assert not mirror.connected
        assert 1 <= len(calls) <= 6, f"{len(calls)} snapshot requests in 0.6 s"
    finally:
        server.stop()
        publisher.close()


async def test_request_async_times_out_with_none(eps):
    ctx = zmq.asyncio.Context()
    try:
        began = time.monotonic()
        assert await request_async(ctx, eps[1], SnapshotRequest(), timeout_s=0.2) is None
        assert 0.15 <= time.monotonic() - began < 1.0
    finally:
        ctx.destroy(linger=0)


def test_publisher_closed_before_server_does_not_kill_the_server(eps, trainers):
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1")
    trainer.pub.close()  # the "wrong" shutdown order: heartbeats now hit a closed publisher
    time.sleep(4 * HB)
    assert trainer.server._thread.is_alive()
    assert RealmClient(ctl, timeout_s=1.0).snapshot().run == "run-1"


def test_publisher_from_many_threads_keeps_seq_and_state_consistent(eps, trainers):
    pub, ctl = eps
    trainer = trainers(pub, ctl, "run-1")
    done = [QuestFinished(result=QuestResult(name=f"q{i}", outcome="done")) for i in range(500)]
    threads = [threading.Thread(target=trainer.emit_all, args=(done,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    snaps = []
    while True:  # at least one snapshot, even if the threads are done before the first
        snaps.append(trainer.pub.snapshot())
        if not any(thread.is_alive() for thread in threads):
            break
    for thread in threads:
        thread.join()
    assert trainer.pub.seq == 2000
    assert snaps
    for snap in snaps:  # every event counts one quest, so a consistent pair has these equal
        assert snap.state.hero.quests_completed == snap.seq
    snap = RealmClient(ctl, timeout_s=1.0).snapshot()
    assert snap.seq == 2000 and snap.state == trainer.pub.state


def test_bind_failure_is_a_clear_oserror(eps, trainers, zctx):
    pub, ctl = eps
    trainers(pub, ctl, "run-1")
    with pytest.raises(OSError, match="cannot bind tcp://256.0.0.1:1"):
        Publisher("tcp://256.0.0.1:1", "r", context=zctx)
    port_holder = zctx.socket(zmq.PUB)
    port = port_holder.bind_to_random_port("tcp://127.0.0.1")
    try:
        with pytest.raises(OSError, match="Address already in use"):
            Publisher(f"tcp://127.0.0.1:{port}", "r", context=zctx)
    finally:
        port_holder.close(linger=0)


async def test_a_stalled_event_loop_is_not_mistaken_for_a_silent_trainer(eps, trainers, mirrors):
    """The UI's loop may block longer than the silence window (a slow repaint, a busy host):
    the heartbeats that queued meanwhile prove the trainer alive, so the mirror stays connected."""
    hb = 0.1
    _, mirror = await _beating_and_followed(eps, trainers, mirrors, hb, request_timeout_s=0.5)
    for _ in range(2):
        time.sleep(MISSED_HEARTBEATS * hb * 2)  # blocks the loop; the trainer's thread keeps beating
        await asyncio.sleep(0.05)
        assert mirror.connected
    assert mirror.snapshots == 1
    alive(mirror)
