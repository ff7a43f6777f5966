"""Keep the oracle on the newest or the champion checkpoint (config `tui.oracle_follow`, `ctrl+f`).

``OracleFollow.due`` is the rule: the checkpoint the mode names, unless the oracle serves it
already or it was asked for once (a refused load is said by its toast, not retried every tick).
The app sends what is due through the same promote request as `P` on the Vault.
"""

from __future__ import annotations

from dataclasses import dataclass

from realm.protocol import CheckpointInfo, RealmState

FOLLOW_MODES = ("off", "latest", "champion")  # the order ctrl+f cycles through
FOLLOW_WORDS = {"off": "follows nothing", "latest": "follows the latest", "champion": "follows the champion"}


def follow_target(state: RealmState, mode: str) -> CheckpointInfo | None:
    """The checkpoint ``mode`` names in the vault now, or None."""
    checkpoints = state.vault.checkpoints
    if mode == "latest" and checkpoints:
        return checkpoints[-1]
    if mode == "champion":
        return next((c for c in checkpoints if c.step == state.vault.champion), None)
    return None


@dataclass
class OracleFollow:
    mode: str = "off"
    asked: int | None = None  # the step last asked for

    def due(self, state: RealmState, served_step: int | None) -> CheckpointInfo | None:
        """The checkpoint to ask the oracle to load now, or None."""
        target = follow_target(state, self.mode)
        if target is None or target.step in (self.asked, served_step):
            return None
        return target

    def cycle(self) -> str:
        """The next mode (off → latest → champion → off); it asks afresh."""
        self.mode = FOLLOW_MODES[(FOLLOW_MODES.index(self.mode) + 1) % len(FOLLOW_MODES)]
        self.asked = None
        return self.mode
