"""The whole trainer daemon on two CPU processes (gloo), launched by the README's multi-GPU
command, ``accelerate launch --multi_gpu --num_processes 2 -m realm.cli trainer`` (torchrun
underneath; on a machine without CUDA the engine trains on CPU over gloo): rank 0 alone serves
the bus and writes the vault, rank 1 trains its share of every step in lockstep; status, pause,
resume and stop go through the real CLI to rank 0 and reach both; a restart resumes both ranks
from rank 0's checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from conftest import wait_for, write_chat_quest
from test_multiprocess import _free_port

from realm.bus import RealmClient, TrainerUnreachable
from realm.config import endpoints, load_config
from realm.protocol import Ack, ConfigUpdateRequest
from realm.vault.checkpoints import complete_checkpoints, parse_step
from realm.vault.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
train: {batch_size: 4, max_length: 64, threads: 1, warmup_steps: 2, checkpoint_every: 4, val_every: 1000}
skills: {enabled: false}
"""


class TwoRanks:
    """``accelerate launch --multi_gpu --num_processes 2 -m realm.cli trainer``, its log in a file."""

    def __init__(self, home: Path, config: Path, log: Path, *extra: str) -> None:
        self.home, self.config, self.log = home, config, log
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        env.pop("WORLD_SIZE", None)
        command = [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            "--num_processes",
            "2",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            str(_free_port()),
            "-m",
            "realm.cli",
            "trainer",
            "--home",
            str(home),
            "--config",
            str(config),
            *extra,
        ]
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def cli(self, *args: str) -> str:
        command = [sys.executable, "-m", "realm.cli", *args, "--home", str(self.home), "--config", str(self.config)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"realm {' '.join(args)}: {done.stderr}"
        return done.stdout

    def status(self) -> dict:
        return json.loads(self.cli("status", "--json"))["state"]

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """A failed test leaves nothing behind: the launcher's session, then any rank still running on
        this home (the launcher may start its ranks in sessions of their own)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        for pid in _pids_running_on(self.home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _pids_running_on(home: Path) -> list[int]:
    """Processes (other than this one) whose command line names ``home``."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        pid = int(cmdline.parent.name)
        if pid != os.getpid() and str(home).encode() in words:
            pids.append(pid)
    return pids


def _snapshot(home: Path, config):
    """The trainer's state straight from its control socket (quicker than the CLI for polling)."""
    _, control = endpoints(config, home)
    try:
        return RealmClient(control, timeout_s=1.0, retries=0).snapshot().state
    except TrainerUnreachable:
        return None


def _two_ranks_on_a_quest(tmp_path):
    """Two ranks launched on a fresh home with one 800-chat quest queued."""
    home, config_file = tmp_path / "home", tmp_path / "realm.yaml"
    config_file.write_text(CONFIG)
    write_chat_quest(home / "quests" / "queued" / "normal" / "q.jsonl", n=800)
    log = tmp_path / "ranks.log"
    return home, config_file, load_config(config_file), log, TwoRanks(home, config_file, log)


def test_two_ranks_train_in_lockstep_with_rank_0_alone_on_the_bus_and_the_vault(tmp_path):
    home, config_file, config, log, ranks = _two_ranks_on_a_quest(tmp_path)
    try:
        seen = []

        def steps() -> int:
            state = _snapshot(home, config)
            seen.append(state)
            return state.hero.steps if state else 0

        wait_for(
            lambda: steps() >= 6 or ranks.process.poll() is not None,
            timeout=150,
            interval=0.2,
            what="two ranks to train 6 steps",
        )
        assert ranks.process.poll() is None, log.read_text()[-3000:]
        # read from the snapshot that saw the 6 steps: on a loaded machine the quest may be over by
        # the time `realm status` (a new process) answers
        assert seen[-1].battle.quest is not None and seen[-1].battle.quest.name == "q.jsonl"
        assert ranks.status()["trainer"]["pid"] != ranks.process.pid

        assert "pausing" in ranks.cli("pause")
        wait_for(lambda: _snapshot(home, config).battle.status == "paused", timeout=60, what="paused")
        paused = ranks.status()
        assert paused["battle"]["status"] == "paused"
        assert steps() == paused["hero"]["steps"], "a paused realm trains no step"
        # a live config change between steps: every rank must take it, or their weights drift apart
        _, control = endpoints(config, home)
        reply = RealmClient(control, timeout_s=5.0).request(ConfigUpdateRequest(key="train.lr", value="0.0007"))
        assert isinstance(reply, Ack), reply
        assert "resuming" in ranks.cli("resume")
        wait_for(lambda: steps() > paused["hero"]["steps"] + 2, timeout=60, what="training to resume")
        assert _snapshot(home, config).battle.lr == 0.0007

        assert "stopping" in ranks.cli("stop")
        assert ranks.wait() == 0, log.read_text()[-3000:]
    finally:
        ranks.kill()

    text = log.read_text()
    final = parse_step(complete_checkpoints(home / "vault" / "checkpoints")[-1].name)
    assert re.search(rf"rank 1 stops at step {final}; its weights agree with rank 0's", text), (
        "rank 1 trained every step rank 0 did, with the same config"
    )
    _one_set_of_checkpoints(home)

    restarted = TwoRanks(home, config_file, log, "--max-steps", "2")  # both ranks resume from rank 0's checkpoint
    assert restarted.wait() == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert re.search(rf"rank 1 of 2 \(pid \d+\) follows rank 0 from step {final}\b", text)
    assert f"rank 1 stops at step {final + 2}; its weights agree with rank 0's" in text
    assert parse_step(complete_checkpoints(home / "vault" / "checkpoints")[-1].name) == final + 2
    _one_set_of_checkpoints(home)


def _one_set_of_checkpoints(home: Path) -> None:
    """Every folder is one the ledger recorded once; no second writer left a duplicate or a partial save."""
    folders = sorted(p.name for p in (home / "vault" / "checkpoints").iterdir())
    assert folders == sorted(p.name for p in complete_checkpoints(home / "vault" / "checkpoints"))
    steps = [parse_step(name) for name in folders]
    assert len(steps) == len(set(steps))
    ledger = Ledger(home / "vault" / "realm.db")
    try:
        assert sorted(info.name for info in ledger.present()) == folders
    finally:
        ledger.close()


def test_a_killed_rank_ends_the_job_without_a_hang_and_leaves_a_complete_vault(tmp_path):
    home, config_file, config, log, ranks = _two_ranks_on_a_quest(tmp_path)
    try:
        wait_for(
            lambda: (
                ((_snapshot(home, config) or None) and _snapshot(home, config).hero.steps >= 6)
                or ranks.process.poll() is not None
            ),
            timeout=150,
            interval=0.2,
            what="two ranks to train 6 steps",
        )
        follower = int(re.search(r"rank 1 of 2 \(pid (\d+)\)", log.read_text()).group(1))
        os.kill(follower, signal.SIGKILL)
        assert ranks.wait(timeout=120) != 0, "the launcher reports the lost rank"
    finally:
        ranks.kill()
    folders = set((home / "vault" / "checkpoints").iterdir())
    assert folders and folders == set(complete_checkpoints(home / "vault" / "checkpoints")), "no partial save left"
