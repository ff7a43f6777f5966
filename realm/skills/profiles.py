"""Training profiles from the seed: discrimination quests and the emoji-think protocol.

Discrimination (task-agnostic): the user shows a problem and a proposed answer and asks
whether it is right. 40 % of items propose the right answer (the assistant says
``CORRECT``); 60 % propose a wrong one (``INCORRECT``, then the user asks for the right
answer and the assistant gives it, raw).

Emoji think: a deterministic half of examples (by a hash of the example's id) wrap the
reasoning in a thinking emoji and end with 2-4 stop emojis. The protocol, which
``check_protocol`` enforces:

* emoji mode: the reply starts with a thinking emoji and ends with a stop emoji;
* direct mode: the reply does not start with a thinking emoji (a stop emoji at the end is
  allowed);
* malformed: a thinking emoji at the start without a stop emoji at the end.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from realm.skills.base import Sample

THINKING_EMOJIS = ("🤔", "🧠", "💡", "🤨", "✨")
STOP_EMOJIS = ("🛑", "🚫", "🔴", "🔚", "✋", "🚦")
CORRECT_SHARE = 0.4
ASK_VERDICT = "Did the model answer correctly?"
ASK_FIX = "What should the answer have been?"


class ProtocolError(ValueError):
    """A reply that breaks the emoji-think protocol."""


def uses_emoji(example_id: str) -> bool:
    """The deterministic half: a stable hash of the example's id, not Python's salted hash."""
    return hashlib.blake2b(example_id.encode(), digest_size=1).digest()[0] % 2 == 0


def emoji_think(sample: Sample, rng: random.Random) -> str:
    """The sample's answer in emoji mode: thinking emoji, reasoning, the answer, stop emojis."""
    lines = sample.answer.splitlines()
    reasoning = lines[:-1] or list(sample.meta.get("steps", ())) or ["working it out"]
    think, stop = rng.choice(THINKING_EMOJIS), rng.choice(STOP_EMOJIS)
    return f"{think} " + "\n".join(reasoning) + f"\n{lines[-1]}\n" + stop * rng.randint(2, 4)


def check_protocol(reply: str) -> str:
    """``"emoji"`` or ``"direct"``; raise ``ProtocolError`` for a malformed reply."""
    text = reply.strip()
    starts = text.startswith(THINKING_EMOJIS)
    ends = text.endswith(STOP_EMOJIS)
    if starts and not ends:
        raise ProtocolError("starts with a thinking emoji but does not end with a stop emoji")
    return "emoji" if starts else "direct"


def strip_protocol(reply: str) -> str:
    """The reply without its emoji wrapping, for grading; a malformed reply raises."""
    mode = check_protocol(reply)
    text = reply.strip()
    while text.endswith(STOP_EMOJIS):
        text = _drop_stop(text)
    if mode == "emoji":
        text = text[1:].lstrip()
    return text


def _drop_stop(text: str) -> str:
    for emoji in STOP_EMOJIS:
        if text.endswith(emoji):
            return text[: -len(emoji)].rstrip()
    return text


def wrong_answer(skill: Any, sample: Sample, rng: random.Random) -> str | None:
    """A plausible wrong answer: the family's ``perturb`` if it has one, else a changed last line."""
    family = skill.family
    perturb = getattr(family, "perturb", None)
    for _ in range(20):
        candidate = perturb(sample, rng) if perturb else _mutate(sample.answer, rng)
        if candidate and not family.grade(sample, candidate).correct:
            return candidate
    return None


def _mutate(answer: str, rng: random.Random) -> str:
    lines = answer.splitlines() or [""]
    last = lines[-1]
    if not last:
        return "?"
    chars = sorted(set(last))
    i = rng.randrange(len(last))
    others = [c for c in chars if c != last[i]] or ["?"]
    return last[:i] + rng.choice(others) + last[i + 1 :]


def discrimination_chat(skill: Any, sample: Sample, rng: random.Random) -> list[dict]:
    """A discrimination item for ``sample``: CORRECT (40 %) or INCORRECT + the right answer (60 %)."""
    final = sample.answer.splitlines()[-1] if sample.answer else sample.answer
    wrong = None if rng.random() < CORRECT_SHARE else wrong_answer(skill, sample, rng)
    proposed = wrong if wrong is not None else final
    system = [{"role": "system", "content": skill.prompt.system}] if skill.prompt.system else []
    ask = f"{sample.prompt}\nProposed answer: {proposed}\n{ASK_VERDICT}"
    if wrong is None:
        return [*system, {"role": "user", "content": ask}, {"role": "assistant", "content": "CORRECT"}]
    return [
        *system,
        {"role": "user", "content": ask},
        {"role": "assistant", "content": "INCORRECT"},
        {"role": "user", "content": ASK_FIX},
        {"role": "assistant", "content": final},
    ]
