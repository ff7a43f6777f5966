"""A plain model for every checkpoint: an adapter checkpoint is merged into its base on demand.

An adapter checkpoint's sidecar names its base (``base_model``, and ``base_checkpoint`` when the
adapters were started on a full checkpoint, ``base_seed`` for a built-in's random weights).
Promote and export need a model any HF tool loads, so the first of them merges the adapters
into the base and keeps the result in the checkpoint's ``merged/`` folder (deleted with it).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

from realm.config import ModelConfig
from realm.errors import RealmError
from realm.files import atomic_write
from realm.model import lora
from realm.vault.checkpoints import (
    SIDECAR,
    TEMP_PREFIX,
    complete_checkpoints,
    fsync_tree,
    parse_step,
    read_sidecar,
    weights_sha256,
)

MERGED = "merged"
_merging = threading.Lock()  # one merge at a time in a process: each holds a whole model


def base_of(folder: Path) -> tuple[str, Path | None, int]:
    """(base model name, base checkpoint folder or None, seed) of an adapter checkpoint."""
    sidecar = read_sidecar(folder) or {}
    if "base_model" not in sidecar:
        raise RealmError(f"{folder}: an adapter checkpoint whose {SIDECAR} names no base_model; it cannot be merged")
    checkpoint = sidecar.get("base_checkpoint")
    return str(sidecar["base_model"]), Path(checkpoint) if checkpoint else None, int(sidecar.get("base_seed", 0))


def adapter_bases(checkpoints_dir: Path) -> tuple[int, ...]:
    """Steps of the full checkpoints that adapter checkpoints here were started on: merging
    those adapters needs them, so retention keeps them."""
    steps = set()
    for folder in complete_checkpoints(checkpoints_dir):
        base = (read_sidecar(folder) or {}).get("base_checkpoint")
        if base and Path(base).parent == checkpoints_dir and (step := parse_step(Path(base).name)) is not None:
            steps.add(step)
    return tuple(sorted(steps))


def load_base(folder: Path, *, device: str = "cpu", dtype: str = "float32"):
    """(base model, tokenizer) of the adapter checkpoint ``folder``."""
    from realm.model.loading import load_model

    name, checkpoint, seed = base_of(folder)
    return load_model(ModelConfig(name=name, device=device, dtype=dtype), checkpoint=checkpoint, seed=seed)


def plain_folder(folder: Path) -> Path:
    """``folder`` itself for a full checkpoint; for an adapter checkpoint, its merge (made once)."""
    if not lora.is_adapter(folder):
        return folder
    final = folder / MERGED
    with _merging:
        if not (final / SIDECAR).is_file():
            _merge_into(folder, final)
    return final


def _merge_into(folder: Path, final: Path) -> None:
    from realm.model.loading import load_tokenizer

    base, _ = load_base(folder)
    model = lora.merged(base, folder)
    tmp = folder / f"{TEMP_PREFIX}{MERGED}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        load_tokenizer(str(folder)).save_pretrained(tmp)
        sidecar = {**(read_sidecar(folder) or {}), "adapter": False, "merged_adapter": True}
        sidecar["sha256"] = weights_sha256(tmp)
        atomic_write(tmp / SIDECAR, json.dumps(sidecar, indent=2, sort_keys=True))
        fsync_tree(tmp)
        shutil.rmtree(final, ignore_errors=True)  # a merge cut short by a kill has no sidecar
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
