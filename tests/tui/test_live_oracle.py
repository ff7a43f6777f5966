"""The Oracle and Watchtower screens against a real oracle worker (DIO-nano on CPU, ipc sockets).

The chat goes through the real ``OracleWorker``: streamed ``ChatDelta`` frames reach the
transcript through the screen's thread worker and its messages; ``ctrl+x`` sends a real
``CancelRequest``; the checkpoint picker makes the oracle load another ledger checkpoint.
"""

from __future__ import annotations

import pytest
from conftest import wait_for as wait_sync
from textual.widgets import Input, Select

from realm.oracle.client import OracleClient
from realm.protocol import CheckpointInfo, CheckpointSaved, Sampling
from realm.tui.actions import NOT_GENERATING
from realm.tui.app import RealmApp
from realm.tui.oracles import OracleNode
from realm.tui.screens.oracle import ChatChunk, ChatFinished
from realm.tui.widgets.chat_log import ChatMessage
from tests.oracle.conftest import add_checkpoint, oracle_config

from .conftest import HEARTBEAT_S, text_of, wait_for
from .test_app import Notes

pytestmark = pytest.mark.timeout(120)

QUESTION = "What is 5 in binary?"


def oracle_app(endpoints, oracle, readonly: bool = False, chat_max_new_tokens: int = 256) -> RealmApp:
    node = OracleNode("local", oracle.pub, oracle.control)
    return RealmApp(
        endpoints.pub,
        endpoints.control,
        heartbeat_s=HEARTBEAT_S,
        readonly=readonly,
        oracles=[node],
        chat_max_new_tokens=chat_max_new_tokens,
    )


class Stream(Notes):
    """The app's toasts, plus the chat messages the worker posted."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self.finished: list[ChatFinished] = []

    def __call__(self, message) -> None:
        super().__call__(message)
        if isinstance(message, ChatChunk):
            self.chunks.append(message.text)
        elif isinstance(message, ChatFinished):
            self.finished.append(message)


def transcript(app: RealmApp) -> list[str]:
    return [text_of(m) for m in app.screen.query(ChatMessage)]


async def ask(pilot, app: RealmApp, question: str) -> None:
    await pilot.press("6")
    await wait_for(pilot, lambda: app.why_disabled("send_chat") is None, timeout=30, what="the oracle's mirror")
    await pilot.press("enter")  # into the message box
    await wait_for(pilot, lambda: isinstance(app.focused, Input), what="the message box")
    await pilot.press(*question, "enter")


def serving_step_5(tmp_path, oracle_factory):
    """A real oracle worker serving an untrained checkpoint 5 from a fresh home."""
    home = tmp_path / "home"
    add_checkpoint(home, 5)
    oracle = oracle_factory(home=home)
    oracle.wait_serving(5)
    return oracle


async def test_a_question_streams_dio_s_answer_into_the_chat_and_ctrl_y_copies_it(tmp_path, endpoints, oracle_factory):
    oracle = serving_step_5(tmp_path, oracle_factory)
    stream = Stream()
    app = oracle_app(endpoints, oracle, readonly=True, chat_max_new_tokens=24)  # read-only may chat: it changes nothing
    async with app.run_test(size=(80, 24), message_hook=stream) as pilot:
        await ask(pilot, app, QUESTION)
        await wait_for(pilot, lambda: stream.finished, timeout=60, what="the end of the answer")
        end = stream.finished[0].end
        assert end is not None and end.reason in ("stop", "length") and "checkpoint-5-" in end.checkpoint
        lines = transcript(app)
        answer = "".join(stream.chunks)
        assert len(stream.chunks) > 1 and answer  # streamed piece by piece, not in one reply
        assert lines[0] == f"you: {QUESTION}" and lines[1] == f"DIO: {answer}"
        assert lines[2].startswith(f"oracle: {end.reason} · {end.tokens} tokens")
        expected, _ = OracleClient(oracle.control).chat(
            [{"role": "user", "content": QUESTION}], Sampling(max_new_tokens=24)
        )
        assert answer == expected  # greedy: what any client of this oracle gets
        assert app.why_disabled("toggle_pause").startswith("read-only")

        await pilot.press("ctrl+y")
        assert app.clipboard == answer
        assert stream.any("copied DIO's answer")

        await pilot.press("escape", "7")  # leave the box; number keys switch screens again
        await wait_for(pilot, lambda: "7 Watchtower" in text_of(app.screen.query_one("#status")), what="watchtower")
        panel = lambda: text_of(app.screen.query_one("#watch-oracles"))  # noqa: E731
        await wait_for(pilot, lambda: "served" in panel() and "heard" in panel(), what="the oracle's telemetry")
        assert "checkpoint-5-" in panel() and "cpu" in panel()
        assert "no NVIDIA GPU" in panel() or "GPU " in panel()  # pynvml's answer, whichever this machine has


LONG_ANSWER = 1500  # tokens: DIO-nano's positions are 2,048, prompt included


async def test_ctrl_x_stops_a_long_answer_and_quitting_drops_one(tmp_path, endpoints, oracle_factory):
    oracle = serving_step_5(tmp_path, oracle_factory)
    stream = Stream()
    # long enough that neither answer can end before ctrl+x or the quit reaches the oracle
    app = oracle_app(endpoints, oracle, chat_max_new_tokens=LONG_ANSWER)
    async with app.run_test(size=(80, 24), message_hook=stream) as pilot:
        await pilot.press("6")
        assert app.why_disabled("stop_generation") == NOT_GENERATING
        await ask(pilot, app, "Tell me a long story")
        await wait_for(pilot, lambda: stream.chunks, timeout=60, what="the first piece of the answer")
        assert app.why_disabled("stop_generation") is None
        await pilot.press("ctrl+x")
        await wait_for(pilot, lambda: stream.finished, timeout=60, what="the cancelled end")
        end = stream.finished[0].end
        assert end is not None and end.reason == "cancelled" and end.tokens < LONG_ANSWER
        await wait_for(pilot, lambda: transcript(app)[-1].startswith("oracle: cancelled"), what="the note")
        chunks_before = len(stream.chunks)
        assert app.why_disabled("stop_generation") == NOT_GENERATING
        assert isinstance(app.focused, Input)  # the box kept its text editing (ctrl+x only stops while answering)

        await pilot.press(*"Another long one", "enter")  # and quit while it streams
        await wait_for(pilot, lambda: len(stream.chunks) > chunks_before, timeout=60, what="the second answer")
    wait_sync(lambda: oracle.worker.abandoned == 1, what="the oracle to drop the answer nobody reads")


async def test_without_an_oracle_the_screen_says_what_to_run_and_chat_waits_for_one(
    tmp_path, endpoints, oracle_factory
):
    home = tmp_path / "home"
    add_checkpoint(home, 5)
    config = oracle_config()
    from realm.config import oracle_endpoints

    pub, control = oracle_endpoints(config, home)
    notes = Notes()
    app = RealmApp(
        endpoints.pub, endpoints.control, heartbeat_s=HEARTBEAT_S, oracles=[OracleNode("local", pub, control)]
    )
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await pilot.press("6")
        missing = lambda: text_of(app.screen.query_one("#oracle-missing"))  # noqa: E731
        await wait_for(pilot, lambda: "realm oracle" in missing(), what="the no-oracle panel")
        assert control in missing()
        assert app.screen.query_one("#oracle-input", Input).disabled
        assert "realm oracle" in app.why_disabled("send_chat")
        assert app.screen.active_bindings["enter"].enabled is False
        await pilot.press("enter")
        await wait_for(pilot, lambda: notes.any("realm oracle"), what="the reason, on the key")
        await pilot.press("9")
        await wait_for(pilot, lambda: "realm oracle" in text_of(app.screen.query_one("#help-text")), what="help")
        await pilot.press("7")
        await wait_for(
            pilot,
            lambda: f"waiting at {control}" in text_of(app.screen.query_one("#watch-oracles")),
            what="the waiting oracle node",
        )

        oracle_factory(config, home=home).wait_serving(5)  # the oracle comes up: the app follows it
        await pilot.press("6")
        await wait_for(pilot, lambda: app.why_disabled("send_chat") is None, timeout=30, what="chat to be enabled")
        await wait_for(pilot, lambda: not app.screen.query_one("#oracle-missing").display, what="the panel to go")
        assert not app.screen.query_one("#oracle-input", Input).disabled


async def test_the_checkpoint_picker_makes_another_ledger_checkpoint_answer(
    tmp_path, endpoints, trainer, oracle_factory
):
    home = tmp_path / "home"
    older = add_checkpoint(home, 5, seed=1)
    add_checkpoint(home, 9, seed=2)
    oracle = oracle_factory(home=home)
    oracle.wait_serving(9)
    stream = Stream()
    app = oracle_app(endpoints, oracle, chat_max_new_tokens=8)
    async with app.run_test(size=(80, 24), message_hook=stream) as pilot:
        trainer.start()
        info = CheckpointInfo(step=5, name=older.name, time=1.7e9, train_loss=3.0)
        trainer.publisher.emit(CheckpointSaved(checkpoint=info))
        await pilot.press("6")
        picker = app.screen.query_one("#oracle-checkpoint", Select)
        await wait_for(pilot, lambda: any(value == "5" for _, value in picker._options), what="the vault's checkpoint")
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: picker.expanded, what="the picker to open")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: picker.value == "5", what="checkpoint 5 picked")
        await ask(pilot, app, QUESTION)
        await wait_for(pilot, lambda: stream.finished, timeout=60, what="the answer")
        assert stream.finished[0].end.checkpoint == older.name
        assert transcript(app)[-1].endswith(older.name)


async def test_a_refused_chat_says_why_and_leaves_the_conversation_as_it_was(
    tmp_path, endpoints, trainer, oracle_factory
):
    oracle = serving_step_5(tmp_path, oracle_factory)
    stream = Stream()
    app = oracle_app(endpoints, oracle)
    async with app.run_test(size=(80, 24), message_hook=stream) as pilot:
        trainer.start()  # its vault lists a checkpoint this oracle's ledger does not have
        info = CheckpointInfo(step=99, name="checkpoint-99-20260101-1200", time=1.7e9, train_loss=3.0)
        trainer.publisher.emit(CheckpointSaved(checkpoint=info))
        await pilot.press("6")
        picker = app.screen.query_one("#oracle-checkpoint", Select)
        await wait_for(pilot, lambda: any(value == "99" for _, value in picker._options), what="the vault's checkpoint")
        picker.value = "99"
        await ask(pilot, app, QUESTION)
        await wait_for(pilot, lambda: stream.finished, timeout=60, what="the refusal")
        assert "no checkpoint 99 in the ledger" in stream.finished[0].error
        assert transcript(app)[-1].startswith("oracle: failed: ") and stream.any("no checkpoint 99")
        assert app.screen.chat.history == [] and app.why_disabled("send_chat") is None
