"""``realm doctor``: the health inspector. Every check says what it found and, when it fails,
what to do; the command exits non-zero if any check fails."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import NamedTuple

import zmq

from realm import protocol
from realm.config import RealmConfig
from realm.protocol import PROTOCOL_VERSION, PingRequest, Pong

MIN_FREE_BYTES = 2 * 2**30  # a few checkpoints of a 0.6B model
MAX_SKEW_S = 2.0
MAX_HEARTBEAT_AGE_FACTOR = 3  # heartbeats older than this many periods mean a stuck node


class Check(NamedTuple):
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks(config: RealmConfig, home: Path, config_path: Path | None) -> list[Check]:
    checks = [Check("config", True, str(config_path or "built-in defaults"))]
    registry, registry_check = _registry(config, home)
    checks.append(registry_check)
    checks += _keys(config, home, registry)
    if registry is not None:
        checks += _nodes(config, home, registry)
    checks.append(_disk(home))
    checks.append(_gpus(config))
    checks.append(_bin_glyphs(config))
    return checks


def _registry(config: RealmConfig, home: Path):
    from realm.config import ConfigError
    from realm.hosts import hosts_path, load_registry

    path = hosts_path(config, home)
    try:
        registry = load_registry(path)
    except ConfigError as exc:
        return None, Check("host registry", False, str(exc), "fix the file named above (see configs/hosts.yaml)")
    roles = ", ".join(f"{n.name} ({'+'.join(n.roles)})" for n in registry.nodes)
    return registry, Check("host registry", True, f"{path}: {roles}")


def _keys(config: RealmConfig, home: Path, registry) -> list[Check]:
    from realm.security import file_mode, is_loopback, keys_dir, secret_files

    folder = keys_dir(config, home)
    secrets = secret_files(folder)
    checks = []
    for path in secrets:
        mode = file_mode(path)
        ok = not mode & 0o077
        checks.append(Check(f"key {path.name}", ok, f"mode {mode:o}", "" if ok else f"chmod 600 {path}"))
    needs_keys = registry is not None and any(n.public_key for n in registry.nodes)
    exposed = [
        e
        for e in (config.bus.pub, config.bus.control, config.oracle.pub, config.oracle.control)
        if e != "auto" and not is_loopback(e)
    ]
    if not secrets:
        if needs_keys or (exposed and not config.security.insecure):
            checks.append(
                Check(
                    "keys",
                    False,
                    f"no key pairs in {folder}",
                    "run `realm keys init` and put the public keys in the host registry",
                )
            )
        else:
            checks.append(Check("keys", True, "none; every endpoint is local (ipc or loopback)"))
    if exposed and config.security.insecure:
        checks.append(
            Check(
                "encryption",
                False,
                f"{', '.join(exposed)} listen(s) without CURVE (security.insecure)",
                "run `realm keys init` and set security.insecure: false",
            )
        )
    return checks


def _nodes(config: RealmConfig, home: Path, registry) -> list[Check]:
    from realm.hosts import connect_oracle, connect_trainer
    from realm.security import SecurityError

    checks = []
    for node in registry.nodes:
        for role in node.roles:
            try:
                if role == "trainer":
                    pub, control, setup = connect_trainer(config, home)
                else:
                    pub, control, setup = connect_oracle(config, home, node.name)
            except SecurityError as exc:
                checks.append(Check(f"{node.name} {role}", False, str(exc), "run `realm keys init`"))
                continue
            checks += _probe(f"{node.name} {role}", role, pub, control, setup, config)
    return checks


def _probe(label: str, role: str, pub: str, control: str, setup, config: RealmConfig) -> list[Check]:
    start_cmd = "realm trainer" if role == "trainer" else "realm oracle"
    pong, rtt = _ping(control, setup, timeout_s=min(config.bus.timeout_s, 1.5))
    if pong is None:
        return [
            Check(
                label,
                False,
                f"no answer at {control}",
                f"start `{start_cmd}` there (or fix its endpoint / key in the host registry)",
            )
        ]
    checks = [
        Check(
            label,
            pong.version == PROTOCOL_VERSION,
            f"{control}: protocol v{pong.version}, run {pong.run}, {rtt * 1000:.1f} ms",
            "" if pong.version == PROTOCOL_VERSION else "run the same realm version on every node",
        )
    ]
    skew = pong.time - (time.time() - rtt / 2)
    checks.append(
        Check(
            f"{label} clock",
            abs(skew) <= MAX_SKEW_S,
            f"skew {skew:+.3f}s",
            "" if abs(skew) <= MAX_SKEW_S else "synchronise the clocks (chrony or systemd-timesyncd)",
        )
    )
    age = _heartbeat_age(pub, setup, config.bus.heartbeat_s)
    limit = MAX_HEARTBEAT_AGE_FACTOR * config.bus.heartbeat_s
    if age is None:
        checks.append(
            Check(
                f"{label} heartbeat",
                False,
                f"nothing heard on {pub}",
                "check the node's pub endpoint in the host registry and the firewall",
            )
        )
    else:
        checks.append(
            Check(
                f"{label} heartbeat",
                age <= limit + abs(skew),
                f"last {age:.2f}s ago",
                "" if age <= limit + abs(skew) else "the node is stuck: see its log",
            )
        )
    return checks


def _ping(control: str, setup, timeout_s: float) -> tuple[Pong | None, float]:
    with zmq.Context.instance().socket(zmq.DEALER) as sock:
        sock.setsockopt(zmq.LINGER, 0)
        if setup:
            setup(sock)
        sock.connect(control)
        started = time.time()
        sock.send_multipart([b"", protocol.encode(PingRequest())])
        if not sock.poll(int(timeout_s * 1000)):
            return None, 0.0
        try:
            reply = protocol.decode_oracle_reply(sock.recv_multipart()[-1])
        except protocol.ProtocolError:
            return None, 0.0
        return (reply if isinstance(reply, Pong) else None), time.time() - started


def _heartbeat_age(pub: str, setup, heartbeat_s: float) -> float | None:
    with zmq.Context.instance().socket(zmq.SUB) as sub:
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        if setup:
            setup(sub)
        sub.connect(pub)
        if not sub.poll(int(heartbeat_s * 2500)):
            return None
        try:
            message = protocol.decode_published(sub.recv())
        except protocol.ProtocolError:
            return None
        return max(0.0, time.time() - message.time)


def _disk(home: Path) -> Check:
    probe = home if home.exists() else next((p for p in home.parents if p.exists()), Path("/"))
    usage = shutil.disk_usage(probe)
    ok = usage.free >= MIN_FREE_BYTES
    detail = f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB at {probe}"
    return Check("disk", ok, detail, "" if ok else "free space or delete old checkpoints (`realm vault delete STEP`)")


def _gpus(config: RealmConfig) -> Check:
    from realm.gpu import read_gpus

    gpus, note = read_gpus()
    wants_cuda = any(d.startswith("cuda") for d in (config.model.device, config.oracle.device))
    if gpus:
        names = ", ".join(f"{g.index}: {g.name} {g.memory_used_mb:.0f}/{g.memory_total_mb:.0f} MiB" for g in gpus)
        return Check("gpus", True, names)
    return Check(
        "gpus",
        not wants_cuda,
        note + ("" if wants_cuda else "; training and serving on CPU"),
        "install the NVIDIA driver or set model.device / oracle.device to auto" if wants_cuda else "",
    )


def _bin_glyphs(config: RealmConfig) -> Check:
    """No program can see the terminal's font, so the line asks the player to look (a browser needs
    no look: the page of ``realm tui --serve`` ships a font with the glyphs)."""
    browser = "; the browser page (tui --serve) ships a font with them"
    if config.tui.bin_glyphs == "ascii":
        detail = "tui.bin_glyphs: ascii (BIN's \u24ea \u2460 drawn as 0 1); if \u24ea \u2460 here look right, circled shows them"
        return Check("bin glyphs", True, detail + browser)
    detail = "tui.bin_glyphs: circled; if \u24ea \u2460 here show as boxes or misaligned, set tui.bin_glyphs: ascii"
    return Check("bin glyphs", True, detail + browser)


def format_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        lines.append(f"{mark}  {check.name:<{width}}  {check.detail}")
        if not check.ok and check.fix:
            lines.append(f"      {'':<{width}}  -> {check.fix}")
    failed = sum(not c.ok for c in checks)
    lines.append(f"{len(checks) - failed} ok, {failed} failed")
    return "\n".join(lines)
