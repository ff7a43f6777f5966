"""The champion board: the checkpoints scored on the current evaluation suite, best first.

    score = champion.skill_weight x suite accuracy - champion.loss_weight x suite loss

Both parts come from the evaluation suite (``trainer/suite.py``): the same held-out data for
every checkpoint. ``suite loss`` is the mean loss per answer token over the user's
``HOME/validation/`` files (the skills' built-in held-out set when there are none);
``suite accuracy`` is the share of the skills' frozen eval items answered right (a missing
part counts 0). The current suite is the version of the newest scored checkpoint; a checkpoint
not scored on it is unranked and can never be the champion. Higher is better; ties go to the
newer checkpoint.

Ledger references (what promote, chat and the oracle accept) resolve here too: a step
(``200``), a canonical name (``checkpoint-200-20251127-1430``), ``latest`` or ``champion``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from realm.config import ChampionConfig
from realm.errors import RealmError
from realm.protocol import CheckpointInfo, SuiteScore
from realm.vault.checkpoints import parse_step


class UnknownCheckpoint(RealmError):
    """A ledger reference that names no present checkpoint."""


class BadReference(UnknownCheckpoint):
    """A reference that is none of the accepted forms: a usage error, not a missing checkpoint."""


class Ranked(NamedTuple):
    rank: int  # 1 is the champion; 0 for unranked
    checkpoint: CheckpointInfo
    score: float | None  # None: not scored on the current suite


def formula(weights: ChampionConfig) -> str:
    return f"score = {weights.skill_weight:g} x suite accuracy - {weights.loss_weight:g} x suite loss"


def suite_score(suite: SuiteScore, weights: ChampionConfig) -> float:
    return weights.skill_weight * (suite.accuracy or 0.0) - weights.loss_weight * (suite.loss or 0.0)


def current_version(present: list[CheckpointInfo]) -> str | None:
    """The suite version of the newest scored checkpoint."""
    scored = [c for c in present if c.suite is not None]
    return max(scored, key=lambda c: c.step).suite.version if scored else None


def rank(present: list[CheckpointInfo], weights: ChampionConfig) -> list[Ranked]:
    """``present`` best first; those not scored on the current suite last, newest first."""
    version = current_version(present)
    scored = [(c, suite_score(c.suite, weights)) for c in present if c.suite is not None and c.suite.version == version]
    scored.sort(key=lambda pair: (-pair[1], -pair[0].step))
    ranked_steps = {c.step for c, _ in scored}
    unranked = sorted((c for c in present if c.step not in ranked_steps), key=lambda c: -c.step)
    rows = [Ranked(i, c, value) for i, (c, value) in enumerate(scored, start=1)]
    return rows + [Ranked(0, c, None) for c in unranked]


def board(ledger, weights: ChampionConfig) -> list[Ranked]:
    """Every present checkpoint in the ledger, ranked."""
    return rank(ledger.present(), weights)


def champion(ledger, weights: ChampionConfig) -> CheckpointInfo | None:
    rows = board(ledger, weights)
    return rows[0].checkpoint if rows and rows[0].rank == 1 else None


def check_reference(ref: str) -> str:
    """``ref`` stripped when it has one of the accepted forms; ``BadReference`` otherwise."""
    ref = ref.strip()
    if ref in ("latest", "champion") or ref.isdigit() or parse_step(ref) is not None:
        return ref
    raise BadReference(
        f"{ref!r} is not a checkpoint reference: give a step (200), a canonical name "
        "(checkpoint-200-20251127-1430), latest or champion"
    )


def resolve(ledger, ref: str, weights: ChampionConfig) -> tuple[CheckpointInfo, Path]:
    """The present checkpoint a reference names, and its folder; ``UnknownCheckpoint`` if none."""
    ref = check_reference(ref)
    present = ledger.present()
    if ref == "latest":
        chosen = present[-1] if present else None
        why = "the vault is empty"
    elif ref == "champion":
        chosen = champion(ledger, weights)
        why = "no checkpoint is scored on the evaluation suite yet (each is scored as it is saved)"
    else:
        step = int(ref) if ref.isdigit() else parse_step(ref)
        chosen = next((c for c in present if c.step == step), None)
        if chosen is not None and not ref.isdigit() and chosen.name != ref:
            chosen = None
        steps = ", ".join(str(c.step) for c in present[-8:]) or "none"
        why = f"no checkpoint {ref} in the ledger (latest steps: {steps})"
    folder = ledger.path_of(chosen.step) if chosen else None
    if chosen is None or folder is None or not folder.is_dir():
        raise UnknownCheckpoint(
            why if chosen is None else f"checkpoint {chosen.name} is in the ledger but its folder is gone"
        )
    return chosen, folder
