"""The champion board: every checkpoint in the ledger ranked by one stated composite score.

    score = champion.skill_weight * skill - champion.val_loss_weight * val_loss

``skill`` is the sum over skills of accuracy x level, read from the checkpoint's sidecar
(``.ledger.json``) key ``skills``: ``{"sy": {"level": 3, "accuracy": 0.8}, ...}`` as the skill
evaluator records it; a checkpoint without skill results counts 0 there. ``val_loss`` is the
ledger's validation loss at save time; a checkpoint with neither is unranked (it cannot be the
champion). Higher is better; ties go to the newer checkpoint.

Ledger references (what promote, chat and the oracle accept) resolve here too: a step
(``200``), a canonical name (``checkpoint-200-20251127-1430``), ``latest`` or ``champion``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from realm.config import ChampionConfig
from realm.errors import RealmError
from realm.protocol import CheckpointInfo
from realm.vault.checkpoints import parse_step, read_sidecar


class UnknownCheckpoint(RealmError):
    """A ledger reference that names no present checkpoint."""


class Ranked(NamedTuple):
    rank: int  # 1 is the champion; 0 for unranked
    checkpoint: CheckpointInfo
    score: float | None
    skill: float | None  # the level-weighted accuracy part, None without skill results


def skill_points(sidecar: dict | None) -> float | None:
    """Sum of accuracy x level over the skills in a sidecar; None when it has none."""
    skills = (sidecar or {}).get("skills")
    if not isinstance(skills, dict) or not skills:
        return None
    total = 0.0
    for result in skills.values():
        if isinstance(result, dict):
            try:
                total += float(result.get("accuracy", 0.0)) * float(result.get("level", 1))
            except (TypeError, ValueError):
                continue
    return total


def score(info: CheckpointInfo, sidecar: dict | None, weights: ChampionConfig) -> tuple[float | None, float | None]:
    skill = skill_points(sidecar)
    if skill is None and info.val_loss is None:
        return None, None
    value = weights.skill_weight * (skill or 0.0)
    if info.val_loss is not None:
        value -= weights.val_loss_weight * info.val_loss
    return value, skill


def board(ledger, weights: ChampionConfig) -> list[Ranked]:
    """Every present checkpoint, best first; unranked ones last, newest first."""
    scored = []
    for info in ledger.present():
        folder = ledger.path_of(info.step)
        value, skill = score(info, read_sidecar(folder) if folder else None, weights)
        scored.append((info, value, skill))
    ranked = sorted((s for s in scored if s[1] is not None), key=lambda s: (-s[1], -s[0].step))
    unranked = sorted((s for s in scored if s[1] is None), key=lambda s: -s[0].step)
    rows = [Ranked(i, info, value, skill) for i, (info, value, skill) in enumerate(ranked, start=1)]
    return rows + [Ranked(0, info, None, None) for info, _, _ in unranked]


def champion(ledger, weights: ChampionConfig) -> CheckpointInfo | None:
    rows = board(ledger, weights)
    return rows[0].checkpoint if rows and rows[0].rank == 1 else None


def resolve(ledger, ref: str, weights: ChampionConfig) -> tuple[CheckpointInfo, Path]:
    """The present checkpoint a reference names, and its folder; ``UnknownCheckpoint`` if none."""
    ref = ref.strip()
    present = ledger.present()
    if ref == "latest":
        chosen = present[-1] if present else None
        why = "the vault is empty"
    elif ref == "champion":
        chosen = champion(ledger, weights)
        why = "no checkpoint has a score yet (no validation loss or skill results)"
    else:
        step = int(ref) if ref.isdigit() else parse_step(ref)
        if step is None:
            raise UnknownCheckpoint(
                f"{ref!r} is not a checkpoint reference: give a step (200), a canonical name "
                "(checkpoint-200-20251127-1430), latest or champion"
            )
        chosen = next((c for c in present if c.step == step), None)
        if chosen is not None and not ref.isdigit() and chosen.name != ref:
            chosen = None
        steps = ", ".join(str(c.step) for c in present[-8:]) or "none"
        why = f"no checkpoint {ref} in the ledger (latest steps: {steps})"
    folder = ledger.path_of(chosen.step) if chosen else None
    if chosen is None or folder is None or not folder.is_dir():
        raise UnknownCheckpoint(why if chosen is None else f"checkpoint {chosen.name} is in the ledger but its folder is gone")
    return chosen, folder
