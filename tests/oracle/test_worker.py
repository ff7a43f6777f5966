"""The oracle worker for real: DIO-nano checkpoints, ZeroMQ sockets, streamed chat, hot swap."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
import zmq
from conftest import wait_for

from realm import protocol
from realm.home import HomeBusy
from realm.oracle.client import OracleClient, OracleRefused, OracleUnreachable
from realm.protocol import ChatDelta, ChatEnd, ChatRequest, ErrorReply, Sampling
from tests.oracle.conftest import add_checkpoint, oracle_config
from tests.oracle.reference import generate_answers

PROMPTS = ["reverse apple", "2+2=", "tell me a story about a dragon"]
HELLO = [{"role": "user", "content": "hello DIO"}]


def ask(client: OracleClient, text: str, n: int = 24, **kwargs):
    return client.chat([{"role": "user", "content": text}], Sampling(max_new_tokens=n), **kwargs)


def test_serves_the_latest_checkpoint_and_streams_a_chat(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 10)
    latest = add_checkpoint(home, 20)
    oracle = oracle_factory(home=home)
    serving = oracle.wait_serving(20)
    assert serving.source == "shared" and serving.name == latest.name

    deltas: list[str] = []
    text, end = oracle.client.chat(HELLO, Sampling(max_new_tokens=16), on_delta=deltas.append, request_id="r-1")
    assert end.id == "r-1" and end.checkpoint == latest.name
    assert len(deltas) >= 2, "the answer came in one piece, not streamed"
    assert text == "".join(deltas) and text
    assert end.tokens == 16 and end.reason == "length"
    assert oracle.state.info.node == "local" and oracle.state.gpu_note == "no NVIDIA GPU"


def test_greedy_answers_equal_a_fresh_process_and_batching_changes_nothing(tmp_path, oracle_factory):
    home = tmp_path / "home"
    folder = add_checkpoint(home, 7)
    oracle = oracle_factory(home=home)
    oracle.wait_serving(7)
    expected = generate_answers(folder, PROMPTS, 20)

    alone = [ask(oracle.client, prompt, 20)[0] for prompt in PROMPTS]
    together: dict[int, str] = {}

    def run(index: int) -> None:
        client = OracleClient(oracle.control)
        together[index] = ask(client, PROMPTS[index % len(PROMPTS)], 20)[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert alone == expected
    assert [together[i] for i in range(8)] == [expected[i % len(PROMPTS)] for i in range(8)]


def test_bad_requests_get_clear_errors_and_the_oracle_keeps_serving(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 3)
    oracle = oracle_factory(home=home)
    oracle.wait_serving(3)
    client = oracle.client
    with pytest.raises(OracleRefused, match="temperature must be between 0"):
        client.chat(HELLO, Sampling(temperature=-1.0))
    with pytest.raises(OracleRefused, match="top_p must be in"):
        client.chat(HELLO, Sampling(top_p=0.0))
    with pytest.raises(OracleRefused, match="max_new_tokens must be between 1 and 2048"):
        client.chat(HELLO, Sampling(max_new_tokens=100_000))
    with pytest.raises(OracleRefused, match="role 'wizard'"):
        client.chat([{"role": "wizard", "content": "hi"}])
    with pytest.raises(OracleRefused, match="no checkpoint 99 in the ledger"):
        client.chat(HELLO, checkpoint="99")
    assert ask(client, "still there?", 4)[1].tokens == 4


def test_chat_without_a_loaded_checkpoint_says_what_to_do(tmp_path, oracle_factory):
    oracle = oracle_factory(home=tmp_path / "empty")
    wait_for(lambda: "no trainer answered" in oracle.state.last_error, what="the failed start-up load")
    with pytest.raises(OracleRefused, match="promote one first"):
        ask(oracle.client, "hello")


def test_cancel_ends_a_stream_early(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 5)
    oracle = oracle_factory(home=home)
    oracle.wait_serving(5)
    context = zmq.Context.instance()
    with context.socket(zmq.DEALER) as sock:
        sock.connect(oracle.control)
        request = ChatRequest(id="long", messages=tuple(HELLO), sampling=Sampling(max_new_tokens=500))
        sock.send_multipart([b"", protocol.encode(request)])
        first = protocol.decode_oracle_reply(sock.recv_multipart()[-1])
        assert isinstance(first, ChatDelta) and first.id == "long"
        oracle.client.cancel("long")
        while True:
            assert sock.poll(10_000)
            reply = protocol.decode_oracle_reply(sock.recv_multipart()[-1])
            if isinstance(reply, ChatEnd):
                break
    assert reply.reason == "cancelled" and reply.tokens < 500
    with pytest.raises(OracleRefused, match="no running request"):
        oracle.client.cancel("long")


def test_a_queue_beyond_max_batch_waits_its_turn_and_everyone_is_answered(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 4)
    oracle = oracle_factory(oracle_config(max_batch=2), home=home)
    oracle.wait_serving(4)
    ends: dict[int, ChatEnd] = {}
    seen_queue = []

    def run(index: int) -> None:
        ends[index] = ask(OracleClient(oracle.control), f"question {index}", 30)[1]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        active, queued = oracle.worker.batcher.counts()
        assert active <= 2
        seen_queue.append(queued)
        threads[0].join(0.005)
    assert sorted(ends) == list(range(5)) and all(e.tokens == 30 for e in ends.values())
    assert max(seen_queue) >= 1, "nobody ever waited, so max_batch was not exercised"


def test_batch_generate_answers_every_prompt_in_order(tmp_path, oracle_factory):
    home = tmp_path / "home"
    folder = add_checkpoint(home, 6)
    oracle = oracle_factory(home=home)
    oracle.wait_serving(6)
    result = oracle.client.generate(PROMPTS, Sampling(max_new_tokens=12))
    assert list(result.texts) == generate_answers(folder, PROMPTS, 12)
    assert result.checkpoint == folder.name


def test_seeded_sampling_repeats_and_differs_from_greedy(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 8)
    oracle = oracle_factory(home=home)
    oracle.wait_serving(8)
    hot = Sampling(temperature=1.5, top_p=0.9, max_new_tokens=20, seed=42)
    first = oracle.client.chat(HELLO, hot)[0]
    assert oracle.client.chat(HELLO, hot)[0] == first
    assert oracle.client.chat(HELLO, Sampling(max_new_tokens=20))[0] != first


def test_chat_with_another_checkpoint_loads_it_as_a_guest(tmp_path, oracle_factory):
    home = tmp_path / "home"
    old = add_checkpoint(home, 1)
    add_checkpoint(home, 2)
    oracle = oracle_factory(home=home)
    oracle.wait_serving(2)
    text, end = ask(oracle.client, PROMPTS[0], 16, checkpoint="1")
    assert end.checkpoint == old.name
    assert text == generate_answers(old, PROMPTS[:1], 16)[0]
    assert oracle.state.serving.step == 2  # the served one did not change


def test_a_dead_oracle_endpoint_fails_fast(tmp_path):
    client = OracleClient(f"ipc://{tmp_path}/nothing", timeout_s=0.2, retries=1)
    with pytest.raises(OracleUnreachable, match="no oracle answered"):
        ask(client, "anyone?")


def test_garbage_frames_get_errors_not_a_crash(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 2)
    oracle = oracle_factory(home=home)
    oracle.wait_serving(2)
    with zmq.Context.instance().socket(zmq.DEALER) as sock:
        sock.connect(oracle.control)
        for frame in (b"", b"\xff\x00junk", protocol.encode(protocol.PauseRequest())):
            sock.send_multipart([b"", frame])
            reply = protocol.decode_oracle_reply(sock.recv_multipart()[-1])
            assert isinstance(reply, ErrorReply) and "invalid oracle request" in reply.message
    assert oracle.worker.bad_requests == 3
    assert ask(oracle.client, "fine?", 3)[1].tokens == 3


def test_an_oracle_on_an_empty_vault_serves_the_first_checkpoint_when_it_appears(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 1)  # the ledger exists: the same home as the trainer
    from realm.home import Home
    from realm.vault.ledger import Ledger

    ledger = Ledger(Home(home).db)
    ledger.mark_deleted(1)
    ledger.close()
    oracle = oracle_factory(home=home)
    wait_for(lambda: "vault is empty" in oracle.state.last_error, what="the empty-vault note")
    add_checkpoint(home, 2)
    oracle.wait_serving(2)

    from realm.protocol import UnloadRequest

    assert "unloaded" in oracle.client.request(UnloadRequest()).message
    with pytest.raises(OracleRefused, match="promote one first"):
        ask(oracle.client, "hello")
    assert oracle.client.promote("2").serving.step == 2


def test_a_chat_whose_requester_goes_away_is_cancelled(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 5)
    oracle = oracle_factory(home=home)
    oracle.wait_serving(5)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(oracle.control)
    request = ChatRequest(id="gone", messages=tuple(HELLO), sampling=Sampling(max_new_tokens=500))
    sock.send_multipart([b"", protocol.encode(request)])
    assert isinstance(protocol.decode_oracle_reply(sock.recv_multipart()[-1]), ChatDelta)
    sock.close(linger=0)
    wait_for(lambda: oracle.worker.abandoned == 1, what="the chat to be abandoned")
    wait_for(lambda: oracle.worker.batcher.counts() == (0, 0), what="the slot to free up")
    assert oracle.worker.abandoned == 1  # every failed send after the first is the same chat
    assert ask(oracle.client, "next", 3)[1].tokens == 3


def test_the_vllm_backend_without_vllm_stops_the_oracle_at_start_with_what_to_do(tmp_path, capsys):
    import importlib.util

    from realm.cli.main import main

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here: the start-up error does not apply")
    config = tmp_path / "realm.yaml"
    config.write_text("oracle:\n  backend: vllm\n", encoding="utf-8")
    assert main(["oracle", "--home", str(tmp_path / "home"), "--config", str(config)]) != 0
    error = capsys.readouterr().err
    assert "oracle.backend is vllm, but vLLM is not installed" in error and "oracle.backend: native" in error


def test_a_second_oracle_on_the_same_home_is_refused_and_the_first_keeps_its_sockets(tmp_path, oracle_factory):
    home = tmp_path / "home"
    first = oracle_factory(oracle_config(load_on_start=""), home=home)
    busy = f"another oracle (pid {os.getpid()}) already runs on {home}"
    with pytest.raises(HomeBusy) as refused:
        oracle_factory(oracle_config(load_on_start=""), home=home)
    assert str(refused.value) == busy
    result = subprocess.run(
        [sys.executable, "-m", "realm.cli", "oracle", "--home", str(home)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and result.stderr.splitlines()[-1] == f"realm: {busy}"
    assert first.client.snapshot().run == first.worker.run_id  # still the first one answering


def test_a_generate_request_beyond_the_prompt_or_token_caps_is_refused_and_the_oracle_serves_on(
    tmp_path, oracle_factory
):
    home = tmp_path / "home"
    add_checkpoint(home, 3)
    oracle = oracle_factory(oracle_config(max_prompts=4, max_request_tokens=300), home=home)
    oracle.wait_serving(3)
    client = oracle.client
    with pytest.raises(
        OracleRefused,
        match=r"the request holds 20000 prompts; this oracle takes at most 4 \(oracle.max_prompts\): split it",
    ):
        client.generate(["hi"] * 20_000, Sampling(max_new_tokens=8))
    with pytest.raises(
        OracleRefused, match=r"this oracle takes at most 300 \(oracle.max_request_tokens\): send fewer prompts"
    ):
        client.generate(PROMPTS, Sampling(max_new_tokens=100))
    assert len(client.generate(PROMPTS, Sampling(max_new_tokens=8)).texts) == len(PROMPTS)
    assert ask(client, "still there?", 4)[1].tokens == 4
