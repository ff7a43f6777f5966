"""A skill-eval round on the trainer against the same round on an oracle, side by side.

On one DIO-nano checkpoint and one BIN eval round (L1 and L2 frozen sets plus the fresh probe):

1. local: ``realm.skills.grading.evaluate`` (batched greedy generation + grading), all of it time
   the training loop stands still;
2. oracle: the same chats through a real ``OracleWorker`` (``GenerateRequest.chats``, continuous
   batching), wall time from request to answers; the training loop only pays for saving the
   round's checkpoint, measured here as ``engine.save``.

    python bench/oracle_evals.py [--threads 1] [--max-batch 8] [--probe 40] [--tokens 48] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec  # noqa: E402
import torch  # noqa: E402

from realm.config import ModelConfig, OracleConfig, RealmConfig, TrainConfig, oracle_endpoints  # noqa: E402
from realm.model.loading import load_model  # noqa: E402
from realm.oracle.client import OracleClient  # noqa: E402
from realm.protocol import Sampling  # noqa: E402
from realm.skills import curriculum  # noqa: E402
from realm.skills.grading import accuracy, evaluate, grade  # noqa: E402
from realm.skills.registry import get_skill  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from oracle import make_checkpoint  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-batch", type=int, default=8, help="oracle.max_batch")
    parser.add_argument("--probe", type=int, default=40, help="fresh probe items (bin.yaml: 40)")
    parser.add_argument("--tokens", type=int, default=48, help="answer budget (bin.yaml: 48)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    skill = get_skill("bin")
    skill = msgspec.structs.replace(skill, eval=msgspec.structs.replace(skill.eval, max_new_tokens=args.tokens))
    samples = (
        curriculum.eval_set(skill, 1) + curriculum.eval_set(skill, 2) + curriculum.probe(skill, 1, args.probe, seed=0)
    )
    chats = [curriculum.prompt_messages(skill, s) for s in samples]

    from realm.oracle.worker import OracleWorker
    from trainer.engine import Engine

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        config = RealmConfig(
            train=TrainConfig(threads=args.threads),
            oracle=OracleConfig(threads=args.threads, max_batch=args.max_batch, load_on_start="", telemetry_s=1.0),
        )
        folder = make_checkpoint(home, 1, config)
        model, tokenizer = load_model(ModelConfig(device="cpu"), checkpoint=folder)
        local_s, verdicts = timed(lambda: evaluate(skill, model, tokenizer, samples), args.repeat)

        engine = Engine(config)
        save_s, _ = timed(lambda: engine.save(Path(tmp) / f"save-{time.perf_counter_ns()}"), args.repeat)

        worker = OracleWorker(config, home)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        worker.ready.wait(30)
        client = OracleClient(oracle_endpoints(config, home)[1], timeout_s=5.0)
        client.generate([], Sampling(max_new_tokens=1), checkpoint="1", chats=chats[:1])  # load it once, untimed
        oracle_s, result = timed(
            lambda: client.generate([], Sampling(max_new_tokens=args.tokens), checkpoint="1", chats=chats), args.repeat
        )
        worker.stop()
        thread.join(20)

    remote = [grade(skill, s, text) for s, text in zip(samples, result.texts)]
    same = [v.response for v in verdicts] == [v.response for v in remote]
    print(
        f"one BIN eval round: {len(samples)} chats, <= {args.tokens} tokens each, {args.threads} thread(s), "
        f"oracle.max_batch {args.max_batch}; median of {args.repeat}"
    )
    print(f"  local round (training waits for all of it)   {local_s:7.2f} s   accuracy {accuracy(verdicts):.0%}")
    print(
        f"  oracle round (wall time, training goes on)   {oracle_s:7.2f} s   accuracy {accuracy(remote):.0%}"
        f"   {oracle_s / local_s:.2f}x the local time"
    )
    print(f"  training loop's cost with an oracle (save)   {save_s:7.2f} s   {local_s / save_s:.0f}x less than local")
    print(f"  same answers, item by item: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
