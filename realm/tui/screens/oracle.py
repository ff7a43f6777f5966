"""The Oracle: chat with a checkpoint on an inference node, streamed, with stop and copy.

The app follows each oracle node of the host registry with its own mirror (realm.tui.oracles);
``oracle_model`` reads what the picked node reports. A chat runs in a thread worker through
``OracleClient.chat``; each streamed piece comes back as a ``ChatChunk`` message and the
handlers here own the transcript (the worker never touches a widget). ``ctrl+x`` sends
``CancelRequest`` for the answer in flight; ``ctrl+y`` copies the last answer; ``ctrl+l`` clears
the conversation; ``ctrl+t`` puts a suggested prompt (realm.tui.suggestions) in the box; ``ctrl+f``
cycles what the oracle follows (realm.tui.oracle_follow, the app sends the promote). The screen owns
the ``Chat``; the app reads it (``generating``, ``answered``) for the keys' reasons.

Keys: the number keys switch screens as everywhere, so the message box is entered with
``enter`` (or by clicking it) and left with ``esc``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Select, Static
from textual.worker import get_current_worker

from realm.protocol import ChatEnd, OracleState, Sampling
from realm.tui import format as fmt
from realm.tui.actions import bindings_for
from realm.tui.format import bin_text, bin_typed
from realm.tui.oracle_follow import FOLLOW_WORDS
from realm.tui.oracles import NO_ORACLE_HINT, OracleNode
from realm.tui.screens.base import RealmScreen
from realm.tui.suggestions import suggested_prompts
from realm.tui.view import RealmView
from realm.tui.widgets.chat_log import ChatLog

SERVED = ""  # the checkpoint reference that means "whatever the oracle serves"
SERVED_LABEL = "the served checkpoint"
CHAT_TIMEOUT_S = 2.0  # the ping before a chat, and a cancel
NO_NODE = -1


@dataclass(frozen=True)
class OracleModel:
    missing: str | None  # why chat cannot go anywhere now (the panel says what to run)
    status: Content  # one row: node, served checkpoint, tokens/s, sessions, GPU
    checkpoints: tuple[tuple[str, str], ...]  # (label, ledger reference), served first
    nodes: tuple[tuple[str, int], ...]  # (label, index into view.oracles)


ASK_HINT = "enter: ask DIO something · esc: leave the box"
TRY_HINT = "enter: ask DIO · ctrl+t: try a suggestion above · esc: leave the box"


def suggestions_text(suggestions: tuple[tuple[str, str], ...], glyphs: str = "circled") -> Content:
    """The suggested prompts, one a row: 'try ctrl+t  BIN L1  Convert 5 to binary.'."""
    width = max(len(label) for label, _ in suggestions)
    rows = [
        Content.assemble(
            ("try ctrl+t  " if i == 0 else " " * 12, "$text-muted"),
            (f"{label:<{width}}  ", "bold $accent"),
            bin_text(prompt, glyphs),
        )
        for i, (label, prompt) in enumerate(suggestions)
    ]
    return Content("\n").join(rows)


def serving_text(oracle: OracleState) -> str:
    if oracle.loading:
        return f"loading {oracle.loading}"
    return oracle.serving.name if oracle.serving else "nothing served"


def gpu_text(oracle: OracleState) -> str:
    if not oracle.gpus:
        return oracle.gpu_note or "no GPU reported"
    more = f" +{len(oracle.gpus) - 1}" if len(oracle.gpus) > 1 else ""
    gpu = oracle.gpus[0]
    return f"GPU {gpu.utilization:.0f}% {fmt.gpu_memory(gpu)}{more}"


def oracle_model(view: RealmView) -> OracleModel:
    oracle = view.oracle
    nodes = tuple((o.name, i) for i, o in enumerate(view.oracles))
    checkpoints = ((SERVED_LABEL, SERVED), *((c.name, str(c.step)) for c in reversed(view.state.vault.checkpoints)))
    if oracle is None:
        return OracleModel(
            f"no oracle node is known; {NO_ORACLE_HINT}",
            Content("no oracle node"),
            checkpoints,
            ((("no oracle node", NO_NODE)),),
        )
    if oracle.unreachable:
        status = Content.assemble(oracle.name, (" · waiting for the oracle", "$warning"))
        return OracleModel(oracle.unreachable, status, checkpoints, nodes)
    o = oracle.state
    dot = (" · ", "$text-muted")
    status = Content.assemble(oracle.name, dot, serving_text(o), dot, load_text(o), dot, gpu_text(o))
    return OracleModel(None, status, checkpoints, nodes)


def load_text(o) -> str:
    """What the oracle does now: its rate over the last seconds and its chats answering+waiting, or
    idle (a rate of 0 and 0+0 chats read like nothing ever served), with what it has served."""
    if o.active or o.queued or o.tokens_per_s:
        return f"{o.tokens_per_s:,.0f} tok/s · {o.active}+{o.queued} chats"
    return f"idle · {o.served:,} served"


@dataclass
class Chat:
    """The talk with DIO: the conversation sent with each message, and the answer streaming now."""

    history: list[dict[str, str]] = field(default_factory=list)
    request_id: str | None = None  # the answer streaming now
    answer: str = ""  # the answer streaming now
    last_answer: str = ""  # the last finished one (what ctrl+y copies)

    @property
    def generating(self) -> bool:
        return self.request_id is not None

    @property
    def answered(self) -> bool:
        return bool(self.last_answer)

    def ask(self, text: str) -> str:
        """Start an answer to ``text``; its request id."""
        self.history.append({"role": "user", "content": text})
        self.request_id, self.answer = uuid.uuid4().hex, ""
        return self.request_id

    def finish(self, answered: bool) -> None:
        """The answer ended; an unanswered question is not part of the talk."""
        if answered:
            self.history.append({"role": "assistant", "content": self.answer})
            self.last_answer = self.answer or self.last_answer
        else:
            self.history.pop()
        self.request_id = None


NO_CHAT = Chat()  # what the app reads before the Oracle screen first opens


class ChatAbandoned(Exception):
    """Raised inside the chat worker when the app no longer wants the answer."""


class ChatChunk(Message, bubble=False):
    """A streamed piece of an answer (posted by the chat worker)."""

    def __init__(self, request_id: str, text: str) -> None:
        super().__init__()
        self.request_id, self.text = request_id, text


class ChatFinished(Message, bubble=False):
    """The answer ended (``end``), or failed (``error``)."""

    def __init__(self, request_id: str, end: ChatEnd | None, error: str = "") -> None:
        super().__init__()
        self.request_id, self.end, self.error = request_id, end, error


def end_note(end: ChatEnd) -> str:
    speed = f" · {end.tokens / end.seconds:,.0f} tok/s" if end.seconds > 0 else ""
    by = f" · {end.checkpoint}" if end.checkpoint else ""
    return f"{end.reason} · {end.tokens} tokens · {end.seconds:.1f}s{speed}{by}"


class OracleScreen(RealmScreen):
    SCREEN_NAME = "6 Oracle"
    AUTO_FOCUS = "#oracle-chat"
    BINDINGS = bindings_for("oracle")

    def __init__(self) -> None:
        super().__init__()
        self.chat = Chat()
        self._options: tuple = ()
        self._suggestions: tuple[tuple[str, str], ...] = ()
        self._tried = -1  # the suggestion ctrl+t put in the box last
        self._from_suggestion = ""  # its prompt as DIO saw it, while the box holds it (drawn per tui.bin_glyphs)

    def compose_body(self) -> ComposeResult:
        yield Static(id="oracle-missing", classes="missing")
        with Horizontal(id="oracle-pickers"):
            yield Select([(SERVED_LABEL, SERVED)], value=SERVED, allow_blank=False, id="oracle-checkpoint")
            yield Select([("no oracle node", NO_NODE)], value=NO_NODE, allow_blank=False, id="oracle-node")
        yield Static(id="oracle-status")
        yield Static(id="oracle-suggest")
        yield ChatLog(id="oracle-chat")
        yield Input(placeholder=ASK_HINT, id="oracle-input")

    def on_mount(self) -> None:
        self.query_one("#oracle-chat").border_title = "Chat (enter to type, ctrl+x stops, ctrl+y copies)"

    def show_body(self, view: RealmView) -> None:
        model = oracle_model(view)
        missing = self.query_one("#oracle-missing", Static)
        missing.display = model.missing is not None
        if model.missing:
            missing.update(Content.assemble(("no oracle to chat with: ", "bold $warning"), model.missing))
        self.set_row("#oracle-status", model.status)
        self._set_options(model, view.oracle_index)
        self._suggestions = suggested_prompts(view.state)
        suggest = self.query_one("#oracle-suggest", Static)
        suggest.display = bool(self._suggestions)
        if self._suggestions:
            suggest.update(suggestions_text(self._suggestions, self.app.bin_glyphs))
        self.query_one(ChatLog).border_subtitle = f"{FOLLOW_WORDS[self.app.follow.mode]} · ctrl+f"
        box = self.query_one("#oracle-input", Input)
        box.disabled = model.missing is not None
        box.placeholder = "no oracle" if box.disabled else (TRY_HINT if self._suggestions else ASK_HINT)

    def _set_options(self, model: OracleModel, index: int) -> None:
        if (model.checkpoints, model.nodes) == self._options:
            return
        self._options = (model.checkpoints, model.nodes)
        for select, options, keep in (
            (self.query_one("#oracle-checkpoint", Select), model.checkpoints, None),
            (self.query_one("#oracle-node", Select), model.nodes, index if model.nodes[0][1] != NO_NODE else None),
        ):
            wanted = keep if keep is not None else select.value
            select.set_options(options)
            if any(value == wanted for _, value in options):
                select.value = wanted

    # ------------------------------------------------------------------ sending and streaming

    def action_send_chat(self) -> None:
        """``enter`` outside the box: into the box (inside it, ``enter`` sends)."""
        self.query_one("#oracle-input", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        reason = self.app.why_disabled("send_chat")
        link = self.app.oracles.picked()
        if reason or link is None:
            self.notify(f"not sent: {reason}", severity="warning", markup=False)
            return
        text = bin_typed(text, self._from_suggestion, self.app.bin_glyphs) if self._from_suggestion else text
        event.input.value = ""
        log = self.query_one(ChatLog)
        log.add_message("you", bin_text(text, self.app.bin_glyphs))
        log.add_message("DIO")
        request_id = self.chat.ask(text)
        checkpoint = self.query_one("#oracle-checkpoint", Select).value
        self.app.refresh_now()
        self._stream(link.node, list(self.chat.history), str(checkpoint), request_id)

    @work(thread=True, group="chat", name="chat")
    def _stream(self, node: OracleNode, messages: list[dict], checkpoint: str, request_id: str) -> None:
        from realm.oracle.client import OracleClient

        worker = get_current_worker()

        def deliver(piece: str) -> None:
            if worker.is_cancelled:  # the app is closing: drop the stream, the oracle sees us gone
                raise ChatAbandoned
            self.post_message(ChatChunk(request_id, piece))

        client = OracleClient(node.control, timeout_s=CHAT_TIMEOUT_S, socket_setup=node.socket_setup)
        try:
            sampling = Sampling(max_new_tokens=self.app.chat_max_new_tokens)
            _, end = client.chat(messages, sampling, checkpoint=checkpoint, request_id=request_id, on_delta=deliver)
        except ChatAbandoned:
            return
        except Exception as exc:  # unreachable, refused, a reply we cannot read: said, not raised
            self.post_message(ChatFinished(request_id, None, str(exc)))
            return
        self.post_message(ChatFinished(request_id, end))

    def on_chat_chunk(self, message: ChatChunk) -> None:
        if message.request_id == self.chat.request_id:
            self.chat.answer += message.text
            self.query_one(ChatLog).append_chunk(bin_text(message.text, self.app.bin_glyphs))

    def on_chat_finished(self, message: ChatFinished) -> None:
        if message.request_id != self.chat.request_id:
            return
        log = self.query_one(ChatLog)
        if message.end is None:
            log.add_message("oracle", f"failed: {message.error}")
            self.notify(message.error, title="Chat failed", severity="error", markup=False)
        else:
            log.add_message("oracle", end_note(message.end))
        self.chat.finish(answered=message.end is not None)
        self.app.refresh_now()

    # ------------------------------------------------------------------ stop, copy, pick

    def action_stop_generation(self) -> None:
        link = self.app.oracles.picked()
        if self.chat.request_id is not None and link is not None:
            self._cancel(link.node, self.chat.request_id)

    @work(thread=True, group="cancel", name="cancel")
    def _cancel(self, node: OracleNode, request_id: str) -> None:
        from realm.oracle.client import OracleClient

        try:
            OracleClient(node.control, timeout_s=CHAT_TIMEOUT_S, socket_setup=node.socket_setup).cancel(request_id)
        except Exception as exc:
            self.app.call_from_thread(self.notify, f"stop: {exc}", severity="error", markup=False)

    def action_copy_answer(self) -> None:
        self.app.copy_to_clipboard(self.chat.last_answer)
        self.notify(f"copied DIO's answer ({len(self.chat.last_answer)} characters)", markup=False)

    def action_clear_chat(self) -> None:
        """A fresh conversation: DIO is sent only what follows."""
        self.chat = Chat()
        self.query_one(ChatLog).remove_children()
        self.app.refresh_now()
        self.notify("conversation cleared", markup=False)

    def action_try_suggestion(self) -> None:
        """The next suggested prompt into the box, to send as is or edit."""
        if not self._suggestions:
            return
        self._tried = (self._tried + 1) % len(self._suggestions)
        box = self.query_one("#oracle-input", Input)
        self._from_suggestion = self._suggestions[self._tried][1]
        box.value = bin_text(self._from_suggestion, self.app.bin_glyphs)
        if not box.disabled:
            box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if not event.input.value:  # emptied (or sent): what the player types next is theirs alone
            self._from_suggestion = ""

    def action_cycle_follow(self) -> None:
        self.app.cycle_follow()
        self.app.refresh_now()
        self.query_one(ChatLog).border_subtitle = f"{FOLLOW_WORDS[self.app.follow.mode]} · ctrl+f"

    def action_pick_checkpoint(self) -> None:
        self._open("#oracle-checkpoint")

    def action_pick_node(self) -> None:
        self._open("#oracle-node")

    def _open(self, selector: str) -> None:
        select = self.query_one(selector, Select)
        select.focus()
        select.expanded = True

    def on_select_changed(self, event: Select.Changed) -> None:
        """A pick by the player; the repaint's option updates and the first value are not picks."""
        if not event.select.has_focus_within:
            return
        if event.select.id == "oracle-node" and isinstance(event.value, int) and event.value != NO_NODE:
            self.app.select_oracle(event.value)
        box = self.query_one("#oracle-input", Input)
        if not box.disabled:
            box.focus()  # picked: back to asking

    async def action_leave_input_or_back(self) -> None:
        if isinstance(self.focused, Input):
            self.query_one(ChatLog).focus()
        else:
            await self.app.action_back()
