"""The key bar: the screen's keys on one line, disabled ones dimmed with their reason on hover.

It shows what Textual's ``Footer`` shows, drawn as ONE widget. ``Footer`` mounts a widget per
key and rebuilds them all on every screen switch and every change of what is enabled; in
``bench/tui.py`` that was most of a key press's latency (p50 225 ms against 68 ms with no
footer, on a loaded 2-core machine)."""

from __future__ import annotations

from typing import NamedTuple

from textual import events
from textual.content import Content
from textual.widget import Widget

HELP_KEY = "question_mark"


class Span(NamedTuple):
    start: int
    end: int
    key: str
    enabled: bool
    tooltip: str


class KeyBar(Widget, can_focus=False):
    ALLOW_SELECT = False
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        width: 1fr;
        background: $footer-background;
        color: $footer-foreground;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._content = Content("")
        self.spans: list[Span] = []  # every key's place in the full line
        self._shown: list[Span] = []  # what the last render shows (cut to the width)

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self.bindings_changed(self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def bindings_changed(self, screen) -> None:
        if screen is not self.screen:
            return
        self._content, self.spans = self._layout()
        self.refresh()

    def _layout(self) -> tuple[Content, list[Span]]:
        """One entry an action (its first shown binding), in the screen's binding order."""
        seen: set[str] = set()
        parts: list[Content] = []
        spans: list[Span] = []
        x = 0
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            entry = self._entry(binding, enabled)
            hint = (tooltip or binding.description) if enabled else self._why_disabled(binding.action)
            parts.append(entry)
            spans.append(Span(x, x + entry.cell_length, binding.key, enabled, hint))
            x += entry.cell_length
        return Content("").join(parts), spans

    def _entry(self, binding, enabled: bool) -> Content:
        key = self.app.get_key_display(binding)
        return Content.assemble(
            (f" {key} ", "$footer-key-foreground bold" if enabled else "$footer-key-foreground dim"),
            (binding.description, "$footer-description-foreground" if enabled else "dim"),
            " ",
        )

    def _right_entry(self, key: str) -> tuple[Content, Span] | None:
        """The entry for ``key`` (a binding in this screen), for the right end of the bar."""
        active = self.screen.active_bindings.get(key)
        if active is None:
            return None
        entry = Content.assemble("▏", self._entry(active.binding, active.enabled))
        start = self.size.width - entry.cell_length
        return entry, Span(start + 1, self.size.width, active.binding.key, active.enabled, active.binding.description)

    def _why_disabled(self, action: str) -> str:
        why = self.app.why_disabled(action.split("(", 1)[0])
        return why or "not available now"

    def render(self) -> Content:
        """The screen's keys, then the command palette's at the right end as Footer has it; when
        the keys do not fit, they are cut and the right end shows help, which lists them all."""
        width = self.size.width
        palette = self._right_entry(self.app.COMMAND_PALETTE_BINDING) if self.app.ENABLE_COMMAND_PALETTE else None
        if palette and self._content.cell_length <= width - palette[0].cell_length:
            return self._with_right(self._content, self.spans, *palette)
        help_entry = self._right_entry(HELP_KEY)
        if self._content.cell_length <= width or help_entry is None:
            self._shown = self.spans
            return self._content
        room = width - help_entry[0].cell_length
        kept = [span for span in self.spans if span.end <= room]
        cut = kept[-1].end if kept else 0
        return self._with_right(self._content[:cut], kept, *help_entry)

    def _with_right(self, left: Content, spans: list[Span], entry: Content, span: Span) -> Content:
        self._shown = [s for s in spans if s.key != span.key] + [span]
        return Content.assemble(left, " " * (self.size.width - left.cell_length - entry.cell_length), entry)

    def span_at(self, x: int) -> Span | None:
        return next((s for s in self._shown if s.start <= x < s.end), None)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        span = self.span_at(event.x)
        self.tooltip = span.tooltip if span else None

    def on_click(self, event: events.Click) -> None:
        span = self.span_at(event.x)
        if span is None:
            return
        if span.enabled:
            self.app.simulate_key(span.key)
        else:
            self.app.bell()
