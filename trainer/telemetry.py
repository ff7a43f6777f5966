"""What a training step reports beyond its loss: the device's matmul peak (for MFU), GPU
memory, and a JSONL log of every step that outlives the process."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import torch

from realm.gpu import read_gpu
from realm.metrics_history import read_records, rotate
from realm.model.chatml import IGNORE_INDEX
from realm.protocol import GpuInfo, SkillEvaluated, SkillLevelUp
from trainer.trackers import NoTrackers


def matmul_peak_flops(
    device: torch.device, dtype: torch.dtype = torch.float32, seconds: float = 0.2, clock=time.perf_counter
) -> float:
    """Dense matmul FLOP/s measured here and now: the denominator of the MFU estimate.

    ``clock=time.process_time`` gives FLOPs per CPU-second (CPU only): on a shared machine that
    is what the cores deliver while this process holds them, whatever the others' load."""
    n = 1024 if device.type == "cpu" else 4096
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)  # warm up
    _sync(device)
    runs, started = 0, clock()
    while True:
        torch.matmul(a, b)
        runs += 1
        _sync(device)
        elapsed = clock() - started
        if elapsed >= seconds and runs >= 2:
            return 2.0 * n**3 * runs / elapsed


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TrainerGpu:
    """The training GPU as NVML sees it (realm.gpu), read at most once per ``every_s`` (a step
    can be a few milliseconds); where NVML cannot read it, memory falls back to torch's counter."""

    def __init__(self, device: torch.device, every_s: float = 1.0, clock=time.monotonic) -> None:
        self.device, self.every_s, self.clock = device, every_s, clock
        self._uuid = self._cuda_uuid() if device.type == "cuda" else ""
        self._last: tuple[GpuInfo | None, str] = (None, "")
        self._read_at: float | None = None

    def _cuda_uuid(self) -> str:
        try:
            return str(torch.cuda.get_device_properties(self.device).uuid)
        except Exception:  # an older torch without uuid: NVML's index then
            return ""

    def read(self) -> tuple[GpuInfo | None, str, float | None]:
        """(NVML reading or None, why none on a CUDA device, memory in use in MiB or None on CPU)."""
        if self.device.type != "cuda":
            return None, "", None
        now = self.clock()
        if self._read_at is None or now - self._read_at >= self.every_s:
            self._last, self._read_at = read_gpu(self.device.index or 0, self._uuid), now
        gpu, note = self._last
        memory = gpu.memory_used_mb if gpu else torch.cuda.memory_reserved(self.device) / 2**20
        return gpu, note, memory


class MetricsLog:
    """One JSON line per step (and per validation), appended as they happen, and handed to the
    experiment trackers (``train.log_with``, trainer/trackers.py): the one place a metric is recorded.

    A write never raises: when it fails (a full disk), the file is cut back to its last whole
    line, the lines wait in memory for the next write or ``flush``, and ``on_error`` hears why.
    Past ``MAX_PENDING`` waiting lines the oldest are dropped, and counted in ``lost``."""

    MAX_PENDING = 100_000

    def __init__(
        self, path: Path | None, on_error=lambda exc: None, *, max_bytes: int = 0, keep: int = 3, trackers=None
    ) -> None:
        self._fd: int | None = None
        self.trackers = trackers or NoTrackers()
        self._pending: list[bytes] = []
        self.on_error = on_error
        self.lost = 0
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _rotate_before(self, size: int, adding: int) -> int:
        """Rotate (between whole lines) when ``adding`` bytes would take a non-empty file past
        ``max_bytes``, as RotatingFileHandler does; the size of the file to append to."""
        if not self.max_bytes or size == 0 or size + adding <= self.max_bytes:
            return size
        os.close(self._fd)
        self._fd = None  # never a closed number that a later open may reuse, should reopening fail
        try:
            rotate(self.path, self.keep)
        finally:
            self._open()
        return os.fstat(self._fd).st_size

    def write(self, record: dict) -> None:
        self.trackers.log(record)
        if self._fd is None:
            return
        self._pending.append((json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))
        if len(self._pending) > self.MAX_PENDING:
            del self._pending[0]
            self.lost += 1
        self.flush()

    def flush(self) -> bool:
        """Append the waiting lines; False (the file as it was) when the write fails."""
        if self._fd is None or not self._pending:
            return True
        data = b"".join(self._pending)
        try:
            whole = self._rotate_before(os.fstat(self._fd).st_size, len(data))
        except OSError as exc:
            self.on_error(exc)
            return False
        try:
            _write_all(self._fd, data)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, whole)  # no torn line for a reader, none to append after
            self.on_error(exc)
            return False
        self._pending.clear()
        return True

    def close(self) -> None:
        self.trackers.close()
        if self._fd is not None:
            self.flush()
            os.close(self._fd)
            self._fd = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def skill_record(event) -> dict | None:
    """The metrics-log record of a skill round (its accuracies) or a level-up; None for other events."""
    if isinstance(event, SkillEvaluated):
        numbers = ("level", "accuracy", "probe", "next_accuracy", "corrections", "seconds")
        return {"kind": "skill", "time": time.time(), "step": event.step, "skill": event.skill,
                **{key: getattr(event, key) for key in numbers}}  # fmt: skip
    if isinstance(event, SkillLevelUp):
        return {"kind": "level_up", "time": time.time(), "step": event.step, "skill": event.skill,
                "level": event.level, "reason": event.reason}  # fmt: skip
    return None


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics log and its rotated files, oldest first; a torn line (a crash mid-write) is skipped."""
    return list(read_records(path))


class FlopCount:
    """Model FLOPs a training step needs: 6 per weight per token through the decoder, 6 per
    LM-head weight per target token (no other row needs logits), and causal attention per
    example. The embedding is a lookup, not a matmul: its weights count only as the LM head
    where they are tied to it. A frozen weight (LoRA's base) needs no gradient of its own: 4."""

    def __init__(self, model: torch.nn.Module, max_length: int) -> None:
        self.max_length = max_length
        config = model.config
        heads = getattr(config, "num_attention_heads", 1)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        self.layers, self.width = config.num_hidden_layers, heads * head_dim
        embedding, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
        outside = {embedding.data_ptr(), head.data_ptr()}
        self.body = sum(_per_weight(p) * p.numel() for p in model.parameters() if p.data_ptr() not in outside)
        self.head = _per_weight(head) * head.numel()

    def step(self, batch) -> float:
        lengths = [min(len(ex.input_ids), self.max_length) for ex in batch]
        targets = sum(sum(label != IGNORE_INDEX for label in ex.labels[: self.max_length]) for ex in batch)
        dense = float(self.body * sum(lengths) + self.head * targets)
        attention = 6.0 * self.layers * self.width * sum(n * n for n in lengths)  # QK and AV, causal half, fwd + 2x bwd
        return dense + attention


def _per_weight(parameter: torch.Tensor) -> int:
    """FLOPs per weight per token: forward 2, the input's gradient 2, the weight's own gradient 2."""
    return 6 if parameter.requires_grad else 4
