"""The Oracle's chat transcript: streamed chunks grow the answer; the view follows only at the bottom."""

from __future__ import annotations

import pytest
from textual.app import App

from realm.tui.widgets.chat_log import ChatLog, ChatMessage

pytestmark = pytest.mark.timeout(60)


class ChatApp(App[None]):
    def compose(self):
        yield ChatLog()


async def test_chunks_stream_into_the_last_answer_and_scroll_follows_only_at_the_bottom():
    app = ChatApp()
    async with app.run_test(size=(60, 12)) as pilot:
        log = app.query_one(ChatLog)
        for i in range(20):
            log.add_message("you", f"question {i}")
            log.add_message("DIO", f"answer {i}")
        await pilot.pause()
        await pilot.pause()
        assert log.is_vertical_scroll_end

        for chunk in ("the ", "answer ", "is 42"):
            log.append_chunk(chunk)
            await pilot.pause()
        assert log.query(ChatMessage).last().text == "answer 19the answer is 42"
        assert log.is_vertical_scroll_end  # the reader was at the bottom: the view followed

        log.scroll_home(animate=False)
        await pilot.pause()
        log.add_message("DIO", "")
        for chunk in ("a long ", "streamed ", "reply\n" * 5):
            log.append_chunk(chunk)
            await pilot.pause()
        assert log.scroll_y == 0  # scrolled up to reread: not yanked down
        assert log.query(ChatMessage).last().text.startswith("a long streamed reply")
