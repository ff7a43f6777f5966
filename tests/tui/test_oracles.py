"""Where the app finds its oracles: the host registry, as `realm tui` and `realm play` read it."""

from __future__ import annotations

from realm.config import RealmConfig, oracle_endpoints
from realm.security import init_keys, keys_dir
from realm.tui.oracles import registry_oracles

KEY = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"  # a Z85 public key (40 characters)


def test_the_default_registry_is_this_machine_s_own_oracle(tmp_path):
    config = RealmConfig()
    [node] = registry_oracles(config, tmp_path)
    assert (node.name, node.pub, node.control) == ("local", *oracle_endpoints(config, tmp_path))
    assert node.socket_setup is None and node.problem == ""


def test_a_curve_oracle_without_a_client_key_is_listed_with_what_to_do(tmp_path):
    (tmp_path / "hosts.yaml").write_text(
        "nodes:\n"
        "  - {name: local, roles: [trainer, oracle]}\n"
        f"  - {{name: '3090', roles: [oracle], oracle: {{control: 'tcp://10.0.0.2:5557', pub: 'tcp://10.0.0.2:5558'}},"
        f" public_key: '{KEY}'}}\n",
        encoding="utf-8",
    )
    config = RealmConfig()
    local, remote = registry_oracles(config, tmp_path)
    assert local.problem == "" and remote.name == "3090" and remote.control == "tcp://10.0.0.2:5557"
    assert "realm keys init" in remote.problem and remote.socket_setup is None

    init_keys(keys_dir(config, tmp_path))  # with a client key, the remote node gets CURVE options
    _, remote = registry_oracles(config, tmp_path)
    assert remote.problem == "" and remote.socket_setup is not None
