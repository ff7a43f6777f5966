"""LoRA adapters through peft: attach new ones, reload saved ones, merge them into the base.

An adapter checkpoint is what peft's ``save_pretrained`` writes (``adapter_config.json`` and
``adapter_model.safetensors``): only the adapters' weights. Serving and exporting need a plain
model, so they merge the adapters into the base (``merge_and_unload``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from realm.config import ConfigError, LoraSettings

if TYPE_CHECKING:
    import torch

ADAPTER_CONFIG = "adapter_config.json"


def is_adapter(folder: Path | None) -> bool:
    """Whether ``folder`` holds LoRA adapters rather than a whole model."""
    return folder is not None and (Path(folder) / ADAPTER_CONFIG).is_file()


def linear_names(model: torch.nn.Module) -> list[str]:
    """The distinct last names of the model's linear modules (what ``targets`` may name)."""
    import torch

    return sorted(
        {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    )


def check_targets(model: torch.nn.Module, targets: tuple[str, ...]) -> None:
    """Every target must name some module (peft matches a module's full name or its last parts)."""
    names = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(name == t or name.endswith("." + t) for name in names)]
    if missing:
        raise ConfigError(
            f"train.lora.targets: {', '.join(missing)} match(es) no module of the model; "
            f"its linear modules are: {', '.join(linear_names(model))}"
        )


def attach(model: torch.nn.Module, settings: LoraSettings) -> torch.nn.Module:
    """``model`` with new adapters on ``settings.targets``; only the adapters train."""
    from peft import LoraConfig, get_peft_model

    check_targets(model, settings.targets)
    config = LoraConfig(
        r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout, target_modules=list(settings.targets)
    )
    return get_peft_model(model, config)


def load(model: torch.nn.Module, folder: Path, *, trainable: bool) -> torch.nn.Module:
    """``model`` (the base) with the adapters saved in ``folder``."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(folder), is_trainable=trainable)


def merged(model: torch.nn.Module, folder: Path) -> torch.nn.Module:
    """The plain model: ``folder``'s adapters folded into the base ``model``'s weights."""
    return load(model, folder, trainable=False).merge_and_unload()


def trainable_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
