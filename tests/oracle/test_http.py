"""The oracle's OpenAI-compatible HTTP front, driven by the official ``openai`` client against a
real oracle serving a real checkpoint: the same answers as the ZeroMQ chat, streaming and not."""

from __future__ import annotations

import http.client
import json

import openai
import pytest
from conftest import wait_for

from realm.config import ConfigError, HttpConfig, config_from
from realm.oracle.http import StopFilter
from realm.protocol import Sampling
from tests.oracle.conftest import add_checkpoint, oracle_config

TOKEN = "s3cret-token-for-tests"
HELLO = [{"role": "user", "content": "hello DIO"}]


@pytest.fixture
def served(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 10)
    latest = add_checkpoint(home, 20)
    config = oracle_config(http=HttpConfig(bind="127.0.0.1:0", token=TOKEN))
    oracle = oracle_factory(config, home=home)
    oracle.wait_serving(20)
    client = openai.OpenAI(base_url=oracle.worker.http.url, api_key=TOKEN, max_retries=0, timeout=60)
    return oracle, client, latest.name


def test_models_lists_the_served_checkpoint_and_the_vault(served):
    oracle, client, latest = served
    ids = [model.id for model in client.models.list()]
    assert ids[:2] == ["dio", latest] and "checkpoint-10" in ids[2]


def test_a_completion_is_the_answer_the_zeromq_chat_gives(served):
    oracle, client, latest = served
    zmq_text, zmq_end = oracle.client.chat(HELLO, Sampling(max_new_tokens=12))
    reply = client.chat.completions.create(model="dio", messages=HELLO, max_tokens=12, temperature=0)
    assert reply.choices[0].message.content == zmq_text and reply.choices[0].finish_reason == "length"
    assert reply.model == latest == zmq_end.checkpoint
    assert reply.usage.completion_tokens == 12 and reply.usage.prompt_tokens > 0


def test_a_stream_sends_the_same_text_in_pieces_then_a_finish_reason(served):
    oracle, client, _ = served
    whole = client.chat.completions.create(model="dio", messages=HELLO, max_tokens=16, temperature=0)
    chunks = list(
        client.chat.completions.create(model="dio", messages=HELLO, max_tokens=16, temperature=0, stream=True)
    )
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(pieces) >= 2, "the answer came in one piece, not streamed"
    assert "".join(pieces) == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == "length"


def test_a_stop_sequence_cuts_the_answer_before_it(served):
    _, client, _ = served
    full = client.chat.completions.create(model="dio", messages=HELLO, max_tokens=24, temperature=0)
    text = full.choices[0].message.content
    stop = text[5:8]
    cut = client.chat.completions.create(model="dio", messages=HELLO, max_tokens=24, temperature=0, stop=[stop])
    assert cut.choices[0].message.content == text[: text.index(stop)] and cut.choices[0].finish_reason == "stop"
    streamed = client.chat.completions.create(
        model="dio", messages=HELLO, max_tokens=24, temperature=0, stop=stop, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == text[: text.index(stop)]


def test_a_vault_checkpoint_answers_by_name(served):
    oracle, client, _ = served
    guest = [m.id for m in client.models.list() if m.id.startswith("checkpoint-10")][0]
    reply = client.chat.completions.create(model=guest, messages=HELLO, max_tokens=8, temperature=0)
    assert reply.model == guest


REFUSED = "a valid bearer token is required (oracle.http.token)"


def test_a_wrong_or_missing_token_is_refused(served):
    oracle, _, _ = served
    client = openai.OpenAI(base_url=oracle.worker.http.url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="dio", messages=HELLO, max_tokens=4)
    assert refused.value.body["message"] == REFUSED
    status, body = _post(oracle, json.dumps({"messages": HELLO}).encode(), token=None)
    assert (status, body["error"]["message"]) == (401, REFUSED)


def _post(oracle, body: bytes, token: str | None = TOKEN) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", oracle.worker.http.port, timeout=30)
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    connection.request("POST", "/v1/chat/completions", body=body, headers=headers)
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_malformed_bodies_get_openai_shaped_errors_and_the_oracle_serves_on(served):
    oracle, client, _ = served
    status, body = _post(oracle, b"{not json")
    assert status == 400 and body["error"]["message"].startswith("the request body is not JSON: ")
    assert set(body["error"]) == {"message", "type", "param", "code"}
    status, body = _post(oracle, json.dumps({"messages": "hello"}).encode())
    assert status == 400 and body["error"]["message"].startswith("invalid request body: ")
    status, body = _post(oracle, json.dumps({"messages": HELLO, "n": 3}).encode())
    assert (status, body["error"]["param"]) == (400, "n")
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="dio", messages=HELLO, temperature=9.5)
    assert refused.value.body["message"].startswith("bad sampling parameters: ")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="dio", messages=[{"role": "wizard", "content": "hi"}])
    assert client.chat.completions.create(model="dio", messages=HELLO, max_tokens=4).usage.completion_tokens == 4


def test_a_client_gone_mid_stream_frees_its_place_in_the_batch(served):
    oracle, client, _ = served
    batcher = oracle.worker.batcher
    cancelled = []
    cancel = batcher.cancel
    batcher.cancel = lambda key: cancelled.append((key, cancel(key))) or cancelled[-1][1]
    stream = client.chat.completions.create(model="dio", messages=HELLO, max_tokens=500, temperature=0, stream=True)
    for _, _ in zip(range(3), stream):
        pass
    stream.close()  # hang up mid-answer
    wait_for(lambda: cancelled, timeout=30, what="the oracle to hear the client left")
    assert cancelled[0][0].startswith(b"chatcmpl-") and cancelled[0][1], "cancelled while it was still running"
    wait_for(lambda: batcher.counts() == (0, 0), timeout=30, what="the abandoned chat to leave the batch")
    reply = client.chat.completions.create(model="dio", messages=HELLO, max_tokens=4)
    assert reply.usage.completion_tokens == 4


def test_the_stop_filter_holds_back_what_may_begin_a_stop_sequence():
    stops = StopFilter(("END",))
    assert stops.feed("abc E") == "abc " and stops.feed("N") == "" and stops.feed("x") == "ENx"
    assert stops.feed("yyEND and more") == "yy" and stops.stopped and stops.feed("more") == ""
    assert StopFilter(("zz",)).flush() == ""


def test_serving_beyond_loopback_needs_a_token():
    with pytest.raises(ConfigError) as refused:
        config_from({"oracle": {"http": {"bind": "0.0.0.0:8000"}}})
    assert str(refused.value).startswith("oracle.http.token: is required to serve beyond loopback (0.0.0.0:8000)")
    with pytest.raises(ConfigError, match="oracle.http.bind: is host:port"):
        config_from({"oracle": {"http": {"bind": "8000"}}})
    assert config_from({"oracle": {"http": {"bind": "0.0.0.0:8000", "token": TOKEN}}}).oracle.http.token == TOKEN
