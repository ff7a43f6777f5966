"""Bus benchmark: the realm's Publisher -> StateMirror against raw ZeroMQ PUB/SUB.

    python bench/bus.py [--events N] [--transport ipc|tcp]

The publisher runs in its own process (as the trainer does); the subscriber runs here.

* realm: ``Publisher.emit`` (reducer + encode + send, under the lock) with a ``ControlServer``
  for snapshots and heartbeats; a ``StateMirror`` on asyncio follows it (recv + decode +
  reducer). Latency is the envelope's time (stamped in ``emit``) to the moment the mirror
  has applied the event.
* raw: the same encoded envelope bytes on a plain PUB socket, with an 8-byte send time in
  front, received by a tight blocking ``recv`` loop on a SUB socket; no reducer, no
  decoding, no asyncio: the transport's own ceiling from Python.

Throughput is measured at full speed; latency at fixed rates (1000/s, 10000/s) and at full
speed, where it includes the time events wait in queues when the receiver is the slower side.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import multiprocessing as mp
import os
import shutil
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zmq  # noqa: E402
import zmq.asyncio  # noqa: E402

from realm import protocol  # noqa: E402
from realm.bus import ControlServer, Publisher, StateMirror  # noqa: E402
from realm.protocol import (  # noqa: E402
    Ack,
    Envelope,
    SnapshotRequest,
    StepMetrics,
    TrainerInfo,
    TrainerStarted,
)

RATES = (1000, 10_000, 0)
STAMP = struct.Struct("<d")  # events/s; 0 is full speed
HEARTBEAT_S = 0.2


def make_event(i: int) -> StepMetrics:
    return StepMetrics(
        step=i,
        loss=1.0 + 1.0 / (i + 1),
        lr=3e-3,
        grad_norm=0.5,
        tokens=4096,
        tokens_per_s=12345.0,
        examples_per_s=48.0,
        quest_step=i % 40,
        quest_total=40,
    )


def pace(start: float, i: int, rate: int) -> None:
    """Wait until event ``i`` is due at ``rate`` per second (0: don't wait)."""
    if not rate:
        return
    due = start + i / rate
    while True:
        left = due - time.perf_counter()
        if left <= 0:
            return
        if left > 0.002:
            time.sleep(left - 0.001)


# --------------------------------------------------------------------------- publishers (child processes)


def realm_trainer(pub: str, ctl: str, n: int, rate: int, ready, go, done, results) -> None:
    ctx = zmq.Context()
    publisher = Publisher(pub, "bench", context=ctx)
    server = ControlServer(
        ctl,
        lambda r: publisher.snapshot() if isinstance(r, SnapshotRequest) else Ack(),
        publisher,
        heartbeat_s=HEARTBEAT_S,
        context=ctx,
    ).start()
    info = TrainerInfo(model="bench", device="cpu", parameters=0, pid=os.getpid(), started=time.time())
    publisher.emit(TrainerStarted(trainer=info, step=0))
    events = [make_event(i) for i in range(n)]
    ready.set()
    go.wait()
    start = time.perf_counter()
    for i, event in enumerate(events):
        pace(start, i, rate)
        publisher.emit(event)
    seconds = time.perf_counter() - start
    results.put({"emitted": n, "seconds": seconds})
    done.wait(120)  # keep serving (heartbeats, snapshots) until the mirror has caught up
    server.stop()
    publisher.close()
    ctx.term()


def raw_publisher(pub: str, n: int, rate: int, ready, go, done, results) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(pub)
    # the very bytes the realm publisher sends for these events (the time is stamped in front)
    frames = [
        protocol.encode(Envelope(run="bench", seq=i + 2, time=time.time(), event=make_event(i))) for i in range(n)
    ]
    ready.set()
    while not go.wait(0.01):  # the subscriber says go once it has seen a probe: it is subscribed
        sock.send(b"probe")
    start = time.perf_counter()
    for i, frame in enumerate(frames):
        pace(start, i, rate)
        sock.send(STAMP.pack(time.time()) + frame, zmq.NOBLOCK)
    seconds = time.perf_counter() - start
    results.put({"emitted": n, "seconds": seconds})
    done.wait(120)
    sock.close(linger=0)
    ctx.term()


# --------------------------------------------------------------------------- subscribers (here)


class TimedRecent(collections.deque):
    """Stands in for ``StateMirror.recent``: the mirror appends each envelope right after
    applying it, so this is where the apply time is read."""

    def __init__(self) -> None:
        super().__init__()
        self.applied: list[tuple[float, float]] = []  # (sent, applied)

    def append(self, envelope: Envelope) -> None:  # type: ignore[override]
        self.applied.append((envelope.time, time.time()))


async def follow_realm(pub: str, ctl: str, n: int, go, timeout: float) -> dict:
    ctx = zmq.asyncio.Context()
    mirror = StateMirror(pub, ctl, heartbeat_s=HEARTBEAT_S, request_timeout_s=1.0, context=ctx)
    mirror.recent = TimedRecent()
    task = asyncio.create_task(mirror.run())
    try:
        deadline = time.monotonic() + 10
        while not (mirror.connected and mirror.seq >= 1):
            if time.monotonic() > deadline:
                raise RuntimeError("the mirror never connected")
            await asyncio.sleep(0.005)
        go.set()
        deadline = time.monotonic() + timeout
        while mirror.seq < n + 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        ok = mirror.seq == n + 1
        return {
            "applied": mirror.recent.applied,
            "complete": ok,
            "resyncs": mirror.snapshots - 1,
            "last_seq": mirror.seq,
        }
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        ctx.destroy(linger=0)


def follow_raw(pub: str, n: int, go, timeout: float) -> dict:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 100)
    sock.connect(pub)
    applied: list[tuple[float, float]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(applied) < n and time.monotonic() < deadline:
            try:
                frame = sock.recv()  # a tight blocking loop: the fastest a Python reader gets
            except zmq.Again:
                continue
            if frame == b"probe":
                go.set()
                continue
            applied.append((STAMP.unpack_from(frame)[0], time.time()))
        return {"applied": applied, "complete": len(applied) == n, "resyncs": 0, "last_seq": len(applied)}
    finally:
        sock.close(linger=0)
        ctx.term()


# --------------------------------------------------------------------------- one run


def endpoints(transport: str, folder: str, tag: str) -> tuple[str, str]:
    if transport == "ipc":
        return f"ipc://{folder}/{tag}-pub", f"ipc://{folder}/{tag}-ctl"
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    return f"tcp://127.0.0.1:{ports[0]}", f"tcp://127.0.0.1:{ports[1]}"


def run_once(kind: str, transport: str, folder: str, n: int, rate: int) -> dict:
    spawn = mp.get_context("spawn")
    ready, go, done, results = spawn.Event(), spawn.Event(), spawn.Event(), spawn.Queue()
    pub, ctl = endpoints(transport, folder, f"{kind}{rate}")
    if kind == "realm":
        proc = spawn.Process(target=realm_trainer, args=(pub, ctl, n, rate, ready, go, done, results))
    else:
        proc = spawn.Process(target=raw_publisher, args=(pub, n, rate, ready, go, done, results))
    proc.start()
    try:
        if not ready.wait(30):
            raise RuntimeError(f"{kind} publisher did not start")
        timeout = 10 + (n / rate if rate else 0)
        if kind == "realm":
            got = asyncio.run(follow_realm(pub, ctl, n, go, timeout))
        else:
            got = follow_raw(pub, n, go, timeout)
        sent = results.get(timeout=30)
    finally:
        done.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    applied = got["applied"]
    latencies = sorted((a - s) * 1000 for s, a in applied)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * (len(latencies) - 1)))] if latencies else float("nan")

    span = (applied[-1][1] - applied[0][0]) if applied else float("nan")
    return {
        "kind": kind,
        "rate": rate,
        "events": n,
        "emit_per_s": sent["emitted"] / sent["seconds"],
        "delivered": len(applied),
        "delivered_per_s": len(applied) / span if applied else 0.0,
        "complete": got["complete"],
        "resyncs": got["resyncs"],
        "p50": pct(0.50),
        "p99": pct(0.99),
        "max": latencies[-1] if latencies else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events for the full-speed run (default 20000)")
    parser.add_argument("--transport", choices=("ipc", "tcp"), default="ipc")
    args = parser.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="rbench-")
    began = time.monotonic()
    rows = []
    try:
        for rate in RATES:
            n = args.events if rate == 0 else min(args.events, max(1000, rate * 1))  # ~1 s per paced run
            for kind in ("realm", "raw"):
                rows.append(run_once(kind, args.transport, folder, n, rate))
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(
        f"bus benchmark: {args.transport}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"pyzmq {zmq.__version__} / libzmq {zmq.zmq_version()}"
    )
    print()
    header = (
        f"{'rate':>8} {'side':<6} {'events':>7} {'emit/s':>10} {'deliv/s':>10} {'got':>7} {'resync':>6} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        rate = f"{row['rate']}/s" if row["rate"] else "full"
        print(
            f"{rate:>8} {row['kind']:<6} {row['events']:>7} {row['emit_per_s']:>10,.0f} {row['delivered_per_s']:>10,.0f} "
            f"{row['delivered']:>7} {row['resyncs']:>6} {row['p50']:>8.3f} {row['p99']:>8.3f} {row['max']:>8.3f}"
            + ("" if row["complete"] else "  (incomplete)")
        )
    print()
    print("realm / raw (throughput: lower is slower; latency: higher is slower)")
    for realm, raw in zip(rows[0::2], rows[1::2]):
        rate = f"{realm['rate']}/s" if realm["rate"] else "full"
        parts = []
        if not realm["rate"]:
            parts.append(f"emit/s x{realm['emit_per_s'] / raw['emit_per_s']:.2f}")
            parts.append(f"delivered/s x{realm['delivered_per_s'] / raw['delivered_per_s']:.2f}")
        parts.append(f"p50 x{realm['p50'] / raw['p50']:.1f}")
        parts.append(f"p99 x{realm['p99'] / raw['p99']:.1f}")
        print(f"{rate:>8}  " + ", ".join(parts))
    print()
    print(f"took {time.monotonic() - began:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
