"""The oracle against the baselines a user would otherwise use, side by side in one run.

1. streamed tokens/s for one chat vs a plain ``model.generate`` loop on the same model;
2. aggregate tokens/s for 8 concurrent chats (continuous batching) vs 8 ``generate`` calls in turn;
3. promote-to-serving time (hot swap) for DIO-nano on this device;
4. checkpoint transfer MB/s over loopback TCP vs a plain file copy.

    python bench/oracle.py [--tokens 64] [--sessions 8] [--threads 1] [--transfer-mb 64]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec  # noqa: E402
import torch  # noqa: E402

from realm.bus import ControlServer, Publisher  # noqa: E402
from realm.config import ModelConfig, OracleConfig, RealmConfig, TrainConfig, oracle_endpoints  # noqa: E402
from realm.home import Home  # noqa: E402
from realm.model.loading import load_model  # noqa: E402
from realm.oracle.client import OracleClient  # noqa: E402
from realm.oracle.transfer import CheckpointCache, Fetcher  # noqa: E402
from realm.protocol import Sampling  # noqa: E402
from realm.vault.checkpoints import read_sidecar, write_checkpoint  # noqa: E402
from realm.vault.ledger import Ledger  # noqa: E402
from realm.vault.service import VaultService  # noqa: E402

PROMPT = "tell me about the dragon of the northern mountains"


def make_checkpoint(home: Path, step: int, config: RealmConfig) -> Path:
    from trainer.engine import Engine

    paths = Home(home).ensure()
    engine = Engine(msgspec.structs.replace(config, train=msgspec.structs.replace(config.train, seed=step)))
    folder = write_checkpoint(
        paths.checkpoints, step, datetime.now(), engine.save, {"time": time.time(), "val_loss": 2.0}
    )
    ledger = Ledger(paths.db)
    ledger.record(folder, read_sidecar(folder))
    ledger.close()
    return folder


class Baseline:
    """What a user would otherwise write: ``model.generate`` on the same checkpoint, in turn."""

    def __init__(self, folder: Path, tokens: int) -> None:
        self.model, tok = load_model(ModelConfig(device="cpu"), checkpoint=folder)
        self.model.eval()
        ids = tok.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=True, add_generation_prompt=True)
        self.ids = torch.tensor([list(ids["input_ids"] if hasattr(ids, "keys") else ids)])
        self.tokens = tokens
        self.kwargs = dict(max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        self.rate(1)  # warm-up

    @torch.inference_mode()
    def rate(self, runs: int) -> float:
        """Aggregate tokens/s of ``runs`` generate calls one after another."""
        started = time.perf_counter()
        for _ in range(runs):
            self.model.generate(self.ids, **self.kwargs)
        return runs * self.tokens / (time.perf_counter() - started)


def oracle_rate(control: str, tokens: int, sessions: int) -> float:
    """Aggregate streamed tokens/s of ``sessions`` chats sent at once."""
    messages = [{"role": "user", "content": PROMPT}]
    sampling = Sampling(max_new_tokens=tokens)
    counts: list[int] = []

    def run() -> None:
        counts.append(OracleClient(control).chat(messages, sampling)[1].tokens)

    threads = [threading.Thread(target=run) for _ in range(sessions)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def promote_times(client: OracleClient, steps: list[int], rounds: int) -> tuple[list[float], list[float]]:
    """(the oracle's promote-to-serving seconds, the client's wall seconds) per promote."""
    served, wall = [], []
    for i in range(rounds):
        step = steps[i % len(steps)]
        started = time.perf_counter()
        loaded = client.promote(str(step))
        wall.append(time.perf_counter() - started)
        served.append(loaded.serving.load_seconds)
    return served, wall


def transfer_rates(root: Path, megabytes: int, chunk_bytes: int, credit: int) -> tuple[float, float]:
    """(fetch MB/s over tcp loopback, shutil.copytree MB/s) for a checkpoint of ``megabytes``."""
    home = root / "transfer-home"
    paths = Home(home).ensure()

    def save(folder: Path) -> None:
        with open(folder / "model.safetensors", "wb") as handle:
            for _ in range(megabytes):
                handle.write(os.urandom(2**20))
        (folder / "config.json").write_text("{}")

    folder = write_checkpoint(paths.checkpoints, 1, datetime.now(), save, {"time": time.time()})
    ledger = Ledger(paths.db)
    ledger.record(folder, read_sidecar(folder))
    config = RealmConfig()
    publisher = Publisher("tcp://127.0.0.1:47711", "bench")
    server = ControlServer(
        "tcp://127.0.0.1:47712", VaultService(config, home, ledger, publisher).handle, publisher
    ).start()
    try:
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        started = time.perf_counter()
        shutil.copytree(folder, root / "plain-copy")
        copy_s = time.perf_counter() - started
        fetcher = Fetcher(
            "tcp://127.0.0.1:47712",
            CheckpointCache(root / "cache", 4 * size),
            chunk_bytes=chunk_bytes,
            credit=credit,
            timeout_s=30,
        )
        fetcher.manifest("1")  # the trainer hashes the files once; measure the transfer itself
        started = time.perf_counter()
        fetcher.fetch("1")
        fetch_s = time.perf_counter() - started
    finally:
        server.stop()
        publisher.close()
        ledger.close()
    return size / 1e6 / fetch_s, size / 1e6 / copy_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--promotes", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are printed")
    parser.add_argument("--transfer-mb", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    root = Path(tempfile.mkdtemp(prefix="realm-bench-oracle-"))
    try:
        train = TrainConfig(threads=args.threads)
        oracle_cfg = OracleConfig(threads=args.threads, max_batch=args.sessions, load_on_start="1", telemetry_s=1.0)
        config = RealmConfig(train=train, oracle=oracle_cfg)
        home = root / "home"
        folders = [make_checkpoint(home, step, config) for step in (1, 2)]

        baseline = Baseline(folders[0], args.tokens)

        # the oracle as users run it: its own process (`realm oracle`), the client here
        config_file = root / "bench.yaml"
        config_file.write_text(
            f"train:\n  threads: {args.threads}\noracle:\n  threads: {args.threads}\n"
            f"  max_batch: {args.sessions}\n  load_on_start: '1'\n"
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "realm.cli", "oracle", "--home", str(home), "--config", str(config_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parents[1],
        )
        _, control = oracle_endpoints(config, home)
        client = OracleClient(control, timeout_s=5, retries=20)
        while client.snapshot().state.oracle.serving is None:
            time.sleep(0.1)
        oracle_rate(control, args.tokens, 1)  # warm-up
        rates: dict[str, list[float]] = {"base_one": [], "oracle_one": [], "base_many": [], "oracle_many": []}
        for _ in range(args.rounds):  # interleaved, so a busy machine slows both sides alike
            rates["base_one"].append(baseline.rate(1))
            rates["oracle_one"].append(oracle_rate(control, args.tokens, 1))
            rates["base_many"].append(baseline.rate(args.sessions))
            rates["oracle_many"].append(oracle_rate(control, args.tokens, args.sessions))
        base_one, oracle_one, base_many, oracle_many = (
            statistics.median(rates[k]) for k in ("base_one", "oracle_one", "base_many", "oracle_many")
        )
        served, wall = promote_times(client, [2, 1], args.promotes)
        worker.terminate()
        worker.wait(30)

        fetch_mbs, copy_mbs = transfer_rates(root, args.transfer_mb, oracle_cfg.chunk_bytes, oracle_cfg.credit)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(
        f"DIO-nano on CPU, {args.threads} torch thread(s), {args.tokens} new tokens a request, "
        f"median of {args.rounds} interleaved rounds"
    )
    print(f"{'measure':<44}{'oracle':>12}{'baseline':>12}{'ratio':>8}")
    print(
        f"{'tokens/s, one streamed chat vs generate':<44}{oracle_one:>12.0f}{base_one:>12.0f}{oracle_one / base_one:>7.2f}x"
    )
    print(
        f"{f'tokens/s, {args.sessions} concurrent chats vs {args.sessions} generates':<44}"
        f"{oracle_many:>12.0f}{base_many:>12.0f}{oracle_many / base_many:>7.2f}x"
    )
    print(
        f"{'promote to serving, median s (goal < 2)':<44}{statistics.median(served):>12.3f}"
        f"{'':>12}  (client wall {statistics.median(wall):.3f}s, max {max(served):.3f}s)"
    )
    print(
        f"{f'transfer MB/s, {args.transfer_mb} MB, tcp loopback vs copy':<44}{fetch_mbs:>12.0f}{copy_mbs:>12.0f}"
        f"{fetch_mbs / copy_mbs:>7.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
