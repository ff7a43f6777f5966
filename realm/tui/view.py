"""What a screen is given to draw: the mirrored state plus how the app is connected."""

from __future__ import annotations

from dataclasses import dataclass, field

from realm.protocol import LogLine, RealmState
from realm.tui.oracles import OracleView


@dataclass(frozen=True)
class LinkStats:
    """How the bus link looks from this app (the Watchtower's numbers)."""

    seq: int = 0
    snapshots: int = 0  # 1 + re-syncs
    bad_messages: int = 0
    heard_s_ago: float | None = None  # since the last message (event or heartbeat)
    lag_s: float | None = None  # now - the newest envelope's time (clock skew included)

    @property
    def reconnects(self) -> int:
        return max(self.snapshots - 1, 0)


@dataclass(frozen=True)
class RealmView:
    state: RealmState
    connected: bool
    control_endpoint: str
    readonly: bool = False
    now: float = 0.0  # wall-clock time of this view (fixed in snapshot tests)
    link: LinkStats = field(default_factory=LinkStats)
    steps_per_s: float | None = None  # measured from the step events' times
    narration: tuple[LogLine, ...] = ()
    disabled: tuple[tuple[str, str], ...] = ()  # (action, why) for actions that cannot run now
    oracles: tuple[OracleView, ...] = ()  # every oracle node the app follows
    oracle_index: int = 0  # the one picked on the Oracle screen

    @property
    def oracle(self) -> OracleView | None:
        return self.oracles[self.oracle_index] if self.oracles else None

    @property
    def ever_connected(self) -> bool:
        """True once a snapshot arrived; after that a disconnect keeps the last state on show."""
        return bool(self.state.run)

    def why_disabled(self, action: str) -> str | None:
        return dict(self.disabled).get(action)
