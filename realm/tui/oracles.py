"""The oracle nodes the app follows: where they are (the host registry) and what they report.

Each node gets its own ``StateMirror`` on the oracle's PUB socket: the oracle publishes its
``OracleState`` inside a ``RealmState`` through the same reducer as the trainer, so the Clone
pattern (snapshot, sequence, heartbeats) works unchanged. Chat itself goes to the node's
control socket through ``realm.oracle.client.OracleClient`` in a thread worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from realm.bus import StateMirror
from realm.protocol import OracleState

if TYPE_CHECKING:  # the CLI imports this module for registry_oracles: it must not load Textual
    from textual.app import App

NO_ORACLE_HINT = "start one with `realm oracle` (or `realm play`, which runs it beside the trainer)"


@dataclass(frozen=True)
class OracleNode:
    """An oracle as the host registry lists it."""

    name: str
    pub: str
    control: str
    socket_setup: Callable | None = None  # CURVE client keys when the registry lists its key
    problem: str = ""  # why this app cannot talk to it at all (e.g. no client key)


@dataclass(frozen=True)
class OracleView:
    """One oracle node as a screen draws it."""

    name: str
    control: str
    connected: bool
    state: OracleState = field(default_factory=OracleState)
    heard_s_ago: float | None = None
    problem: str = ""

    @property
    def unreachable(self) -> str:
        """Why chat cannot go to this node now, or "" when it can."""
        if self.problem:
            return f"oracle {self.name}: {self.problem}"
        if not self.connected:
            return f"no oracle answering at {self.control}: {NO_ORACLE_HINT}"
        return ""


class OracleLink:
    """A node and the mirror that follows it."""

    def __init__(self, node: OracleNode, heartbeat_s: float) -> None:
        self.node = node
        self.mirror = StateMirror(node.pub, node.control, heartbeat_s=heartbeat_s, socket_setup=node.socket_setup)

    def view(self) -> OracleView:
        m = self.mirror
        heard = time.monotonic() - m.last_heard if m.last_heard else None
        return OracleView(self.node.name, self.node.control, m.connected, m.state.oracle, heard, self.node.problem)

    def key(self) -> tuple:
        m = self.mirror
        return (m.seq, m.connected, m.state.run, m.snapshots)


class OracleLinks:
    """The oracle nodes the app follows, and the one picked on the Oracle screen."""

    def __init__(self, nodes: Sequence[OracleNode], heartbeat_s: float) -> None:
        self.links = [OracleLink(node, heartbeat_s) for node in nodes]
        self.index = 0

    def picked(self) -> OracleLink | None:
        return self.links[self.index] if self.links else None

    def pick(self, index: int) -> bool:
        """Pick node ``index``; True when that changed the pick."""
        if 0 <= index < len(self.links) and index != self.index:
            self.index = index
            return True
        return False

    def follow(self, app: App) -> None:
        """Start a worker per node that the app can reach, each following its node's bus."""
        for link in self.links:
            if not link.node.problem:
                app.run_worker(link.mirror.run(), group=f"oracle-{link.node.name}", name="oracle", exclusive=True)

    def views(self) -> tuple[OracleView, ...]:
        return tuple(link.view() for link in self.links)

    def key(self) -> tuple:
        return (self.index, *(link.key() for link in self.links))


def registry_oracles(config, home: Path) -> list[OracleNode]:
    """Every oracle in the host registry (this machine's own for ``auto``), ready to connect."""
    from realm.errors import RealmError
    from realm.hosts import oracle_nodes
    from realm.security import client_setup

    nodes = []
    for name, pub, control, key in oracle_nodes(config, home):
        try:
            nodes.append(OracleNode(name, pub, control, client_setup(config, home, key, control)))
        except RealmError as exc:
            nodes.append(OracleNode(name, pub, control, problem=str(exc)))
    return nodes
