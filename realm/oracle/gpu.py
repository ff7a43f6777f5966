"""GPU utilisation and memory through NVML (pynvml); a plain note where there is no NVIDIA GPU."""

from __future__ import annotations

import threading

from realm.protocol import GpuInfo

_lock = threading.Lock()
_state: dict[str, object] = {}


def _init() -> str:
    """'' when NVML is up, else why not."""
    with _lock:
        if "note" not in _state:
            try:
                import pynvml

                pynvml.nvmlInit()
                _state["note"] = "" if pynvml.nvmlDeviceGetCount() > 0 else "no NVIDIA GPU"
            except Exception as exc:  # no driver, no library, no device: all mean "none here"
                name = type(exc).__name__
                _state["note"] = "no NVIDIA GPU" + (
                    "" if "NotFound" in name or "LibraryNotFound" in name else f" ({exc})"
                )
        return str(_state["note"])


def gpu_stats() -> tuple[tuple[GpuInfo, ...], str]:
    """(one GpuInfo per NVIDIA GPU, note); the note says why the tuple is empty."""
    note = _init()
    if note:
        return (), note
    import pynvml

    gpus = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            util = pynvml.nvmlDeviceGetUtilizationRates(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                GpuInfo(
                    index=index,
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    utilization=float(util.gpu),
                    memory_used_mb=memory.used / 2**20,
                    memory_total_mb=memory.total / 2**20,
                )
            )
    except Exception as exc:
        return tuple(gpus), f"NVML error: {exc}"
    return tuple(gpus), ""
