"""Shared fixtures: a fast training config and a real trainer running in a thread."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from realm.bus import RealmClient
from realm.config import RealmConfig, SkillsConfig, TrainConfig, endpoints

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition, timeout: float = 30.0, interval: float = 0.02, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def fast_config(**train) -> RealmConfig:
    """Small batches and a short warmup: real training steps in tens of milliseconds."""
    # fp32: auto would try bf16 for its first steps on a CPU with native bf16, and tests compare against fp32
    options = dict(batch_size=4, max_length=64, warmup_steps=5, checkpoint_every=1000, val_every=10, threads=1,
                   precision="fp32")  # fmt: skip
    options.update(train)
    # skill evals off: a test that wants them passes its own SkillsConfig (tests/skills)
    return RealmConfig(train=TrainConfig(**options), skills=SkillsConfig(enabled=False))


def write_chat_quest(path: Path, n: int = 64) -> Path:
    """A learnable quest: the assistant repeats the user's word backwards (64 distinct words, then repeats)."""
    words = ["apple", "river", "stone", "cloud", "ember", "frost", "grove", "haven"]
    lines = []
    for i in range(n):
        word = words[i % len(words)] + words[(i // len(words)) % len(words)]
        chat = [{"role": "user", "content": f"reverse {word}"}, {"role": "assistant", "content": word[::-1]}]
        lines.append(json.dumps({"messages": chat}))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class TrainerThread:
    """A real ``Daemon`` in a background thread, with a client on its control endpoint."""

    def __init__(self, home: Path, config: RealmConfig, max_steps: int | None = None) -> None:
        from trainer.daemon import Daemon

        self.home = home
        self.config = config
        self.daemon = Daemon(config, home, max_steps=max_steps)
        self.pub, self.control = endpoints(config, home)
        self.client = RealmClient(self.control, timeout_s=2.0, retries=2)
        self.exit_code: int | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.exit_code = self.daemon.run()
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def start(self) -> "TrainerThread":
        self._thread.start()
        wait_for(lambda: self.daemon.publisher is not None or self.error, what="the trainer to come up")
        if self.error:
            raise self.error
        return self

    @property
    def state(self):
        return self.daemon.publisher.state

    def stop(self) -> None:
        self.daemon._request_stop()
        self.join()

    def join(self, timeout: float = 60.0) -> int | None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "trainer did not stop"
        if self.error:
            raise self.error
        return self.exit_code


@pytest.fixture
def trainer_factory(tmp_path):
    started: list[TrainerThread] = []

    def make(config: RealmConfig | None = None, max_steps: int | None = None, home: Path | None = None):
        trainer = TrainerThread(home or tmp_path / "home", config or fast_config(), max_steps)
        started.append(trainer)
        return trainer

    yield make
    for trainer in started:
        if trainer._thread.is_alive():
            trainer.stop()


@pytest.fixture
def small_disk(tmp_path):
    """``make(size_mb)``: a fresh tmpfs of that size, to fill for real. Mounting needs root (or a
    user namespace's): where it fails, the test is skipped and says why."""
    mounted: list[Path] = []

    def make(size_mb: int) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"cannot mount a {size_mb} MB tmpfs to fill (uid {os.geteuid()}): {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


def fill(folder: Path, name: str = "filler", leave_mb: int = 0) -> Path:
    """Write ``folder/name`` until the disk is full, or until ``leave_mb`` MB are left (nothing
    when less was free). With ``leave_mb`` the disk is never full on the way, so a writer beside
    the test meets the space left, not a moment of none."""
    if not leave_mb:
        return _zeros(folder / name)
    return _zeros(folder / name, limit=max(0, shutil.disk_usage(folder).free - (leave_mb << 20)))


def _zeros(path: Path, limit: int | None = None) -> Path:
    """Append zeros to ``path`` until the disk is full or ``limit`` bytes are written."""
    left = math.inf if limit is None else limit
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for chunk in (1 << 20, 1 << 12, 1):  # smaller and smaller: the last bytes too
            try:
                while left > 0:
                    left -= os.write(fd, bytes(min(chunk, left)))
            except OSError:
                continue
    finally:
        os.close(fd)
    return path


def trainer_process(home: Path, config: Path, max_steps: int, **env: str) -> subprocess.Popen:
    """``realm trainer`` as its own process (for SIGKILL tests), its stderr kept for the failure message."""
    command = [sys.executable, "-m", "realm.cli", "trainer", "--home", str(home), "--config", str(config),
               "--max-steps", str(max_steps)]  # fmt: skip
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    environ.pop("NOTIFY_SOCKET", None)
    return subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
