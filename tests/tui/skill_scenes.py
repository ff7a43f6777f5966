"""Real skills for the Skills and Vault pictures: BIN and SY as configs/skills ships them, eval
items drawn by their generators (level 4 and 6, fixed seeds) and graded by realm.skills.grading,
captured once so the pictures change only when the drawing does."""

from __future__ import annotations

from msgspec.structs import replace

from realm.protocol import (
    ConfigChanged,
    ConfigField,
    SkillEvalItem,
    SkillEvaluated,
    SkillsLoaded,
    SkillsState,
    SkillState,
)
from realm.state import apply
from realm.tui import demo

BIN = SkillState(id="bin", name="Binary Alchemy", short_name="BIN", icon="🔢", level=4, max_level=30)
SY = SkillState(id="sy", name="Word Weaving", short_name="SY", icon="🧩", level=6, max_level=50)

SY_PROMPT = (
    "Syllacrostic: join the syllable tiles into the answers to the clues; use every tile once.\n"
    "Tiles: BALL CEIVE FOOT LIKE MES PLY RE RE SAGE UN\n"
    "1. (2 syllables) a communication (usually brief) that is written or spoken or signaled\n"
    "2. (2 syllables) synonym: have\n"
    "3. (2 syllables) as in “for twins they are very ___”\n"
    "4. (2 syllables) any of various games played with a ball (round or oval) in which two teams try to kick "
    "or carry or propel the ball into each other's goal\n"
    "5. (2 syllables) synonym: answer, response\n"
    'Answer as JSON {"answers": [...]}, upper case, in clue order.'
)
SY_ITEMS = (
    SkillEvalItem(
        prompt=SY_PROMPT,
        expected='{"answers": ["MESSAGE", "RECEIVE", "UNLIKE", "FOOTBALL", "REPLY"]}',
        response='{"answers": ["MESSAGE", "RECEI", "UNLIKE", "FOOTBALL", "YLPER"]}',
        correct=False,
        explanation="wrong words: 2: expected RECEIVE, got RECEI; 5: expected REPLY, got YLPER",
    ),
)
BIN_ITEMS = (
    SkillEvalItem(
        prompt="⓪⓪①①① OR ①①①①① = (columns)",
        expected="①|①=①\n①|①=①\n①|①=①\n⓪|①=①\n⓪|①=①\n①①①①①",
        response="①|①=①\n①|①=①\n①|①=①\n⓪|①=①\n⓪|①=①\n①①①①⓪",
        correct=False,
        explanation="wrong value: got 30, expected 31 (①①①①①)",
    ),
    SkillEvalItem(prompt="①⓪⓪①① - ⓪①⓪①⓪ = (columns)", expected="⓪①⓪⓪①", response="⓪①⓪⓪①", correct=True),
    SkillEvalItem(
        prompt="①①①①⓪ OR ⓪⓪①⓪⓪ = (columns)",
        expected="⓪|⓪=⓪\n①|⓪=①\n①|①=①\n①|⓪=①\n①|⓪=①\n①①①①⓪",
        response="⓪|⓪=⓪\n①|⓪=①\n①|①=①\n①|⓪=①\n①|⓪=①\n①①①①①",
        correct=False,
        explanation="wrong value: got 31, expected 30 (①①①①⓪)",
    ),
)


def rounds(skill: SkillState, items: tuple[SkillEvalItem, ...], n: int, every: int = 50) -> list[SkillEvaluated]:
    """``n`` eval rounds at the skill's level, accuracy climbing from 10 % (with a dip), the last
    one with ``items``."""
    events = []
    for k in range(1, n + 1):
        accuracy = min(0.1 + 0.025 * k - (0.15 if k == n // 2 else 0.0), 1.0)
        events.append(
            SkillEvaluated(
                skill=skill.id,
                level=skill.level,
                step=k * every,
                accuracy=accuracy,
                next_accuracy=accuracy / 3,
                items=items if k == n else (),
                next_eval_step=(n + 1) * every,
            )  # fmt: skip
        )
    return events


def with_skills(app, mix: tuple[SkillState, ...], rounds_each: int = 30) -> None:
    """The demo app's state with the skills in ``mix`` (the trainer announces only those) and
    the config fields the Skills and Vault screens read."""
    config = (
        *demo.CONFIG,
        ConfigField(key="skills.mix", value="[" + ", ".join(s.id for s in mix) + "]"),
        ConfigField(key="skills.folder", value="null"),
        ConfigField(key="train.checkpoint_every", value="200"),
    )
    items = {"bin": BIN_ITEMS, "sy": SY_ITEMS}
    events = [ConfigChanged(config=config), SkillsLoaded(skills=SkillsState(active=mix[0].id, skills=mix))]
    for skill in mix:
        if not skill.waits_for:  # a locked skill has no eval rounds
            events += rounds(skill, items[skill.id], rounds_each)
    state = app.mirror.state
    state = replace(state, skills=SkillsState())
    for event in events:
        state = apply(state, event, demo.T0 + 300)
    app.mirror.state = state
