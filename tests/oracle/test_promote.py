"""Promotion: a hot swap under load, a failed load that changes nothing, promote via the trainer."""

from __future__ import annotations

import pytest
import zmq
from conftest import TrainerThread, fast_config, wait_for

from realm import protocol
from realm.home import Home
from realm.oracle.client import OracleRefused
from realm.protocol import Ack, ChatDelta, ChatEnd, ChatRequest, PauseRequest, PromoteRequest, Sampling, SuiteScore
from realm.vault import champion
from realm.vault.ledger import Ledger
from tests.oracle.conftest import add_checkpoint, oracle_config
from tests.oracle.reference import fresh_process_answers
from tests.oracle.test_worker import PROMPTS
from trainer.idle import write_idle_quest

HELLO = ({"role": "user", "content": "hello DIO"},)


def test_hot_swap_finishes_in_flight_chats_on_the_old_model_and_matches_a_fresh_process(tmp_path, oracle_factory):
    home = tmp_path / "home"
    old = add_checkpoint(home, 1, val_loss=2.0)
    new = add_checkpoint(home, 2, val_loss=3.0)
    oracle = oracle_factory(oracle_config(load_on_start="1"), home=home)
    oracle.wait_serving(1)

    with zmq.Context.instance().socket(zmq.DEALER) as sock:
        sock.connect(oracle.control)
        long_chat = ChatRequest(id="in-flight", messages=HELLO, sampling=Sampling(max_new_tokens=120))
        sock.send_multipart([b"", protocol.encode(long_chat)])
        assert isinstance(protocol.decode_oracle_reply(sock.recv_multipart()[-1]), ChatDelta)

        loaded = oracle.client.promote("2")  # loads while the old model keeps answering

        assert loaded.serving.step == 2 and loaded.serving.load_seconds > 0
        while True:
            assert sock.poll(30_000)
            reply = protocol.decode_oracle_reply(sock.recv_multipart()[-1])
            if isinstance(reply, ChatEnd):
                break
    assert reply.checkpoint == old.name, "the in-flight chat was not finished by the model it started on"
    assert reply.reason == "length" and reply.tokens == 120

    answers = [oracle.client.chat([{"role": "user", "content": p}], Sampling(max_new_tokens=16)) for p in PROMPTS]
    assert {end.checkpoint for _, end in answers} == {new.name}
    assert [text for text, _ in answers] == fresh_process_answers(new, PROMPTS, 16)
    assert oracle.state.serving.step == 2 and oracle.state.loading is None


def test_a_failed_load_keeps_the_old_model_serving_and_says_why(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 1)
    broken = add_checkpoint(home, 2)
    oracle = oracle_factory(oracle_config(load_on_start="1"), home=home)
    oracle.wait_serving(1)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")

    with pytest.raises(OracleRefused, match="could not load 2: .*the previous model keeps serving"):
        oracle.client.promote("2")
    with pytest.raises(OracleRefused, match="no checkpoint 77"):
        oracle.client.promote("77")
    assert oracle.state.serving.step == 1
    assert "no checkpoint 77" in oracle.state.last_error
    text, end = oracle.client.chat(list(HELLO), Sampling(max_new_tokens=5))
    assert end.checkpoint.startswith("checkpoint-1-") and end.tokens == 5
    assert any("could not load 2" in line.text for line in oracle.worker.publisher.state.notices)


def test_promoting_the_served_checkpoint_again_is_a_no_op(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 1)
    oracle = oracle_factory(home=home)
    first = oracle.wait_serving(1)
    again = oracle.client.promote("latest").serving
    assert again.step == 1 and again.loaded_at > first.loaded_at


def test_the_trainer_forwards_promote_and_resolves_the_champion(tmp_path, oracle_factory, trainer_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 1, val_loss=2.5, suite=SuiteScore(version="v1", loss=1.0))  # the champion: lowest suite loss
    add_checkpoint(home, 2, val_loss=1.0, suite=SuiteScore(version="v1", loss=2.5))  # its quest's val loss is no score
    oracle = oracle_factory(oracle_config(load_on_start="latest"), home=home)
    oracle.wait_serving(2)
    trainer = trainer_factory(fast_config(), home=home).start()
    trainer.client.request(PauseRequest())

    reply = trainer.client.request(PromoteRequest(ref="champion"))
    assert isinstance(reply, Ack) and "loading 1" in reply.message
    oracle.wait_serving(1)
    with pytest.raises(Exception, match="no checkpoint 55"):
        trainer.client.request(PromoteRequest(ref="55"))


def test_retention_keeps_the_checkpoint_the_oracle_serves(tmp_path, oracle_factory, trainer_factory):
    import msgspec

    from realm.config import VaultConfig

    home = tmp_path / "home"
    for step in (1, 2, 3):
        add_checkpoint(home, step)
    oracle = oracle_factory(oracle_config(load_on_start="1"), home=home)
    oracle.wait_serving(1)
    config = msgspec.structs.replace(fast_config(checkpoint_every=2), vault=VaultConfig(keep_last=1, keep_best=0))
    trainer = trainer_factory(config, home=home).start()
    wait_for(lambda: trainer.state.hero.steps >= 8, timeout=120, what="saves that apply retention")
    trainer.stop()
    kept = {int(folder.name.split("-")[1]) for folder in (home / "vault" / "checkpoints").glob("checkpoint-*")}
    assert 1 in kept and 2 not in kept, kept  # served: kept; neither served nor among the newest: gone


def test_promote_and_chat_from_the_command_line_and_the_served_checkpoint_is_kept(tmp_path, oracle_factory):
    import json
    import subprocess
    import sys

    from realm.vault.ledger import Ledger
    from realm.vault.service import DeleteRefused, delete_checkpoint

    home = tmp_path / "home"
    for step in (1, 2, 3):
        add_checkpoint(home, step)
    oracle = oracle_factory(oracle_config(load_on_start="3"), home=home)
    oracle.wait_serving(3)

    def realm(*args):
        return subprocess.run(
            [sys.executable, "-m", "realm.cli", *args, "--home", str(home)], capture_output=True, text=True, timeout=120
        )

    promoted = realm("vault", "promote", "1", "--json")
    assert promoted.returncode == 0, promoted.stderr
    assert json.loads(promoted.stdout)["step"] == 1 and oracle.state.serving.step == 1

    chat = realm("chat", "--max-new-tokens", "8", "hello there")
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.strip() and "checkpoint-1-" in chat.stderr and "8 tokens" in chat.stderr
    bad = realm("chat", "--temperature", "9", "hello")
    assert bad.returncode == 1 and "temperature must be between 0" in bad.stderr

    ledger = Ledger(home / "vault" / "realm.db")
    try:
        with pytest.raises(DeleteRefused, match="being served by the oracle"):
            delete_checkpoint(fast_config(), home, ledger, 1)
    finally:
        ledger.close()


def test_auto_promote_sends_a_champion_only_when_it_beats_the_served_one_by_the_margin(
    tmp_path, oracle_factory, trainer_factory
):
    import msgspec

    from realm.config import ChampionConfig, OracleConfig

    home = tmp_path / "home"
    add_checkpoint(home, 1)  # served first; the trainer scores it on the suite as it starts
    write_idle_quest(Home(home).validation, 32, seed=99)  # what the idle quests it trains on teach
    oracle = oracle_factory(oracle_config(load_on_start="1"), home=home)
    oracle.wait_serving(1)

    def train(margin: float) -> TrainerThread:
        config = msgspec.structs.replace(
            fast_config(checkpoint_every=12),
            oracle=OracleConfig(auto_promote=True),
            champion=ChampionConfig(margin=margin),
        )
        trainer = trainer_factory(config, max_steps=12, home=home).start()
        assert trainer.join(timeout=300) == 0
        return trainer

    held_back = train(margin=1000.0)
    wait_for(
        lambda: any("under champion.margin 1000" in line.text for line in held_back.daemon.publisher.state.notices),
        what="auto-promote to hold back a champion under the margin",
    )
    assert oracle.wait_serving(1).step == 1

    train(margin=0.02)
    ledger = Ledger(Home(home).db)
    try:
        best = champion.champion(ledger, ChampionConfig())
    finally:
        ledger.close()
    assert best.step > 13  # more training on what the suite measures beats the first run
    serving = oracle.wait_serving(best.step)
    assert serving.source == "shared"
