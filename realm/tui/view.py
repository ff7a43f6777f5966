"""What a screen is given to draw: the mirrored state plus how the app is connected."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from realm.protocol import RealmState
from realm.tui.oracles import OracleView

if TYPE_CHECKING:
    from realm.bus import StateMirror


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

    @classmethod
    def of(cls, mirror: StateMirror, now: float, last_event_time: float | None) -> LinkStats:
        heard = time.monotonic() - mirror.last_heard if mirror.last_heard else None
        lag = now - last_event_time if last_event_time is not None else None
        return cls(mirror.seq, mirror.snapshots, mirror.bad_messages, heard_s_ago=heard, lag_s=lag)


class StepRate:
    """Steps per second, measured from the newest step events' times (the ETA's speed)."""

    WINDOW = 64  # step events behind the figure

    def __init__(self) -> None:
        self._points: collections.deque[tuple[float, int]] = collections.deque(maxlen=self.WINDOW)

    def add(self, time: float, step: int) -> None:
        self._points.append((time, step))

    def clear(self) -> None:
        self._points.clear()

    def per_s(self) -> float | None:
        if len(self._points) < 2:
            return None
        (t0, s0), (t1, s1) = self._points[0], self._points[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 and s1 > s0 else None


@dataclass(frozen=True)
class RealmView:
    state: RealmState
    connected: bool
    control_endpoint: str
    readonly: bool = False
    now: float = 0.0  # wall-clock time of this view (fixed in snapshot tests)
    link: LinkStats = field(default_factory=LinkStats)
    steps_per_s: float | None = None  # measured from the step events' times
    disabled: tuple[tuple[str, str], ...] = ()  # (action, why) for actions that cannot run now
    oracles: tuple[OracleView, ...] = ()  # every oracle node the app follows
    oracle_index: int = 0  # the one picked on the Oracle screen
    keymap: tuple[tuple[str, str], ...] = ()  # (binding id, keys) the config's tui.keys rebound
    last_known_at: float | None = None  # the state is the data root's files, written then: not live yet

    @property
    def oracle(self) -> OracleView | None:
        return self.oracles[self.oracle_index] if self.oracles else None

    @property
    def ever_connected(self) -> bool:
        """True once a snapshot arrived; after that a disconnect keeps the last state on show."""
        return bool(self.state.run)

    def why_disabled(self, action: str) -> str | None:
        return dict(self.disabled).get(action)
