"""Keys, CURVE, the allowlist and fuzzed input: strangers get nothing, junk never crashes a node."""

from __future__ import annotations

import socket
import subprocess
import sys

import msgspec
import pytest
import zmq
from conftest import fast_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realm import protocol
from realm.config import OracleConfig
from realm.oracle.client import OracleClient, OracleUnreachable
from realm.oracle.worker import OracleWorker
from realm.protocol import PauseRequest, PingRequest, Pong
from realm.security import SecurityError, init_keys, is_loopback
from tests.oracle.conftest import add_checkpoint, oracle_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_keys_init_writes_private_secrets_and_keeps_them(tmp_path):
    folder = tmp_path / "keys"
    public = init_keys(folder)
    assert {len(key) for key in public.values()} == {40}
    assert folder.stat().st_mode & 0o777 == 0o700
    for name in ("node.key_secret", "client.key_secret"):
        assert (folder / name).stat().st_mode & 0o777 == 0o600
    assert init_keys(folder) == public  # idempotent
    assert init_keys(folder, force=True) != public


def test_loopback_rules():
    assert is_loopback("ipc:///tmp/x") and is_loopback("tcp://127.0.0.1:5555") and is_loopback("tcp://localhost:1")
    assert is_loopback("tcp://[::1]:5555")
    for exposed in ("tcp://*:5555", "tcp://0.0.0.0:5555", "tcp://192.168.1.10:5555", "tcp://eth0:5555"):
        assert not is_loopback(exposed)


def test_a_node_refuses_to_listen_beyond_loopback_without_keys(tmp_path):
    port = free_port()
    exposed = msgspec.structs.replace(
        oracle_config(), oracle=OracleConfig(control=f"tcp://0.0.0.0:{port}", pub=f"tcp://0.0.0.0:{port + 1}")
    )
    with pytest.raises(SecurityError, match="refusing to listen on tcp://0.0.0.0"):
        OracleWorker(exposed, tmp_path / "home").run()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "realm.cli",
            "doctor",
            "--home",
            str(tmp_path / "home"),
            "--config",
            str(_yaml(tmp_path, port)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "realm keys init" in result.stdout


def _yaml(tmp_path, port):
    path = tmp_path / "exposed.yaml"
    path.write_text(f"oracle:\n  control: tcp://0.0.0.0:{port}\nbus:\n  timeout_s: 0.3\n  heartbeat_s: 0.2\n")
    return path


def test_curve_admits_listed_clients_and_strangers_get_nothing(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 1)
    add_checkpoint(home, 2)
    public = init_keys(home / "keys")
    (home / "hosts.yaml").write_text(
        "nodes:\n"
        f"  - {{name: local, roles: [trainer, oracle], public_key: '{public['node']}'}}\n"
        f"clients:\n  - {{name: me, public_key: '{public['client']}'}}\n"
    )
    port = free_port()
    config = msgspec.structs.replace(
        oracle_config(load_on_start="1"),
        oracle=OracleConfig(
            threads=1, load_on_start="1", control=f"tcp://127.0.0.1:{port}", pub=f"tcp://127.0.0.1:{port + 1}"
        ),
    )
    oracle = oracle_factory(config, home=home)
    oracle.wait_serving(1)

    from realm.hosts import connect_oracle

    _, control, setup = connect_oracle(config, home)
    assert setup is not None
    friend = OracleClient(control, timeout_s=2.0, socket_setup=setup)
    assert isinstance(friend.ping(), Pong)

    stranger_public, stranger_secret = zmq.curve_keypair()

    def stranger(sock):
        sock.curve_publickey, sock.curve_secretkey = stranger_public, stranger_secret
        sock.curve_serverkey = public["node"].encode()

    for setup_other in (stranger, None):  # an unknown key, and no CURVE at all
        other = OracleClient(control, timeout_s=0.5, retries=0, socket_setup=setup_other)
        with pytest.raises(OracleUnreachable):
            other.promote("2")
        with pytest.raises(OracleUnreachable):
            other.snapshot()
    assert oracle.state.serving.step == 1  # no command got through
    assert friend.promote("2").serving.step == 2


def _dealer(endpoint):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def _survives(endpoint, family_decoder):
    """Send a ping on a fresh socket; the node must still answer."""
    with _dealer(endpoint) as sock:
        sock.send_multipart([b"", protocol.encode(PingRequest())])
        assert sock.poll(10_000), "the node stopped answering"
        return family_decoder(sock.recv_multipart()[-1])


UNKNOWN_TAGS = st.builds(
    lambda tag, extra: msgspec.msgpack.encode({"type": tag, **extra}),
    st.text(max_size=20),
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=8), st.binary(max_size=8)),
        max_size=3,
    ),
)
JUNK = st.one_of(st.binary(max_size=512), UNKNOWN_TAGS)


def _fuzz(endpoint):
    sock = _dealer(endpoint)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(JUNK)
    def junk_gets_an_error_or_a_reply(frame):
        sock.send_multipart([b"", frame])
        assert sock.poll(10_000), "no answer to a junk frame"
        protocol.decode_oracle_reply(sock.recv_multipart()[-1])  # whatever it is, it decodes

    try:
        junk_gets_an_error_or_a_reply()
        sock.send_multipart([b"", b"\x00" * (4 * 2**20 + 4096)])  # over bus.max_message_bytes: dropped
        assert not sock.poll(500)
    finally:
        sock.close(linger=0)


def test_fuzzed_frames_never_crash_the_oracle(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 1)
    oracle = oracle_factory(home=home)
    oracle.wait_serving(1)
    _fuzz(oracle.control)
    assert isinstance(_survives(oracle.control, protocol.decode_oracle_reply), Pong)
    assert oracle.worker.bad_requests > 100
    assert oracle.client.chat([{"role": "user", "content": "hi"}], protocol.Sampling(max_new_tokens=3))[1].tokens == 3


def test_fuzzed_frames_never_crash_the_trainer(trainer_factory):
    trainer = trainer_factory(fast_config()).start()
    trainer.client.request(PauseRequest())
    _fuzz(trainer.control)
    assert isinstance(_survives(trainer.control, protocol.decode_reply), Pong)
    assert trainer.daemon.server.bad_requests > 100
    assert trainer.client.snapshot().run == trainer.daemon.run_id


def test_doctor_checks_every_node_and_says_what_to_fix(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 1)
    oracle = oracle_factory(home=home)
    oracle.wait_serving(1)
    init_keys(home / "keys")
    (home / "keys" / "client.key_secret").chmod(0o644)
    config = tmp_path / "doctor.yaml"
    config.write_text("bus:\n  timeout_s: 0.5\n")
    result = subprocess.run(
        [sys.executable, "-m", "realm.cli", "doctor", "--json", "--home", str(home), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    checks = {c["name"]: c for c in __import__("json").loads(result.stdout)}
    assert checks["local oracle"]["ok"] and "protocol v1" in checks["local oracle"]["detail"]
    assert checks["local oracle clock"]["ok"] and checks["local oracle heartbeat"]["ok"]
    assert not checks["local trainer"]["ok"] and "realm trainer" in checks["local trainer"]["fix"]
    assert not checks["key client.key_secret"]["ok"] and "chmod 600" in checks["key client.key_secret"]["fix"]
    assert checks["disk"]["ok"] and checks["gpus"]["ok"] and checks["key node.key_secret"]["ok"]
