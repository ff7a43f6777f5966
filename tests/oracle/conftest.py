"""Fixtures for the oracle: a vault of real DIO-nano checkpoints and a real worker in a thread."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import msgspec
import pytest
from conftest import fast_config, wait_for

from realm.config import OracleConfig, RealmConfig, oracle_endpoints
from realm.home import Home
from realm.protocol import SuiteScore
from realm.vault.checkpoints import read_sidecar, write_checkpoint
from realm.vault.ledger import Ledger


def oracle_config(config: RealmConfig | None = None, **oracle) -> RealmConfig:
    options = dict(threads=1, telemetry_s=0.2, load_on_start="latest", guest_models=1)
    options.update(oracle)
    return msgspec.structs.replace(config or fast_config(), oracle=OracleConfig(**options))


def add_checkpoint(
    home: Path,
    step: int,
    *,
    seed: int | None = None,
    val_loss: float | None = None,
    skills: dict | None = None,
    suite: SuiteScore | None = None,
) -> Path:
    """A real checkpoint of an untrained DIO-nano (weights drawn under ``seed``), in the ledger.

    Untrained weights make long, distinct answers: a good test of streaming and of which
    checkpoint answered."""
    from trainer.engine import Engine

    paths = Home(home).ensure()
    engine = Engine(fast_config(seed=step if seed is None else seed))
    engine.step = step  # the training state agrees with the name, so a trainer resumes at `step`
    sidecar = {
        "time": 1.7e9 + step,
        "train_loss": 3.0,
        "val_loss": val_loss,
        "quest": None,
        "model": "builtin:dio-nano",
    }
    if skills is not None:
        sidecar["skills"] = skills
    folder = write_checkpoint(paths.checkpoints, step, datetime(2026, 1, 1, 12, 0), engine.save, sidecar)
    ledger = Ledger(paths.db)
    ledger.record(folder, read_sidecar(folder))
    if suite is not None:
        ledger.record_score(step, suite, when=1.7e9 + step)
    ledger.close()
    return folder


class OracleThread:
    """A real ``OracleWorker`` in a background thread, with a client on its control endpoint."""

    def __init__(self, home: Path, config: RealmConfig) -> None:
        from realm.oracle.client import OracleClient
        from realm.oracle.worker import OracleWorker

        self.home = home
        self.config = config
        self.worker = OracleWorker(config, home)
        self.pub, self.control = oracle_endpoints(config, home)
        self.client = OracleClient(self.control, timeout_s=2.0, retries=1)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:
            self.error = exc

    def start(self) -> "OracleThread":
        self._thread.start()
        wait_for(lambda: self.worker.ready.is_set() or self.error, what="the oracle to come up")
        if self.error:
            raise self.error
        return self

    @property
    def state(self):
        return self.worker.publisher.state.oracle

    def wait_serving(self, step: int, timeout: float = 60.0):
        return wait_for(
            lambda: self.state.serving if self.state.serving and self.state.serving.step == step else None,
            timeout=timeout,
            what=f"the oracle to serve step {step}",
        )

    def stop(self) -> None:
        self.worker.stop()
        self._thread.join(20)
        assert not self._thread.is_alive(), "oracle did not stop"
        if self.error:
            raise self.error


@pytest.fixture
def oracle_factory(tmp_path):
    started: list[OracleThread] = []

    def make(config: RealmConfig | None = None, home: Path | None = None) -> OracleThread:
        oracle = OracleThread(home or tmp_path / "home", config or oracle_config())
        started.append(oracle)
        return oracle.start()

    yield make
    for oracle in started:
        if oracle._thread.is_alive():
            oracle.stop()
