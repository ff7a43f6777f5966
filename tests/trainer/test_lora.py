"""LoRA with the real tiny model: only the adapters train, the vault keeps them small and marked,
a restart resumes them, and promote and export give a plain model any HF tool loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
import torch
import yaml
from conftest import fast_config, trainer_process, wait_for, write_chat_quest
from transformers import AutoModelForCausalLM

from realm.config import ConfigError, LoraSettings
from realm.home import Home
from realm.model.lora import ADAPTER_CONFIG
from realm.vault.checkpoints import complete_checkpoints, read_sidecar
from realm.vault.ledger import Ledger
from realm.vault.merge import MERGED, adapter_bases
from realm.vault.retention import prune
from realm.vault.service import DeleteRefused, VaultService, delete_checkpoint, export_checkpoint
from trainer import memory
from trainer.checkpointer import Checkpointer
from trainer.engine import Engine
from trainer.telemetry import read_metrics

ROOT = Path(__file__).resolve().parents[2]
LORA = LoraSettings(r=8, alpha=16, targets=("q_proj", "v_proj"))


def _config(**train):
    return fast_config(lora=LORA, lr=1e-2, warmup_steps=1, **train)


def _batch(engine: Engine, tmp_path: Path):
    import json

    path = write_chat_quest(tmp_path / "q.jsonl", 8)
    return engine.encode([json.loads(line)["messages"] for line in path.read_text().splitlines()])


def _base_weights(engine: Engine) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in engine.unwrapped.named_parameters() if "lora_" not in n}


def _adapter_weights(engine: Engine) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in engine.unwrapped.named_parameters() if "lora_" in n}


def _save(engine: Engine, home: Path, ledger: Ledger):
    config = engine.config
    checkpointer = Checkpointer(Home(home).ensure().checkpoints, ledger, engine, lambda event: None,
                                config=lambda: config, in_use=lambda: ())  # fmt: skip
    info = checkpointer.save({"time": 1.7e9, "train_loss": 1.0, "val_loss": None, "quest": None})
    return info, ledger.path_of(info.step)


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_lora_steps_change_only_the_adapters_and_lower_the_loss(tmp_path):
    engine = Engine(_config())
    batch = _batch(engine, tmp_path)
    base, adapters = _base_weights(engine), _adapter_weights(engine)
    assert adapters and all(p.requires_grad for n, p in engine.unwrapped.named_parameters() if "lora_" in n)
    losses = [engine.train_step(batch).loss for _ in range(8)]
    assert losses[-1] < losses[0] * 0.9, losses
    after = dict(engine.unwrapped.named_parameters())
    assert all(torch.equal(after[n], p) for n, p in base.items()), "a frozen base weight moved"
    assert any(not torch.equal(after[n], p) for n, p in adapters.items()), "the adapters did not train"
    # the optimizer holds the adapters alone
    assert sum(p.numel() for g in engine.optimizer.param_groups for p in g["params"]) == sum(
        p.numel() for p in adapters.values()
    )


def test_an_adapter_checkpoint_is_small_marked_and_resumes_exactly(tmp_path):
    engine = Engine(_config())
    batch = _batch(engine, tmp_path)
    for _ in range(3):
        engine.train_step(batch)
    ledger = Ledger(Home(tmp_path / "home").db)
    info, folder = _save(engine, tmp_path / "home", ledger)
    sidecar = read_sidecar(folder)
    assert sidecar["adapter"] is True and sidecar["base_model"] == "builtin:dio-nano"
    assert sidecar["base_seed"] == engine.config.train.seed and sidecar["base_checkpoint"] is None
    assert (folder / ADAPTER_CONFIG).is_file() and not (folder / "model.safetensors").exists()
    weights = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    assert weights * 20 < engine.parameters * 4, (weights, engine.parameters)

    resumed = Engine(_config(), checkpoint=folder)
    assert resumed.step == engine.step == info.step
    assert resumed.sidecar_fields() == engine.sidecar_fields()
    assert [p.requires_grad for p in resumed.unwrapped.parameters()] == [
        p.requires_grad for p in engine.unwrapped.parameters()
    ]
    going_on, after_resume = engine.train_step(batch), resumed.train_step(batch)
    assert abs(going_on.loss - after_resume.loss) < 1e-6, (going_on.loss, after_resume.loss)
    ledger.close()


def test_promote_and_export_merge_the_adapters_into_a_plain_model(tmp_path):
    from realm.oracle.model_store import ModelStore

    engine = Engine(_config())
    batch = _batch(engine, tmp_path)
    for _ in range(4):
        engine.train_step(batch)
    home = tmp_path / "home"
    Home(home).ensure()
    ledger = Ledger(Home(home).db)
    info, folder = _save(engine, home, ledger)
    ids = torch.tensor([batch[0].input_ids])
    peft_logits = _logits(engine.unwrapped, ids)
    merged_logits = _logits(engine.unwrapped.merge_and_unload(), ids)
    assert torch.allclose(peft_logits, merged_logits, atol=1e-4)

    exported = export_checkpoint(ledger, engine.config, str(info.step), tmp_path / "out")
    assert not (exported / ADAPTER_CONFIG).exists() and not (exported / MERGED).exists()
    assert read_sidecar(exported)["merged_adapter"] is True
    plain = AutoModelForCausalLM.from_pretrained(exported)
    assert torch.equal(_logits(plain, ids), merged_logits)

    manifest = VaultService(engine.config, home, ledger, publisher=None).manifest(str(info.step))
    names = {f.name for f in manifest.files}
    assert "model.safetensors" in names and ADAPTER_CONFIG not in names  # what a remote oracle fetches
    served, _ = ModelStore(engine.config, home, fetcher=None).promote(str(info.step))
    assert torch.equal(_logits(served.model, ids), merged_logits)
    ledger.close()


def test_adapters_started_on_a_full_checkpoint_keep_it_as_their_base(tmp_path):
    home = tmp_path / "home"
    ledger = Ledger(Home(home).ensure().db)
    full = Engine(fast_config(lr=1e-2, warmup_steps=1))
    batch = _batch(full, tmp_path)
    for _ in range(2):
        full.train_step(batch)
    base_info, base_folder = _save(full, home, ledger)
    assert read_sidecar(base_folder)["adapter"] is False

    engine = Engine(_config(), checkpoint=base_folder)
    assert engine.step == 2
    for _ in range(2):
        engine.train_step(batch)
    info, folder = _save(engine, home, ledger)
    assert read_sidecar(folder)["base_checkpoint"] == str(base_folder)

    assert adapter_bases(Home(home).checkpoints) == (base_info.step,)
    settings = msgspec.structs.replace(engine.config.vault, keep_last=1, keep_best=0)
    assert prune(ledger, settings, bases=(base_info.step,), everything_allowed=True) == []
    with pytest.raises(DeleteRefused, match="base of LoRA adapter checkpoints"):
        delete_checkpoint(engine.config, home, ledger, base_info.step)
    exported = export_checkpoint(ledger, engine.config, str(info.step), tmp_path / "out")
    ids = torch.tensor([batch[0].input_ids])
    expected = _logits(engine.unwrapped.merge_and_unload(), ids)
    assert torch.equal(_logits(AutoModelForCausalLM.from_pretrained(exported), ids), expected)

    whole = Engine(fast_config(), checkpoint=folder)  # train.lora off: the adapters merged, all of it trains
    assert whole.step == info.step and whole.sidecar_fields() == {"adapter": False}
    assert torch.allclose(_logits(whole.unwrapped, ids), expected, atol=1e-5)
    ledger.close()


def test_targets_that_match_no_module_name_the_key_and_the_model_s_modules():
    with pytest.raises(ConfigError) as info:
        Engine(fast_config(lora=LoraSettings(targets=("q_proj", "attn_qkv"))))
    message = str(info.value)
    assert message.startswith("train.lora.targets: attn_qkv ") and "q_proj" in message and "down_proj" in message
    assert "\n" not in message


def test_the_memory_estimate_counts_optimizer_state_for_the_adapters_only():
    full, adapted = Engine(fast_config()), Engine(_config())
    trainable = sum(p.numel() for p in adapted.unwrapped.parameters() if p.requires_grad)
    assert adapted.memory.optimizer == 2 * trainable * 4 and adapted.memory.gradients == trainable * 4
    assert full.memory.optimizer == 2 * full.memory.weights
    assert adapted.memory.weights >= full.memory.weights  # the base is all still there, plus the adapters
    train = fast_config(lora=LORA).train
    assert "train.lora" not in memory.refusal(full.memory, 1, "a tiny card", train)


def test_a_config_naming_lora_without_peft_installed_says_what_to_install(tmp_path):
    config = tmp_path / "lora.yaml"
    config.write_text(yaml.safe_dump({"train": {"lora": {"r": 8}}}))
    code = (
        "import sys; sys.modules['peft'] = None; from realm.cli.main import main; "
        f"sys.exit(main(['status', '--home', {str(tmp_path)!r}, '--config', {str(config)!r}]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "train.lora" in result.stderr and "realm-of-training[lora]" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def _steps(home: Path) -> dict[int, float]:
    path = home / "logs" / "metrics.jsonl"
    return {r["step"]: r["loss"] for r in read_metrics(path) if r["kind"] == "step"} if path.exists() else {}


def _run(home: Path, config: Path, max_steps: int) -> None:
    process = trainer_process(home, config, max_steps)
    _, err = process.communicate(timeout=240)
    assert process.returncode == 0, err.decode()[-2000:]


def test_sigkill_then_restart_resumes_the_adapters_on_the_same_loss_curve(tmp_path):
    total = 8
    config = tmp_path / "realm.yaml"
    train = dict(batch_size=4, max_length=64, warmup_steps=2, checkpoint_every=4, val_every=50, threads=1)
    config.write_text(yaml.safe_dump({"train": {**train, "lora": {"r": 8, "targets": ["q_proj", "v_proj"]}}}))
    homes = {name: tmp_path / name for name in ("reference", "killed")}
    for home in homes.values():
        write_chat_quest(home / "quests" / "queued" / "normal" / "reverse.jsonl", n=48)
    _run(homes["reference"], config, total)

    home = homes["killed"]
    first = trainer_process(home, config, total)
    wait_for(lambda: max(_steps(home), default=0) >= 5 or first.poll() is not None, timeout=180, what="step 5")
    first.kill()
    first.wait(timeout=30)
    (latest,) = complete_checkpoints(Home(home).checkpoints)
    assert read_sidecar(latest)["adapter"] is True and (latest / ADAPTER_CONFIG).is_file()
    _run(home, config, total - 4)

    reference, resumed = _steps(homes["reference"]), _steps(home)
    assert sorted(resumed) == sorted(reference) == list(range(1, total + 1))
    for step in range(5, total + 1):
        assert abs(resumed[step] - reference[step]) <= 1e-5, (step, resumed[step], reference[step])
