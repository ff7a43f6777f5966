"""A chat transcript that takes streamed chunks (the Oracle's), modelled on Elia.

``append_chunk`` grows the last answer in place; the view follows the stream only while the
reader is at the bottom, so scrolling up to reread is never yanked back down.
"""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

ROLE_STYLE = {"you": "bold $accent", "DIO": "bold $warning", "oracle": "$text-muted"}


class ChatMessage(Static):
    def __init__(self, role: str, text: str = "") -> None:
        super().__init__(classes=f"chat-{role.lower()}")
        self.role, self.text = role, text

    def on_mount(self) -> None:
        self._draw()

    def append(self, chunk: str) -> None:
        self.text += chunk
        self._draw()

    def _draw(self) -> None:
        self.update(Content.assemble((f"{self.role}: ", ROLE_STYLE.get(self.role, "bold")), self.text))


class ChatLog(VerticalScroll):
    def add_message(self, role: str, text: str = "") -> ChatMessage:
        follow = self.is_vertical_scroll_end
        message = ChatMessage(role, text)
        self.mount(message)
        if follow:
            self.call_after_refresh(self.scroll_end, animate=False)
        return message

    def append_chunk(self, chunk: str) -> None:
        messages = self.query(ChatMessage)
        if not messages:
            self.add_message("DIO", chunk)
            return
        follow = self.is_vertical_scroll_end
        messages.last().append(chunk)
        if follow:
            self.call_after_refresh(self.scroll_end, animate=False)
