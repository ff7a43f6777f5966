"""NVIDIA GPUs through NVML (pynvml): the one reader the trainer, the oracle and `realm doctor` use,
and the cards' spec peaks for MFU. Where there is no NVIDIA GPU the reader says so plainly."""

from __future__ import annotations

import re
import threading

from realm.protocol import GpuInfo

NO_GPU = "no NVIDIA GPU"

# Dense bf16 tensor-core peaks from the vendors' data sheets (no sparsity), FLOP/s. Matched on
# NVML's card name, most specific first; a card not listed has no MFU rather than a guessed peak.
SPEC_PEAK_BF16: tuple[tuple[str, float], ...] = (
    (r"H100 PCIe", 756e12),
    (r"H100", 989e12),
    (r"H200", 989e12),
    (r"A100", 312e12),
    (r"L40S", 362e12),
    (r"\bL4\b", 121e12),
    (r"RTX 4090", 165e12),
    (r"RTX 3090", 71e12),
)

_lock = threading.Lock()
_state: dict[str, object] = {}


def _init() -> str:
    """'' when NVML is up, else why not (asked once per process)."""
    with _lock:
        if "note" not in _state:
            try:
                import pynvml

                pynvml.nvmlInit()
                _state["note"] = "" if pynvml.nvmlDeviceGetCount() > 0 else NO_GPU
            except Exception as exc:  # no driver, no library, no device: all mean "none here"
                name = type(exc).__name__
                _state["note"] = NO_GPU + ("" if "NotFound" in name else f" ({exc})")
        return str(_state["note"])


def _optional(read, scale: float = 1.0) -> float | None:
    """A reading some cards do not support (temperature, power): None then, not an error."""
    try:
        return read() / scale
    except Exception:
        return None


def _reading(index: int, handle) -> GpuInfo:
    import pynvml

    name = pynvml.nvmlDeviceGetName(handle)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    return GpuInfo(
        index=index,
        name=name.decode() if isinstance(name, bytes) else str(name),
        utilization=float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu),
        memory_used_mb=memory.used / 2**20,
        memory_total_mb=memory.total / 2**20,
        temperature_c=_optional(lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)),
        power_w=_optional(lambda: pynvml.nvmlDeviceGetPowerUsage(handle), 1000.0),  # milliwatts
    )


def read_gpus() -> tuple[tuple[GpuInfo, ...], str]:
    """(one GpuInfo per NVIDIA GPU, note); the note says why the tuple is empty or short."""
    note = _init()
    if note:
        return (), note
    import pynvml

    gpus = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            gpus.append(_reading(index, pynvml.nvmlDeviceGetHandleByIndex(index)))
    except Exception as exc:
        return tuple(gpus), f"NVML error: {exc}"
    return tuple(gpus), ""


def read_gpu(index: int, uuid: str = "") -> tuple[GpuInfo | None, str]:
    """One GPU: by its UUID when known (CUDA_VISIBLE_DEVICES renumbers CUDA's indices, not
    NVML's), else by NVML index. (None, why) where there is no reading."""
    note = _init()
    if note:
        return None, note
    import pynvml

    try:
        return _reading(index, _handle(pynvml, index, uuid)), ""
    except Exception as exc:
        return None, f"NVML error: {exc}"


def _handle(pynvml, index: int, uuid: str):
    if uuid:
        try:
            return pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
        except Exception:  # a UUID form this driver does not know: NVML's index then
            pass
    return pynvml.nvmlDeviceGetHandleByIndex(index)


def spec_peak_flops(card: str) -> float | None:
    """The card's dense bf16 peak (FLOP/s), None for a card not in the table."""
    return next((peak for pattern, peak in SPEC_PEAK_BF16 if re.search(pattern, card)), None)


def training_flops_per_s(parameters: int, tokens_per_s: float) -> float:
    """Model FLOPs a training step does per second: 6 per parameter per token (forward + backward)."""
    return 6.0 * parameters * tokens_per_s


def mfu(parameters: int, tokens_per_s: float, card: str) -> float | None:
    """Model FLOPs utilisation against the card's spec peak; None for an unknown card."""
    peak = spec_peak_flops(card)
    return training_flops_per_s(parameters, tokens_per_s) / peak if peak else None
