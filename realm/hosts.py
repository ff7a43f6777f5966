"""The host registry: where the realm's nodes run, what they do, and their public keys.

``configs/hosts.yaml`` documents the shape (and is the default); a realm uses
``security.hosts`` when set, else ``{home}/hosts.yaml`` when it exists, else that default. Every
command finds its peers here: the trainer's endpoints, the oracles', and the CURVE public keys
that a client must trust (a node's ``public_key``) and that a server admits (``clients``).

``auto`` endpoints mean this machine's ipc sockets under ``{home}/run``; explicit ``bus`` or
``oracle`` endpoints in the realm config win over the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec
import yaml

from realm.config import ConfigError, RealmConfig, endpoints, oracle_endpoints
from realm.resources import shipped

DEFAULT_HOSTS = shipped("configs/hosts.yaml")

Role = Literal["trainer", "oracle"]


class _Entry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class Endpoints(_Entry):
    control: str = "auto"
    pub: str = "auto"


class Node(_Entry):
    name: str
    roles: tuple[Role, ...]
    trainer: Endpoints = Endpoints()
    oracle: Endpoints = Endpoints()
    public_key: str = ""  # the node's CURVE server key (Z85, 40 chars), from `realm keys init`


class Client(_Entry):
    name: str
    public_key: str


class Registry(_Entry):
    nodes: tuple[Node, ...] = (Node(name="local", roles=("trainer", "oracle")),)
    clients: tuple[Client, ...] = ()  # CURVE client keys the nodes' ZAP allowlist admits

    def with_role(self, role: str) -> list[Node]:
        return [node for node in self.nodes if role in node.roles]

    def node(self, name: str) -> Node | None:
        return next((node for node in self.nodes if node.name == name), None)

    def allowed_keys(self) -> set[str]:
        """Every key the ZAP allowlist admits: the listed clients and the nodes themselves."""
        return {c.public_key for c in self.clients} | {n.public_key for n in self.nodes if n.public_key}


def hosts_path(config: RealmConfig, home: Path) -> Path:
    chosen = getattr(config, "security", None)
    if chosen is not None and chosen.hosts != "auto":
        return Path(chosen.hosts).expanduser()
    local = home / "hosts.yaml"
    return local if local.exists() else DEFAULT_HOSTS


def load_registry(path: Path) -> Registry:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: host registry not found") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the host registry: {exc}") from None
    try:
        registry = msgspec.convert(raw, Registry)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    names = [node.name for node in registry.nodes]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: node names must be unique, got {names}")
    for key in [n.public_key for n in registry.nodes if n.public_key] + [c.public_key for c in registry.clients]:
        if len(key) != 40:
            raise ConfigError(f"{path}: {key!r} is not a CURVE public key (40 Z85 characters from `realm keys init`)")
    return registry


def registry_for(config: RealmConfig, home: Path) -> Registry:
    path = hosts_path(config, home)
    if path == DEFAULT_HOSTS and not path.exists():  # an install without the configs folder
        return Registry()
    return load_registry(path)


def _pick(explicit: str, listed: str, local: str) -> str:
    if explicit != "auto":
        return explicit
    return local if listed == "auto" else listed


def trainer_endpoints(config: RealmConfig, home: Path, registry: Registry | None = None) -> tuple[str, str, str]:
    """(pub, control, server public key) of the trainer this realm talks to."""
    registry = registry or registry_for(config, home)
    node = next(iter(registry.with_role("trainer")), None)
    local_pub, local_control = endpoints(RealmConfig(), home)
    listed = node.trainer if node else Endpoints()
    pub = _pick(config.bus.pub, listed.pub, local_pub)
    control = _pick(config.bus.control, listed.control, local_control)
    return pub, control, node.public_key if node else ""


def oracle_nodes(config: RealmConfig, home: Path, registry: Registry | None = None) -> list[tuple[str, str, str, str]]:
    """(name, pub, control, server public key) for every oracle in the registry; this machine's
    own oracle (``oracle.pub``/``oracle.control`` when set) stands in for ``auto``."""
    registry = registry or registry_for(config, home)
    local_pub, local_control = oracle_endpoints(config, home)
    found = []
    for node in registry.with_role("oracle"):
        pub = local_pub if node.oracle.pub == "auto" else node.oracle.pub
        control = local_control if node.oracle.control == "auto" else node.oracle.control
        found.append((node.name, pub, control, node.public_key))
    return found or [("local", local_pub, local_control, "")]


def oracle_node(config: RealmConfig, home: Path, name: str | None = None) -> tuple[str, str, str, str]:
    """The oracle to talk to: ``name``, else ``oracle.node`` when listed, else the first one."""
    nodes = oracle_nodes(config, home)
    wanted = name or config.oracle.node
    for node in nodes:
        if node[0] == wanted:
            return node
    if name:
        raise ConfigError(f"no oracle node {name!r} in the host registry; known: {', '.join(n[0] for n in nodes)}")
    return nodes[0]


def connect_trainer(config: RealmConfig, home: Path):
    """(pub, control, CURVE client setup or None) for talking to the trainer."""
    from realm.security import client_setup

    pub, control, key = trainer_endpoints(config, home)
    return pub, control, client_setup(config, home, key, control)


def connect_oracle(config: RealmConfig, home: Path, name: str | None = None):
    """(pub, control, CURVE client setup or None) for talking to an oracle."""
    from realm.security import client_setup

    _, pub, control, key = oracle_node(config, home, name)
    return pub, control, client_setup(config, home, key, control)


def serve_setup(config: RealmConfig, home: Path, bound: list[str]):
    """The CURVE server setup for sockets bound at ``bound`` (see ``realm.security``)."""
    from realm.security import server_setup

    return server_setup(config, home, bound, registry_for(config, home).allowed_keys())
