"""Keys rebound from the config: ``tui.keys`` maps a binding id to the keys that fire it.

    tui:
      keys:
        battle.pause: p,space     # pause on p as well as space
        app.quit: ctrl+q          # quit on ctrl+q instead of q

Every binding in the actions table has an id (``screen.hero``, ``vault.promote``, ...);
``realm tui --keys`` lists them. An unknown id is a config error, found before the app starts.
"""

from __future__ import annotations

from realm.config import ConfigError
from realm.tui.actions import ACTIONS, RealmAction


def bindings() -> dict[str, RealmAction]:
    """Every action with a binding of ours, by binding id."""
    return {a.id: a for a in ACTIONS if a.bound}


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


def describe() -> str:
    """The table ``realm tui --keys`` prints: id, default key, what it does."""
    rows = [(binding_id, a.key, a.label or a.action) for binding_id, a in sorted(bindings().items())]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{binding_id:<{width}}  {key:<14} {what}" for binding_id, key, what in rows)
