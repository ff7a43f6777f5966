"""Mixed precision: ``train.precision`` picks autocast per device, and fp16 trains with a loss
scaler that skips a step with inf/nan gradients without touching the weights (on CPU, where
torch runs fp16 autocast and ``GradScaler("cpu")``)."""

from __future__ import annotations

import msgspec
import pytest
import torch
from conftest import fast_config, wait_for, write_chat_quest

from realm.config import ConfigError, ModelConfig
from realm.protocol import Ack, PauseRequest, ResumeRequest, SkipRequest
from realm.state import every_line
from trainer import engine as engine_module
from trainer.engine import Engine, PrecisionTrial, resolve_precision

BF16_TOLERANCE = 0.2  # nats: the gap of 20-step mean losses, bf16 autocast against fp32
WORDS = ["apple", "river", "stone", "cloud"]


def _chats():
    return [[{"role": "user", "content": f"reverse {w}"}, {"role": "assistant", "content": w[::-1]}] for w in WORDS]


def _inf_gradients(engine: Engine):
    """A fault on one weight's gradient (as an fp16 overflow leaves it); returns the hook handle."""
    weight = engine.unwrapped.get_input_embeddings().weight
    return weight.register_hook(lambda grad: torch.full_like(grad, float("inf")))


def test_precision_auto_is_fp32_on_cpu_and_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    cpu = torch.device("cpu")
    assert [resolve_precision(p, cpu) for p in ("auto", "bf16", "fp16", "fp32")] == ["fp32", "bf16", "fp16", "fp32"]
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    assert not engine_module.cpu_native_bf16(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    assert engine_module.cpu_native_bf16(cpuinfo)


@pytest.mark.parametrize(("bf16_seconds", "kept"), [(0.8, "bf16"), (0.95, "fp32"), (1.2, "fp32")])
def test_a_precision_trial_alternates_and_keeps_bf16_only_when_clearly_faster(bf16_seconds, kept):
    trial = PrecisionTrial(steps=6, gain=1.1)
    tried, choices = [], []
    for _ in range(6):
        precision = trial.next()
        tried.append(precision)
        choices.append(trial.record(precision, {"fp32": 1.0, "bf16": bf16_seconds}[precision]))
    assert tried == ["fp32", "bf16"] * 3
    assert choices == [None] * 5 + [kept]
    assert f"{1.0 / bf16_seconds:.2f}x fp32's speed" in trial.verdict()


def test_auto_on_a_native_bf16_cpu_trains_its_first_steps_in_both_and_keeps_one(monkeypatch, caplog):
    monkeypatch.setattr(engine_module, "cpu_native_bf16", lambda: True)
    engine = Engine(fast_config(precision="auto"))
    assert engine.precision == "fp32" and engine.precision_trial is not None
    batches = engine.batches(engine.encode(_chats()), "order")
    used, between = [], []  # the precision each step trained in; the one an eval between steps gets
    accumulate = engine._accumulate
    engine._accumulate = lambda *args, **kwargs: used.append(engine.precision) or accumulate(*args, **kwargs)
    with caplog.at_level("INFO", logger="realm.trainer"):
        for step in range(engine_module.CPU_TRIAL_STEPS + 4):
            engine.train_step(batches[step % len(batches)])
            between.append(engine.precision)
    trial, after = used[: engine_module.CPU_TRIAL_STEPS], used[engine_module.CPU_TRIAL_STEPS :]
    assert trial == ["fp32", "bf16"] * (engine_module.CPU_TRIAL_STEPS // 2)
    assert between[: engine_module.CPU_TRIAL_STEPS - 1] == ["fp32"] * (engine_module.CPU_TRIAL_STEPS - 1)
    assert between[engine_module.CPU_TRIAL_STEPS - 1 :] == [after[0]] * 5
    assert engine.precision_trial is None and len(set(after)) == 1 and after[0] in ("fp32", "bf16")
    assert engine.step == engine_module.CPU_TRIAL_STEPS + 4  # every trial step trained
    assert [r.getMessage().split(" (")[0] for r in caplog.records if "CPU precision" in r.getMessage()] == [
        f"CPU precision: {after[0]}"
    ]


def test_auto_without_native_bf16_and_an_explicit_precision_run_no_trial(monkeypatch):
    monkeypatch.setattr(engine_module, "cpu_native_bf16", lambda: False)
    assert Engine(fast_config(precision="auto")).precision_trial is None
    monkeypatch.setattr(engine_module, "cpu_native_bf16", lambda: True)
    for precision in ("fp32", "bf16"):
        engine = Engine(fast_config(precision=precision))
        assert engine.precision == precision and engine.precision_trial is None


@pytest.mark.timeout(1200)  # 400 real steps; CPUs without native bf16 emulate it at about half fp32's speed
def test_bf16_autocast_s_loss_curve_stays_within_tolerance_of_fp32_over_200_steps(tmp_path):
    """200 steps of DIO-nano on the same data from the same weights: every 20-step mean loss of
    bf16 autocast (float32 master weights) within ``BF16_TOLERANCE`` nats of fp32's (measured:
    at most 0.15, bf16 the lower late in the run), and both learn."""
    import json

    path = write_chat_quest(tmp_path / "q.jsonl", 32)
    chats = [json.loads(line)["messages"] for line in path.read_text().splitlines()]
    curves = {}
    for precision in ("fp32", "bf16"):
        engine = Engine(fast_config(precision=precision, seed=7, batch_size=2, max_length=32))
        examples = engine.encode(chats)
        batches = engine.batches(examples, "order")
        curves[precision] = [engine.train_step(batches[step % len(batches)]).loss for step in range(200)]
    windows = {p: [sum(c[i : i + 20]) / 20 for i in range(0, 200, 20)] for p, c in curves.items()}
    gaps = [abs(b - f) for f, b in zip(windows["fp32"], windows["bf16"])]
    assert max(gaps) <= BF16_TOLERANCE, (gaps, windows)
    assert windows["fp32"][-1] < 0.2 * windows["fp32"][0] and windows["bf16"][-1] < 0.2 * windows["bf16"][0]


def test_fp16_with_float16_master_weights_is_refused_with_what_to_set():
    config = msgspec.structs.replace(fast_config(precision="fp16"), model=ModelConfig(dtype="float16"))
    with pytest.raises(ConfigError, match="model.dtype to auto or float32"):
        Engine(config)


def test_fp16_trains_like_fp32_with_float32_master_weights():
    fp32, fp16 = Engine(fast_config()), Engine(fast_config(precision="fp16"))
    assert fp32.scaler is None and fp16.scaler is not None
    assert next(fp16.unwrapped.parameters()).dtype == torch.float32
    batch = fp32.encode(_chats())
    losses32 = [fp32.train_step(batch).loss for _ in range(3)]
    results16 = [fp16.train_step(batch) for _ in range(3)]
    assert not any(r.skipped for r in results16) and fp16.step == 3
    assert [r.loss for r in results16] == pytest.approx(losses32, rel=2e-2)
    assert results16[-1].loss < results16[0].loss


def test_an_inf_gradient_skips_the_fp16_step_and_leaves_weights_and_optimizer_untouched(tmp_path):
    engine = Engine(fast_config(precision="fp16"))
    batch = engine.encode(_chats())
    engine.train_step(batch)  # the optimizer has state to protect
    weights = {name: p.detach().clone() for name, p in engine.unwrapped.named_parameters()}
    moments = [s["exp_avg"].clone() for s in engine.optimizer.state.values()]
    step, epoch, scale = engine.step, engine.scheduler.last_epoch, engine.scaler.get_scale()

    hook = _inf_gradients(engine)
    result = engine.train_step(batch)
    hook.remove()

    assert result.skipped and result.loss_scale == scale / 2
    assert engine.step == step and engine.scheduler.last_epoch == epoch
    for name, p in engine.unwrapped.named_parameters():
        assert torch.equal(p, weights[name]), f"{name} changed on a skipped step"
    assert all(torch.equal(s["exp_avg"], m) for s, m in zip(engine.optimizer.state.values(), moments))

    engine.save(tmp_path / "ckpt")  # the lowered scale is part of the training state
    assert Engine(fast_config(precision="fp16"), checkpoint=tmp_path / "ckpt").scaler.get_scale() == scale / 2

    after = engine.train_step(batch)
    assert not after.skipped and engine.step == step + 1
    assert all(torch.isfinite(p).all() for p in engine.unwrapped.parameters())
    assert any(not torch.equal(p, weights[name]) for name, p in engine.unwrapped.named_parameters())


def test_the_trainer_says_when_an_fp16_step_is_skipped_and_trains_on(trainer_factory, tmp_path):
    home = tmp_path / "home"
    write_chat_quest(home / "quests" / "queued" / "normal" / "q.jsonl", n=400)
    trainer = trainer_factory(fast_config(precision="fp16"), home=home).start()
    wait_for(lambda: trainer.state.hero.steps >= 1, timeout=120, what="a first fp16 step")
    trainer.client.request(PauseRequest())
    wait_for(lambda: trainer.state.battle.status == "paused", timeout=60, what="the pause")
    hook = _inf_gradients(trainer.daemon.engine)  # between steps: the training thread is waiting
    try:
        trainer.client.request(ResumeRequest())
        notice = wait_for(
            lambda: [line.text for line in every_line(trainer.state) if "optimizer step was skipped" in line.text],
            timeout=60,
            what="the skipped-step notice",
        )
        trainer.client.request(PauseRequest())
        wait_for(lambda: trainer.state.battle.status == "paused", timeout=60, what="the second pause")
    finally:
        hook.remove()
    assert "inf/nan gradients" in notice[0] and "loss scale lowered" in notice[0]
    steps = trainer.state.hero.steps
    trainer.client.request(ResumeRequest())
    wait_for(lambda: trainer.state.hero.steps >= steps + 2, timeout=60, what="training to go on after the fault")
    assert all(torch.isfinite(p).all() for p in trainer.daemon.engine.unwrapped.parameters())
    trainer.stop()


def _nan_loss(engine: Engine):
    """A fault in the forward pass: the embeddings come out nan, so the loss does; returns the hook handle."""
    return engine.unwrapped.get_input_embeddings().register_forward_hook(lambda module, args, out: out * float("nan"))


def _nan_gradients(engine: Engine):
    weight = engine.unwrapped.get_input_embeddings().weight
    return weight.register_hook(lambda grad: torch.full_like(grad, float("nan")))


@pytest.mark.parametrize("fault", [_nan_loss, _nan_gradients])
def test_a_nan_loss_or_gradient_skips_the_fp32_step_and_leaves_weights_and_optimizer_untouched(fault):
    engine = Engine(fast_config(precision="fp32"))
    batch = engine.encode(_chats())
    engine.train_step(batch)
    weights = {name: p.detach().clone() for name, p in engine.unwrapped.named_parameters()}
    moments = [s["exp_avg"].clone() for s in engine.optimizer.state.values()]
    step, epoch = engine.step, engine.scheduler.last_epoch

    hook = fault(engine)
    result = engine.train_step(batch)
    hook.remove()

    assert result.skipped and result.nonfinite
    assert engine.step == step and engine.scheduler.last_epoch == epoch
    for name, p in engine.unwrapped.named_parameters():
        assert torch.equal(p, weights[name]), f"{name} changed on a skipped step"
    assert all(torch.equal(s["exp_avg"], m) for s, m in zip(engine.optimizer.state.values(), moments))
    assert engine.weights_finite()
    assert not engine.train_step(batch).skipped and engine.step == step + 1


def test_a_nan_loss_in_fp16_is_skipped_and_the_scaler_stays_usable():
    engine = Engine(fast_config(precision="fp16"))
    batch = engine.encode(_chats())
    engine.train_step(batch)
    step = engine.step
    hook = _nan_loss(engine)
    result = engine.train_step(batch)
    hook.remove()
    assert result.skipped and result.nonfinite and engine.step == step
    assert not engine.train_step(batch).skipped and engine.step == step + 1 and engine.weights_finite()


def test_nan_losses_in_a_row_pause_the_trainer_with_the_reason_and_save_nothing(trainer_factory, tmp_path):
    from trainer.training_loop import NONFINITE_PAUSE_AFTER

    home = tmp_path / "home"
    write_chat_quest(home / "quests" / "queued" / "normal" / "q.jsonl", n=400)
    trainer = trainer_factory(fast_config(), home=home).start()
    wait_for(lambda: trainer.state.hero.steps >= 1, timeout=120, what="a first step")
    trainer.client.request(PauseRequest())
    wait_for(lambda: trainer.state.battle.status == "paused", timeout=60, what="the pause")
    steps = trainer.state.hero.steps
    hook = _nan_loss(trainer.daemon.engine)  # between steps: the training thread is waiting
    try:
        trainer.client.request(ResumeRequest())
        reason = wait_for(
            lambda: [
                line.text
                for line in every_line(trainer.state)
                if "battle paused: the loss or gradients were not finite" in line.text
            ],
            timeout=60,
            what="the pause for nan losses",
        )
    finally:
        hook.remove()
    skipped = [
        line.text for line in every_line(trainer.state) if "not finite, so the optimizer step was skipped" in line.text
    ]
    assert len(skipped) == NONFINITE_PAUSE_AFTER
    assert f"were not finite for {NONFINITE_PAUSE_AFTER} steps in a row" in reason[0] and "Lower train.lr" in reason[0]
    assert trainer.state.battle.status == "paused" and trainer.state.hero.steps == steps
    assert all(loss == loss for _, loss in trainer.state.battle.losses)  # no nan reached the board
    trainer.client.request(ResumeRequest())
    wait_for(lambda: trainer.state.hero.steps >= steps + 2, timeout=60, what="training to go on after the fault")
    assert trainer.daemon.engine.weights_finite()
    trainer.stop()


def test_weights_that_hold_nan_are_never_saved(trainer_factory, tmp_path):
    home = tmp_path / "home"
    write_chat_quest(home / "quests" / "queued" / "normal" / "q.jsonl", n=400)
    trainer = trainer_factory(fast_config(), home=home).start()
    wait_for(lambda: trainer.state.hero.steps >= 2, timeout=120, what="a few steps")
    trainer.client.request(PauseRequest())
    wait_for(lambda: trainer.state.battle.status == "paused", timeout=60, what="the pause")
    with torch.no_grad():  # as a finite loss with a huge learning rate would leave them
        trainer.daemon.engine.unwrapped.get_input_embeddings().weight[0, 0] = float("inf")
    trainer.stop()  # the stop saves a checkpoint of the steps since the last one: not of these weights
    assert not list((home / "vault" / "checkpoints").glob("checkpoint-*"))
    assert any("not saved: the weights hold inf/nan" in line.text for line in every_line(trainer.state))


def test_ruined_weights_pause_with_the_way_back_and_quests_of_skipped_steps_win_nothing(trainer_factory, tmp_path):
    """A finite loss under a huge lr leaves inf weights: every later step is skipped, so a resume
    cannot help, and a quest none of whose steps changed the weights is no victory (nor gold)."""
    from trainer.training_loop import NONFINITE_PAUSE_AFTER

    home = tmp_path / "home"
    queued = home / "quests" / "queued" / "normal"
    write_chat_quest(queued / "big.jsonl", n=400)
    trainer = trainer_factory(fast_config(val_examples=0), home=home).start()
    wait_for(lambda: trainer.state.hero.steps >= 1, timeout=120, what="a first step")
    trainer.client.request(PauseRequest())
    wait_for(lambda: trainer.state.battle.status == "paused", timeout=60, what="the pause")
    won = trainer.state.hero.quests_completed
    with torch.no_grad():
        trainer.daemon.engine.unwrapped.get_input_embeddings().weight.fill_(float("inf"))
    tiny = [f"tiny-{i}.jsonl" for i in range(NONFINITE_PAUSE_AFTER)]
    for name in tiny:  # one step each
        write_chat_quest(queued / name, n=4)
    assert isinstance(trainer.client.request(SkipRequest()), Ack)
    trainer.client.request(ResumeRequest())
    reason = wait_for(
        lambda: [line.text for line in every_line(trainer.state) if "battle paused: the loss" in line.text],
        timeout=60,
        what="the pause for ruined weights",
    )
    assert reason[0].endswith(
        "The weights hold inf/nan now (a step ruined them, as too high a train.lr does): lower train.lr, "
        "then stop and start the trainer to go on from the model as it began"
    ), reason
    wait_for(lambda: {r.name for r in trainer.state.board.recent} >= set(tiny), timeout=60, what="the tiny quests")
    outcomes = {r.name: (r.outcome, r.reason) for r in trainer.state.board.recent}
    assert [outcomes[name] for name in tiny] == [
        ("failed", "none of its 1 step changed the weights (each skipped)")
    ] * len(tiny)
    assert trainer.state.hero.quests_completed == won
    trainer.stop()
