"""Keys rebound from the config: ``tui.keys`` maps a binding id to the keys that fire it.

    tui:
      keys:
        battle.pause: p,space     # pause on p as well as space
        app.quit: ctrl+q          # quit on ctrl+q instead of q

Every binding in the app and its screens has an id (``screen.hero``, ``vault.promote``, ...);
``realm tui --keys`` lists them. An unknown id is a config error, found before the app starts.
"""

from __future__ import annotations

import importlib

from textual.binding import Binding
from textual.screen import Screen

from realm.config import ConfigError


def _screen_classes() -> list[type]:
    importlib.import_module("realm.tui.app")  # importing the app imports every screen

    found, todo = [], [Screen]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("realm.tui"):
            found.append(cls)
    return found


def bindings() -> dict[str, Binding]:
    """Every binding with an id, in the app and its screens, by id."""
    from realm.tui.app import RealmApp

    out: dict[str, Binding] = {}
    for owner in (RealmApp, *_screen_classes()):
        for binding in owner.__dict__.get("BINDINGS", ()):
            if isinstance(binding, Binding) and binding.id:
                out[binding.id] = binding
    return out


def check_keymap(keymap: dict[str, str]) -> dict[str, str]:
    """``keymap`` if every id in it names a binding and every value names keys; else a ConfigError."""
    known = bindings()
    unknown = sorted(set(keymap) - set(known))
    if unknown:
        raise ConfigError(
            f"tui.keys: no binding has the id {', '.join(map(repr, unknown))}; "
            f"the ids are: {', '.join(sorted(known))} (`realm tui --keys` lists them with their keys)"
        )
    empty = sorted(key for key, value in keymap.items() if not [k for k in value.split(",") if k.strip()])
    if empty:
        raise ConfigError(f"tui.keys: {', '.join(empty)}: give one key or several, comma-separated (e.g. p,space)")
    return keymap


def action_keys(keymap: dict[str, str]) -> dict[str, str]:
    """{action as bound: the keys shown for it} for the rebound bindings (the Help screen shows these)."""
    known = bindings()
    return {known[binding_id].action: keys.replace(",", "/") for binding_id, keys in keymap.items()}


def describe() -> str:
    """The table ``realm tui --keys`` prints: id, default key, what it does."""
    rows = [(binding_id, b.key, b.description or b.action) for binding_id, b in sorted(bindings().items())]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{binding_id:<{width}}  {key:<14} {what}" for binding_id, key, what in rows)
