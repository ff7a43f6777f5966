"""CURVE keys, the ZAP allowlist, and the rule that nothing listens beyond loopback in the clear.

``realm keys init`` writes one key pair for this machine under ``{home}/keys`` (secret files
mode 0600, the folder 0700): ``node.key_secret`` is the server key of the trainer or oracle
running here, ``client.key_secret`` what this machine's commands and oracles present to others.
Put the public keys in the host registry: a node's ``public_key`` (clients check they talk to
the right server) and ``clients`` (the servers' ZAP allowlist).

A server socket on a non-loopback TCP address refuses to start without CURVE unless the config
says ``security.insecure: true``. With keys present every TCP socket uses CURVE; ipc sockets
rely on the 0700 run folder.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from pathlib import Path
from typing import Callable

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from realm.config import RealmConfig
from realm.errors import RealmError

log = logging.getLogger("realm.security")

NODE, CLIENT = "node", "client"
SocketSetup = Callable[..., None]


class SecurityError(RealmError):
    """A socket that may not start as configured; the message says what to do."""


def keys_dir(config: RealmConfig, home: Path) -> Path:
    chosen = config.security.keys_dir
    return Path(chosen).expanduser() if chosen != "auto" else home / "keys"


def init_keys(folder: Path, *, force: bool = False) -> dict[str, str]:
    """Create the node and client key pairs (kept if present unless ``force``); their public keys."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    public = {}
    for name in (NODE, CLIENT):
        secret = folder / f"{name}.key_secret"
        if force or not secret.exists():
            for stale in (secret, folder / f"{name}.key"):
                stale.unlink(missing_ok=True)
            zmq.auth.create_certificates(str(folder), name)
        secret.chmod(0o600)
        public[name] = zmq.auth.load_certificate(str(folder / f"{name}.key"))[0].decode()
    return public


def load_pair(folder: Path, name: str) -> tuple[bytes, bytes] | None:
    secret = folder / f"{name}.key_secret"
    if not secret.exists():
        return None
    mode = secret.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecurityError(f"{secret} is readable by others (mode {mode:o}); run `chmod 600 {secret}`")
    public, secret_key = zmq.auth.load_certificate(str(secret))
    return public, secret_key


def is_loopback(endpoint: str) -> bool:
    """ipc/inproc, or TCP bound to a loopback address."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    host = endpoint[len("tcp://") :].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a host name: reachable from elsewhere


# --------------------------------------------------------------------------- the ZAP allowlist


class _Allowlist:
    def __init__(self) -> None:
        self.keys: set[bytes] = set()

    def callback(self, domain: str, key: bytes) -> bool:
        return key in self.keys


_auth_lock = threading.Lock()
_auth: dict[int, tuple[ThreadAuthenticator, _Allowlist]] = {}


def _allowlist(context: zmq.Context, keys: set[str]) -> _Allowlist:
    """One ZAP handler per context; its allowlist grows with every server that starts."""
    with _auth_lock:
        entry = _auth.get(id(context))
        if entry is None:
            auth = ThreadAuthenticator(context)
            auth.start()
            allow = _Allowlist()
            auth.configure_curve_callback("*", credentials_provider=allow)
            entry = _auth[id(context)] = (auth, allow)
        entry[1].keys |= {key.encode() for key in keys}
        return entry[1]


def server_setup(
    config: RealmConfig, home: Path, bound: list[str], allowed: set[str], context: zmq.Context | None = None
) -> SocketSetup | None:
    """What to do to a server socket before it binds, or None for plain sockets.

    Raises ``SecurityError`` when an endpoint reaches beyond loopback and there are no keys,
    unless ``security.insecure`` is set.
    """
    exposed = [e for e in bound if not is_loopback(e)]
    pair = load_pair(keys_dir(config, home), NODE)
    if pair is None:
        if exposed and not config.security.insecure:
            raise SecurityError(
                f"refusing to listen on {', '.join(exposed)} without CURVE: run `realm keys init`, put the keys "
                "in the host registry, or set security.insecure: true on a trusted network"
            )
        if exposed:
            log.warning("listening on %s WITHOUT encryption or authentication (security.insecure)", ", ".join(exposed))
        return None
    if not any(e.startswith("tcp://") for e in bound):
        return None
    public, secret = pair
    _allowlist(context or zmq.Context.instance(), allowed)

    def setup(sock: zmq.Socket, server: bool = True) -> None:
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True

    return setup


def client_setup(config: RealmConfig, home: Path, server_key: str, endpoint: str) -> SocketSetup | None:
    """CURVE client options for a socket connecting to a server with ``server_key``."""
    if not server_key or not endpoint.startswith("tcp://"):
        return None
    pair = load_pair(keys_dir(config, home), CLIENT)
    if pair is None:
        raise SecurityError(
            f"{endpoint} expects CURVE (its key is in the host registry) but this machine has no client key: "
            "run `realm keys init` and add its client key to the registry's clients"
        )
    public, secret = pair

    def setup(sock: zmq.Socket, server: bool = False) -> None:
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_serverkey = server_key.encode()

    return setup


def stop_authenticators() -> None:
    with _auth_lock:
        for auth, _ in _auth.values():
            auth.stop()
        _auth.clear()


def secret_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.key_secret")) if folder.is_dir() else []


def file_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777
