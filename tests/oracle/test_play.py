"""The oracle process that `realm play` starts beside the trainer, and stops on exit."""

from __future__ import annotations

import pytest
from conftest import wait_for

from realm.cli.oracle import OracleKeeper, start_oracle, stop_oracle
from realm.config import RealmConfig, oracle_endpoints
from realm.oracle.client import OracleClient, OracleUnreachable
from realm.protocol import Sampling
from tests.oracle.conftest import add_checkpoint


def _home_with_a_checkpoint(tmp_path):
    """(home, config file): one untrained checkpoint (long answers) and a one-thread oracle."""
    home = tmp_path / "home"
    add_checkpoint(home, 3)
    config = tmp_path / "oracle.yaml"
    config.write_text("oracle:\n  threads: 1\n")
    return home, config


def _client(home) -> OracleClient:
    return OracleClient(oracle_endpoints(RealmConfig(), home)[1], timeout_s=1.0, retries=0)


def _serving(client: OracleClient):
    """What the oracle serves, with the oracle's own state; None while none answers."""
    try:
        oracle = client.snapshot().state.oracle
    except OracleUnreachable:
        return None
    return oracle if oracle.serving else None


def test_play_starts_an_oracle_process_that_serves_and_stops_cleanly(tmp_path):
    home, config = _home_with_a_checkpoint(tmp_path)
    process = start_oracle(home, config)
    try:
        client = _client(home)
        oracle = wait_for(lambda: _serving(client), timeout=120, interval=0.2, what="the oracle process to serve")
        assert oracle.serving.step == 3
    finally:
        stop_oracle(process)
    assert process.returncode == 0
    log = (home / "logs" / "oracle.log").read_text()
    assert "serving checkpoint-3-" in log and "oracle stopped" in log
    assert sorted(p.name for p in (home / "run").iterdir()) == ["oracle.lock"]  # its socket files went with it


def test_a_load_still_fetching_from_a_gone_trainer_does_not_keep_a_stopped_oracle_alive(tmp_path):
    """No vault here, so the start-up load fetches from the trainer, which never answers (the
    fetch would wait 120 s). SIGTERM still ends the oracle at once and cleanly: the loader thread
    does not hold the process open."""
    import time

    home = tmp_path / "home"
    nobody = tmp_path / "nobody"
    config = tmp_path / "oracle.yaml"
    config.write_text(
        "oracle:\n  threads: 1\n  load_on_start: latest\n"
        f"bus:\n  control: ipc://{nobody}-ctl\n  pub: ipc://{nobody}-pub\n  timeout_s: 120\n  retries: 0\n"
    )
    process = start_oracle(home, config)
    try:
        client = OracleClient(oracle_endpoints(RealmConfig(), home)[1], timeout_s=1.0, retries=0)

        def answering():
            try:
                return client.snapshot()
            except OracleUnreachable:
                return None

        wait_for(answering, timeout=120, interval=0.2, what="the oracle process to answer")
        time.sleep(0.5)  # the loader is now waiting on the trainer
    finally:
        stop_oracle(process, timeout_s=30)  # kills it (returncode -9) if it did not stop by then
    assert process.returncode == 0
    assert "oracle stopped" in (home / "logs" / "oracle.log").read_text()


def test_a_chat_whose_oracle_is_killed_mid_answer_ends_with_what_happened(tmp_path):
    """A killed oracle sends no end frame: the chat waited out its whole 120 s and then said no
    oracle had answered. Its silences ping the oracle now."""
    import signal

    home, config = _home_with_a_checkpoint(tmp_path)
    process = start_oracle(home, config)
    try:
        client = _client(home)
        wait_for(lambda: _serving(client), timeout=120, interval=0.2, what="the oracle process to serve")

        def kill(_text: str) -> None:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)

        with pytest.raises(OracleUnreachable) as gone:
            client.chat([{"role": "user", "content": "hi"}], Sampling(max_new_tokens=2048), on_delta=kill)
    finally:
        stop_oracle(process)
    assert f"the oracle at {client.endpoint} stopped answering mid-chat (" in str(gone.value)
    assert str(gone.value).endswith("is `realm oracle` still running?")


def test_play_starts_its_oracle_again_after_a_kill_and_not_after_a_clean_exit(tmp_path):
    import signal

    home, config = _home_with_a_checkpoint(tmp_path)
    keeper = OracleKeeper(home, config, check_s=0.2)
    client = _client(home)

    def serving_pid():
        oracle = _serving(client)
        return oracle.info.pid if oracle else None

    try:
        killed = wait_for(serving_pid, timeout=120, interval=0.2, what="the oracle to serve")
        keeper.process.send_signal(signal.SIGKILL)
        wait_for(lambda: serving_pid() not in (None, killed), timeout=120, interval=0.2, what="a new oracle")
        assert keeper.restarts == 1
    finally:
        keeper.stop()
    assert keeper.process.returncode == 0 and keeper.restarts == 1  # a stop is no death to restart from
    log = (home / "logs" / "oracle.log").read_text()
    assert f"realm play: the oracle exited with code {-signal.SIGKILL}; starting it again (1 of 3 restarts)" in log
