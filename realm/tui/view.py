"""What a screen is given to draw: the mirrored state plus how the app is connected."""

from __future__ import annotations

from dataclasses import dataclass

from realm.protocol import RealmState


@dataclass(frozen=True)
class RealmView:
    state: RealmState
    connected: bool
    control_endpoint: str
    readonly: bool = False

    @property
    def ever_connected(self) -> bool:
        """True once a snapshot arrived; after that a disconnect keeps the last state on show."""
        return bool(self.state.run)
