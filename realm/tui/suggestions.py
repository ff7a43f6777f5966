"""What to ask DIO: it knows only what it trained on, so the Oracle offers real eval items of the
skills in the mix at DIO's current levels (the latest round's items), rather than small talk."""

from __future__ import annotations

from itertools import chain, zip_longest

from realm.protocol import RealmState

SUGGESTIONS = 3  # rows the Oracle screen gives them at 80x24


def suggested_prompts(state: RealmState, limit: int = SUGGESTIONS) -> tuple[tuple[str, str], ...]:
    """(label like 'BIN L2', prompt) for up to ``limit`` items, taking each skill's first item in
    turn (the active skill first), then each one's second, so every skill in the mix gets a turn."""
    skills = sorted(state.skills.skills, key=lambda s: s.id != state.skills.active)
    per_skill = [
        [(f"{s.short_name or s.id} L{s.level}", " ".join(i.prompt.split())) for i in s.last_items] for s in skills
    ]
    taken = (pair for pair in chain.from_iterable(zip_longest(*per_skill)) if pair is not None)
    unique = dict.fromkeys(taken)  # a prompt shown once
    return tuple(unique)[:limit]
