"""systemd's side of the trainer, against a real unix datagram socket: READY, WATCHDOG while the
loop runs, STOPPING, and SIGTERM -> checkpoint -> exit 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import write_chat_quest

from realm.vault.checkpoints import complete_checkpoints, parse_step
from trainer.sdnotify import Notifier

ROOT = Path(__file__).resolve().parents[2]


def _listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(120)
    return sock


def _messages(sock: socket.socket, until: str, limit_s: float = 180) -> list[str]:
    """Datagrams received until one contains ``until``."""
    received: list[str] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        received.append(sock.recv(4096).decode())
        if until in received[-1]:
            return received
    raise AssertionError(f"no {until} within {limit_s}s; got {received}")


def test_notifier_speaks_the_protocol_and_is_silent_outside_systemd(tmp_path):
    sock = _listen(tmp_path / "n")
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "n"), "WATCHDOG_USEC": "100000000"})
    assert notifier.ready("step 3") and notifier.ping() and notifier.stopping()
    assert not notifier.ping(), "a second ping within half the watchdog period is not sent"
    assert [sock.recv(100).decode() for _ in range(3)] == ["READY=1\nSTATUS=step 3", "WATCHDOG=1", "STOPPING=1"]

    quiet = Notifier({})
    assert not quiet.enabled and not quiet.ready() and not quiet.ping()
    other = Notifier({"NOTIFY_SOCKET": str(tmp_path / "n"), "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert other.watchdog_s is None, "the watchdog belongs to another process"
    launched = {"NOTIFY_SOCKET": str(tmp_path / "n"), "WATCHDOG_USEC": "1000", "WATCHDOG_PID": str(os.getppid())}
    assert Notifier(launched).watchdog_s is None, "our parent's watchdog, but we were not launched by it"
    assert Notifier({**launched, "WORLD_SIZE": "2"}).watchdog_s == 0.001, (
        "rank 0 pings for its launcher (the unit's main process)"
    )
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "missing")})
    assert gone.ready() is False  # no systemd listening: never an exception


def test_sigterm_saves_a_checkpoint_and_exits_0_with_ready_watchdog_stopping(tmp_path):
    home = tmp_path / "h"
    write_chat_quest(home / "quests" / "queued" / "normal" / "q.jsonl", n=400)
    config = tmp_path / "c.yaml"
    config.write_text("train: {batch_size: 4, max_length: 64, threads: 1, checkpoint_every: 100000}\n")
    sock = _listen(tmp_path / "notify")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "300000"}
    trainer = subprocess.Popen(
        [sys.executable, "-m", "realm.cli", "trainer", "--home", str(home), "--config", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        before_ready = _messages(sock, "READY=1")
        assert all("WATCHDOG" not in m for m in before_ready), "no watchdog ping before the loop runs"
        pings = [m for m in _messages(sock, "WATCHDOG=1") + _messages(sock, "WATCHDOG=1") if m == "WATCHDOG=1"]
        assert len(pings) == 2
        trainer.send_signal(signal.SIGTERM)
        _messages(sock, "STOPPING=1")
        _, err = trainer.communicate(timeout=120)
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait()
    assert trainer.returncode == 0, err.decode()[-2000:]
    saved = complete_checkpoints(home / "vault" / "checkpoints")
    assert saved and parse_step(saved[-1].name) > 0
