"""Several training processes (``torchrun`` / ``accelerate launch``): rank 0 leads, the rest follow.

Rank 0 is the whole trainer: it alone serves the bus, reads and moves quests, validates, runs
skill evals, writes checkpoints, the ledger and the journal, and obeys pause, resume, skip and
stop. The other ranks hold the same model and optimizer and do nothing but what rank 0 orders,
in order, over a gloo group of their own (CPU, whatever backend the training uses):

- ``start``: the checkpoint to load (the leader has already reconciled the vault);
- ``train``: one optimizer step's examples; every rank trains its interleaved share of them
  (``Engine._my_share``) and DDP sums the gradients, so the step equals one process training
  it all;
- ``config``: a live config change (learning rate, ...), applied between steps like the leader's;
- ``stop``: with a digest of rank 0's weights; a follower whose own weights differ (they never
  should: every rank applies the same summed gradients) says so and exits 1, else exits 0.

Control therefore reaches every rank between optimizer steps by construction: a paused leader
sends nothing, and the followers wait. Their wait has no practical timeout (a pause may last
days); if the leader dies, its gloo connection drops, the followers' wait fails, and the launcher
ends the job. Followers ignore SIGTERM and SIGINT: the launcher forwards them to every rank, and
the leader, which got one too, stops them once its final checkpoint is written.
"""

from __future__ import annotations

import logging
import os
import signal
from datetime import timedelta
from typing import Any, NamedTuple

log = logging.getLogger("realm.trainer")

FOLLOW_TIMEOUT = timedelta(days=30)  # how long a follower waits for its next order (a long pause)


class Order(NamedTuple):
    kind: str  # start | train | config | stop
    payload: Any = None


def launched_processes() -> int:
    """How many processes the launcher started (1 when run directly)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


class Solo:
    """One process: nobody to tell anything."""

    leads = True
    world = 1

    def send(self, kind: str, payload: Any = None) -> None:
        """No other rank to give an order to."""

    def train(self, engine, batch):
        return engine.train_step(batch)

    def close(self, engine=None) -> None:
        """No group to leave and no rank to check weights against."""


class Lockstep:
    """The leader's orders to the followers, broadcast over a gloo group of their own."""

    def __init__(self, cpu: bool) -> None:
        import torch.distributed as dist
        from accelerate import PartialState

        PartialState(cpu=cpu)  # the process group; the engine's Accelerator reuses it
        self._dist = dist
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.group = dist.new_group(backend="gloo", timeout=FOLLOW_TIMEOUT)
        self.leads = self.rank == 0
        self._open = True
        self._broken = False  # a step failed here while the followers were inside its collectives

    def send(self, kind: str, payload: Any = None) -> None:
        """(leader) Order every follower; returns once they all have it."""
        if not self._open:
            return
        self._dist.broadcast_object_list([Order(kind, payload)], src=0, group=self.group)
        if kind == "stop":
            self._open = False

    def train(self, engine, batch):
        """(leader) One optimizer step on every rank: the order, then this rank's share of it."""
        self.send("train", batch)
        try:
            return engine.train_step(batch)
        except BaseException:
            self._broken = True
            raise

    def receive(self) -> Order:
        """(follower) The leader's next order."""
        box: list = [None]
        self._dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def close(self, engine=None) -> None:
        """(leader) Stop the followers, if that was not done yet: never raises. After a failed
        step they wait inside its collectives, not for an order: this process's exit ends them."""
        if self._broken:
            return
        try:
            self.send("stop", weights_digest(engine) if engine is not None else None)
        except Exception as exc:  # a follower already gone: the launcher reports it
            log.warning("could not stop the other training processes: %s", exc)


def join(config) -> Solo | Lockstep:
    """``Solo`` when run directly, else this process's place in the launcher's group."""
    if launched_processes() <= 1:
        return Solo()
    from realm.model.loading import resolve_device

    return Lockstep(cpu=resolve_device(config.model.device).type == "cpu")


def follow(config, lockstep: Lockstep) -> int:
    """A follower's life: load what the leader loaded, then train what it orders until ``stop``."""
    from trainer.engine import Engine
    from trainer.live_config import apply_to_engine

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: log.info("rank %d: stop signal noted; rank 0 stops this process", lockstep.rank))
    order = lockstep.receive()
    if order.kind == "stop":  # the leader failed before it loaded anything
        return 0
    engine = Engine(config, checkpoint=order.payload)
    log.info(
        "rank %d of %d (pid %d) follows rank 0 from step %d", lockstep.rank, lockstep.world, os.getpid(), engine.step
    )
    while True:
        order = lockstep.receive()
        if order.kind == "train":
            engine.train_step(order.payload)
        elif order.kind == "config":
            apply_to_engine(engine, order.payload)
        elif order.kind == "stop":
            return _stop(lockstep.rank, engine, order.payload)
        else:
            raise RuntimeError(f"rank {lockstep.rank}: unknown order {order.kind!r} from rank 0")


def weights_digest(engine) -> tuple[float, float]:
    """The sum and the sum of squares of every weight, in float64: equal on ranks in lockstep."""
    import torch

    total = squares = 0.0
    with torch.no_grad():
        for weight in engine.unwrapped.parameters():
            values = weight.detach().double()
            total += float(values.sum())
            squares += float((values * values).sum())
    return total, squares


def _stop(rank: int, engine, leader_digest) -> int:
    if leader_digest is None:
        log.info("rank %d stops at step %d", rank, engine.step)
        return 0
    mine = weights_digest(engine)
    if any(abs(a - b) > 1e-6 * max(1.0, abs(a)) for a, b in zip(mine, leader_digest)):
        log.error(
            "rank %d stops at step %d with weights that differ from rank 0's (digest %s, rank 0 %s)",
            rank,
            engine.step,
            mine,
            tuple(leader_digest),
        )
        return 1
    log.info("rank %d stops at step %d; its weights agree with rank 0's", rank, engine.step)
    return 0
