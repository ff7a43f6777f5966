"""Every action in the command palette; a disabled one says why when picked."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from realm.tui.actions import HELP_ACTIONS, RealmAction


class RealmCommands(Provider):
    def _entries(self) -> list[tuple[str, str, RealmAction]]:
        """(title, what it does, action): "Vault: Promote (P)" above "Promote the selected
        checkpoint to the oracle"; a disabled one's words end with why."""
        entries = []
        for action in HELP_ACTIONS:
            if action.name == "command_palette":
                continue
            reason = self.app.why_disabled(action.name)
            title = f"{action.group}: {action.label} ({action.shown_key})" + (" (disabled)" if reason else "")
            entries.append((title, action.description + (f" — disabled: {reason}" if reason else ""), action))
        return entries

    async def _run(self, action: RealmAction) -> None:
        app = self.app
        reason = app.why_disabled(action.name)
        if reason:
            app.notify(f"{action.description}: {reason}", severity="warning", markup=False)
            return
        if action.screen and app.current_mode != action.screen:
            await app.run_action(f"show('{action.screen}')")
        namespace = "screen." if action.screen else "app."
        await app.run_action(namespace + action.action)

    async def discover(self) -> Hits:
        for text, help_text, action in self._entries():
            yield DiscoveryHit(Content(text), partial(self._run, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, action in self._entries():
            score = max(matcher.match(text), matcher.match(help_text))  # by name or by what it does
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(self._run, action), help=help_text)
