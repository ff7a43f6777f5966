"""The one NVML reader (realm.gpu), the MFU arithmetic, and the trainer's GPU reading on the wire,
in the reducer and in the lines the Battle and Watchtower screens draw."""

from __future__ import annotations

import msgspec
import pytest
import torch

from realm import protocol
from realm.gpu import NO_GPU, mfu, read_gpu, read_gpus, spec_peak_flops, training_flops_per_s
from realm.protocol import Envelope, GpuInfo, RealmState, StepMetrics, TrainerInfo, TrainerStarted
from realm.state import apply
from realm.tui.screens.battle import gpu_line, trainer_gpu_rows
from trainer.telemetry import TrainerGpu

RTX_4090 = GpuInfo(
    index=0,
    name="NVIDIA GeForce RTX 4090",
    utilization=87.0,
    memory_used_mb=12_595.0,
    memory_total_mb=24_564.0,
    temperature_c=64.0,
    power_w=311.5,
)
QWEN = 596_049_920  # Qwen3-0.6B's parameters


def step(gpu: GpuInfo | None = None, gpu_note: str = "", tokens_per_s: float = 10_000.0) -> StepMetrics:
    return StepMetrics(
        step=3, loss=2.0, lr=1e-3, grad_norm=0.5, tokens=4096, tokens_per_s=tokens_per_s,
        examples_per_s=10.0, quest_step=3, quest_total=10, gpu=gpu, gpu_note=gpu_note,
    )  # fmt: skip


def trainer_on(device: str) -> TrainerStarted:
    return TrainerStarted(trainer=TrainerInfo(model="m", device=device, parameters=QWEN, pid=1, started=0.0), step=0)


# --------------------------------------------------------------------------- the reader


def test_reader_says_plainly_when_there_is_no_gpu():
    """A real NVML call: on a machine without the driver library it raises, and the reader says
    "no NVIDIA GPU" instead; where NVML is up it reads every card."""
    gpus, note = read_gpus()
    reading, one_note = read_gpu(0)
    if note:
        assert (gpus, reading) == ((), None)
        assert note.startswith(NO_GPU) and one_note == note
    else:
        assert gpus and reading.name == gpus[0].name
        assert all(0 < g.memory_used_mb <= g.memory_total_mb for g in gpus)


def test_a_cpu_trainer_reads_no_gpu():
    assert TrainerGpu(torch.device("cpu")).read() == (None, "", None)


# --------------------------------------------------------------------------- MFU


def test_training_flops_are_six_per_parameter_per_token():
    assert training_flops_per_s(QWEN, 10_000.0) == 6 * QWEN * 10_000


def test_mfu_against_the_cards_spec_peak():
    assert mfu(QWEN, 10_000.0, "NVIDIA GeForce RTX 4090") == pytest.approx(6 * QWEN * 10_000 / 165e12)
    assert mfu(QWEN, 10_000.0, "NVIDIA H100 80GB HBM3") == pytest.approx(6 * QWEN * 10_000 / 989e12)


@pytest.mark.parametrize(
    ("card", "peak"),
    [
        ("NVIDIA GeForce RTX 3090", 71e12),
        ("NVIDIA GeForce RTX 4090", 165e12),
        ("NVIDIA A100-SXM4-80GB", 312e12),
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("NVIDIA H200", 989e12),
        ("NVIDIA L4", 121e12),
        ("NVIDIA L40S", 362e12),
        ("Tesla T4", None),
        ("NVIDIA GeForce GTX 1080", None),
    ],
)
def test_spec_peaks(card, peak):
    assert spec_peak_flops(card) == peak


def test_an_unknown_card_has_no_mfu():
    assert mfu(QWEN, 10_000.0, "Tesla T4") is None


# --------------------------------------------------------------------------- wire and reducer


def test_a_reading_round_trips_in_a_step():
    envelope = Envelope(run="r", seq=1, time=1.0, event=step(RTX_4090))
    assert protocol.decode_published(protocol.encode(envelope)) == envelope


def test_messages_without_the_new_fields_still_decode():
    """What an older trainer or oracle sends: no gpu fields in the step, no temperature or power."""
    event = msgspec.to_builtins(step())
    del event["gpu"], event["gpu_note"]
    old_gpu = {k: v for k, v in msgspec.to_builtins(RTX_4090).items() if k not in ("temperature_c", "power_w")}
    telemetry = {"type": "oracle_telemetry", "tokens_per_s": 1.0, "active": 0, "queued": 0, "served": 0,
                 "gpus": [old_gpu]}  # fmt: skip
    for sent, check in ((event, lambda e: e.gpu is None and e.gpu_note == ""),
                        (telemetry, lambda e: e.gpus[0].temperature_c is None and e.gpus[0].power_w is None)):  # fmt: skip
        frame = msgspec.msgpack.encode({"type": "event", "run": "r", "seq": 1, "time": 1.0, "event": sent})
        assert check(protocol.decode_published(frame).event)


def test_the_reducer_keeps_the_latest_reading():
    state = apply(RealmState(), step(RTX_4090))
    assert state.battle.gpu == RTX_4090
    state = apply(state, step(None, gpu_note="NVML error: GPU is lost"))
    assert (state.battle.gpu, state.battle.gpu_note) == (None, "NVML error: GPU is lost")


# --------------------------------------------------------------------------- what the screens draw


def screen_state(device: str, *events) -> RealmState:
    state = apply(RealmState(), trainer_on(device))
    for event in events:
        state = apply(state, event)
    return state


def test_a_gpu_trainer_shows_its_reading_and_mfu():
    rows = trainer_gpu_rows(screen_state("cuda:0", step(RTX_4090)))
    assert rows == (("gpu", "RTX 4090 87% · MFU 21.7%"), ("memory", "12.3/24.0 GiB · 64°C 312 W"))
    assert gpu_line(screen_state("cuda:0", step(RTX_4090))).plain == (
        "trainer gpu RTX 4090 87% · MFU 21.7% · memory 12.3/24.0 GiB · 64°C 312 W"
    )


def test_an_unknown_card_shows_no_mfu():
    t4 = msgspec.structs.replace(RTX_4090, name="Tesla T4", temperature_c=None, power_w=None)
    rows = trainer_gpu_rows(screen_state("cuda:0", step(t4)))
    assert rows == (("gpu", "Tesla T4 87% · MFU —"), ("memory", "12.3/24.0 GiB"))


def test_a_cpu_trainer_says_so_with_its_tokens_per_second():
    rows = trainer_gpu_rows(screen_state("cpu", step(tokens_per_s=1234.0)))
    assert rows == (("gpu", "none: trains on CPU"), ("tok/s", "1,234"))


def test_a_cuda_trainer_without_a_reading_says_why():
    rows = trainer_gpu_rows(screen_state("cuda:0", step(None, gpu_note="no NVIDIA GPU")))
    assert rows == (("gpu", "cuda:0 · no NVIDIA GPU"),)
    assert trainer_gpu_rows(RealmState()) == (("device", "not reported yet"),)
