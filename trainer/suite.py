"""The evaluation suite: the same data for every checkpoint of a realm, so scores compare.

It holds two kinds of set:

* **loss sets**, scored by the mean loss per answer token: each file in ``HOME/validation/``
  (any quest format, validated like a quest), and the built-in sets, one per skill level
  ``1..suite.skill_levels``: that level's frozen eval items with their right answers. The
  suite's loss is the mean over the user's files when there are any, else over the built-in
  sets (each level weighs the same, however long its answers).
* **skill sets**, scored by accuracy: the same frozen items, answered greedily and graded.

Frozen eval items are never drawn for training (``realm.skills.curriculum.Drawer``), so the
whole suite is held out. Its version is a hash of what it holds (each file's sha256, the
skills' items, ``train.max_length``): a file added, edited or removed starts a new version,
and only checkpoints scored on the same version are ranked against each other.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import NamedTuple

from realm.config import RealmConfig
from realm.files import UnreadableFile, read_bytes
from realm.model.chatml import encode_chat
from realm.model.greedy import generate
from realm.protocol import SuiteScore
from realm.quests.formats import QuestFormatError
from realm.quests.validate import check_for_training
from realm.skills import curriculum
from realm.skills.grading import accuracy, answer_budget, grade
from realm.skills.registry import SkillConfig

log = logging.getLogger("realm.trainer")

BUILTIN = "builtin"  # the built-in loss sets are named "builtin:SKILL-LLEVEL"


class LossSet(NamedTuple):
    name: str
    examples: list  # EncodedExample


class SkillSet(NamedTuple):
    skill: SkillConfig
    samples: list  # realm.skills.base.Sample


class Suite(NamedTuple):
    version: str
    user_sets: list[LossSet]
    builtin: list[LossSet]  # one per skill level, so each level weighs the same in the suite's loss
    skill_sets: list[SkillSet]
    problems: list[str]  # validation files left out, each with its reason
    files: dict[str, str]  # validation file name -> sha256

    @property
    def empty(self) -> bool:
        return not self.user_sets and not self.builtin and not self.skill_sets


def folder_stamp(folder: Path) -> tuple:
    """What changes when a validation file is added, removed or edited (cheap: no reading)."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return ()
    stamp = []
    for path in entries:
        try:
            info = path.stat()
        except OSError:
            continue
        stamp.append((path.name, info.st_size, info.st_mtime_ns))
    return tuple(stamp)


def build(folder: Path, config: RealmConfig, tokenizer, skills: list[SkillConfig]) -> Suite:
    """The suite as it stands: the validation files in ``folder`` and the skills in the mix."""
    max_length = config.train.max_length
    user_sets, problems, files = [], [], {}
    for path in sorted(p for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")):
        try:
            data = read_bytes(path)
            verdict = check_for_training(path, config.quests, tokenizer, max_length)
        except QuestFormatError as exc:
            problems.append(f"validation/{exc}")
            continue
        except UnreadableFile as exc:
            problems.append(f"validation/{path.name}: {exc.reason}")
            continue
        if not verdict.accepted:
            problems.append(f"validation/{path.name}: {verdict.refused}")
            continue
        files[path.name] = hashlib.sha256(data).hexdigest()
        user_sets.append(LossSet(path.name, [encode_chat(tokenizer, ex, max_length) for ex in verdict.examples]))
    levels = config.suite.skill_levels
    skill_sets = [SkillSet(skill, _frozen_items(skill, levels)) for skill in skills]
    builtin = [_level_set(skill, level, tokenizer, max_length) for skill in skills for level in _levels(skill, levels)]
    what = {
        "files": sorted(files.items()),
        "skills": [[s.skill.id, [curriculum.canonical_key(s.skill, x) for x in s.samples]] for s in skill_sets],
        "max_length": max_length,
    }
    version = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]
    return Suite(version, user_sets, builtin, skill_sets, problems, files)


def _levels(skill: SkillConfig, levels: int) -> range:
    return range(1, min(levels, skill.max_level) + 1)


def _frozen_items(skill: SkillConfig, levels: int) -> list:
    return [sample for level in _levels(skill, levels) for sample in curriculum.eval_set(skill, level)]


def _level_set(skill: SkillConfig, level: int, tokenizer, max_length: int) -> LossSet:
    """A level's frozen items with their right answers: how sure DIO is of what is right."""
    chats = [curriculum.chat(skill, sample, sample.answer) for sample in curriculum.eval_set(skill, level)]
    return LossSet(f"{BUILTIN}:{skill.id}-L{level}", [encode_chat(tokenizer, chat, max_length) for chat in chats])


def score(suite: Suite, engine, batch_size: int = 64) -> SuiteScore:
    """Score the engine's current weights on every set of the suite."""
    losses = tuple((s.name, engine.evaluate(s.examples)) for s in suite.user_sets)
    builtin = tuple((s.name, engine.evaluate(s.examples)) for s in suite.builtin)
    ranked = losses or builtin
    loss = sum(value for _, value in ranked) / len(ranked) if ranked else None
    skills, correct, total = [], 0, 0
    for skill_set in suite.skill_sets:
        verdicts = _answer(skill_set, engine, batch_size)
        skills.append((skill_set.skill.id, accuracy(verdicts)))
        correct += sum(v.correct for v in verdicts)
        total += len(verdicts)
    return SuiteScore(
        version=suite.version,
        loss=loss,
        accuracy=correct / total if total else None,
        files=losses + builtin,
        skills=tuple(skills),
    )


def _answer(skill_set: SkillSet, engine, batch_size: int) -> list:
    skill = skill_set.skill
    prompts = [curriculum.prompt_messages(skill, sample) for sample in skill_set.samples]
    budget = answer_budget(skill, engine.tokenizer, skill_set.samples)
    answers = generate(engine.unwrapped, engine.tokenizer, prompts, max_new_tokens=budget, batch_size=batch_size)
    return [grade(skill, sample, answer) for sample, answer in zip(skill_set.samples, answers)]
