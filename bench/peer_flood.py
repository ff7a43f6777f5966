"""Peer flood: clients that send requests and never read the replies, against a real trainer.

    python bench/peer_flood.py [--clients 40] [--requests 1000] [--seconds 10]

A trainer runs as its own process on a temporary home (CPU, one torch thread, ipc sockets).
The bench measures its resident memory (VmRSS) and its training speed (optimizer steps/s,
read from snapshots) three times: quiet, while N DEALER clients have each sent M snapshot
requests without reading a reply, and after those clients closed their sockets. Everything is
bounded in time: the trainer is stopped (SIGTERM, then SIGKILL) at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zmq  # noqa: E402

from realm import protocol  # noqa: E402
from realm.bus import RealmClient, TrainerUnreachable  # noqa: E402
from realm.config import endpoints, load_config  # noqa: E402
from realm.protocol import SnapshotRequest  # noqa: E402

CONFIG = "train: {threads: 1, batch_size: 4, max_length: 64, checkpoint_every: 100000}\n"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_trainer(home: Path) -> tuple[subprocess.Popen, RealmClient]:
    config_path = home / "realm.yaml"
    config_path.write_text(CONFIG)
    command = [sys.executable, "-m", "realm.cli", "trainer", "--home", str(home), "--config", str(config_path)]
    log = open(home / "trainer.log", "wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    _, control = endpoints(load_config(config_path), home)
    client = RealmClient(control, timeout_s=2.0, retries=0)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if client.snapshot().state.hero.steps > 0:
                return process, client
        except TrainerUnreachable:
            pass
        if process.poll() is not None:
            raise SystemExit(f"the trainer exited ({process.returncode}); see {home / 'trainer.log'}")
        time.sleep(0.5)
    raise SystemExit("the trainer did not start training within 120 s")


def watch(client: RealmClient, pid: int, seconds: float) -> tuple[float, float]:
    """(optimizer steps/s, the highest RSS in MB) over ``seconds``."""
    first = client.snapshot().state.hero.steps
    began = time.monotonic()
    peak = rss_mb(pid)
    while time.monotonic() - began < seconds:
        time.sleep(0.2)
        peak = max(peak, rss_mb(pid))
    last = client.snapshot().state.hero.steps
    return (last - first) / (time.monotonic() - began), peak


def flood(control: str, clients: int, requests: int) -> list[zmq.Socket]:
    context = zmq.Context.instance()
    frame = protocol.encode(SnapshotRequest())
    sockets = []
    for _ in range(clients):
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)  # queue every request on our side: the trainer decides what it takes
        sock.setsockopt(zmq.RCVHWM, 1)  # and read nothing
        sock.connect(control)
        sockets.append(sock)
    for _ in range(requests):
        for sock in sockets:
            sock.send_multipart([b"", frame], zmq.NOBLOCK)
    return sockets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--requests", type=int, default=1000, help="requests per client")
    parser.add_argument("--seconds", type=float, default=10.0, help="each measuring window")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="realm-flood-") as tmp:
        home = Path(tmp)
        process, client = start_trainer(home)
        try:
            quiet_speed, quiet_rss = watch(client, process.pid, args.seconds)
            print(f"quiet:  RSS {quiet_rss:7.1f} MB, {quiet_speed:6.2f} steps/s", flush=True)
            sockets = flood(client.endpoint, args.clients, args.requests)
            flood_speed, peak = watch(client, process.pid, args.seconds)
            print(
                f"flood:  RSS {peak:7.1f} MB, {flood_speed:6.2f} steps/s "
                f"({args.clients} clients x {args.requests} snapshot requests, never read)",
                flush=True,
            )
            for sock in sockets:
                sock.close(linger=0)
            time.sleep(1.0)  # the trainer's I/O thread notices the gone peers
            after_speed, _ = watch(client, process.pid, args.seconds)
            after_rss = rss_mb(process.pid)
            print(f"after:  RSS {after_rss:7.1f} MB, {after_speed:6.2f} steps/s (clients gone)", flush=True)
            print(
                f"delta:  RSS {peak - quiet_rss:+.1f} MB during, {after_rss - quiet_rss:+.1f} MB after; "
                f"speed {100 * (flood_speed / quiet_speed - 1):+.1f} % during",
                flush=True,
            )
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
