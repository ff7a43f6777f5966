"""The quests skills write: idle quests drawn from the mix, quests asked for over the bus,
correction quests from a round's wrong probe items; each with its lineage counted."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

from realm.config import SkillsConfig
from realm.game.narration import skill_quest_title
from realm.model.chatml import encode_chat
from realm.protocol import MAX_GENERATED_CHATS, LineageCount, LineageCounted, QuestInfo, QuestQueued
from realm.skills import curriculum
from realm.skills.grading import Verdict
from realm.skills.history import SkillStore
from realm.skills.registry import SkillConfig
from trainer import lineage

CORRECTION_GENERATOR = "self_correction"
CORRECTION_REPEATS = 4  # each wrong probe item appears this many times in its correction quest


class SkillQuests:
    """Writes quests for the skills in ``mix`` at the levels in ``store``; ``notice(text)`` warns on the bus."""

    def __init__(
        self,
        config: SkillsConfig,
        home,
        engine,
        store: SkillStore,
        emit,
        notice,
        skills: dict[str, SkillConfig],
        mix: dict[str, float],
    ) -> None:
        self.config = config
        self.home = home
        self.engine = engine
        self.store = store
        self.emit = emit
        self.notice = notice
        self.skills = skills
        self.mix = mix
        self.drawers = {s: curriculum.Drawer(skills[s]) for s in mix}
        self._idle_step, self._idle_redraws = -1, 0

    def _idle_draw(self, step: int) -> str:
        """The idle quest's seed: its step, plus a count when an earlier one at this step made no
        step (it failed whole), so the next quest is a new draw and not the same failing one."""
        self._idle_redraws = self._idle_redraws + 1 if step == self._idle_step else 0
        self._idle_step = step
        return f"{step}" if not self._idle_redraws else f"{step}.{self._idle_redraws}"

    def write_idle_quest(self, folder: Path, n: int) -> Path | None:
        """An idle quest drawn from the mix at each skill's level, with its lineage sidecar.

        Examples longer than ``train.max_length`` are left out (and counted in the lineage as
        rejected by ``too_long``) rather than handed to a validator that would refuse them;
        None when no example fits.
        """
        step = self.engine.step
        draw = self._idle_draw(step)
        rng = random.Random(f"idle:{draw}")
        skill_ids = list(self.mix)
        counts_per_skill: Counter[str] = Counter(rng.choices(skill_ids, weights=[self.mix[s] for s in skill_ids], k=n))
        examples: list[dict] = []
        meta_skills = {}
        fitted: dict[str, int] = {}  # skill -> chats in the quest
        counted: list[LineageCount] = []
        for skill_id, count in sorted(counts_per_skill.items()):
            skill = self.skills[skill_id]
            level, _ = self.store.level(skill_id)
            batch = curriculum.training_examples(skill, level, count, seed=draw, drawer=self.drawers[skill_id])
            fitting = self._fitting(batch.examples)
            fitted[skill_id] = len(fitting)
            examples += fitting
            generator = f"{skill.generator}@{skill.family.version}"
            if len(fitting) < len(batch.examples):
                counted.append(
                    LineageCount(generator=generator, validator="too_long", count=len(batch.examples) - len(fitting))
                )
            meta_skills[skill_id] = {
                "level": level,
                "generator": skill.generator,
                "generator_version": skill.family.version,
                "counts": batch.counts,
            }
            counted.append(LineageCount(generator=generator, validator="", count=count))
            counted += _rejections(generator, batch.counts)
        if not examples:
            self._count_lineage(counted)
            self.notice(
                f"no skill example fits train.max_length ({self.engine.config.train.max_length} tokens); "
                "raise it for skill quests. Using the placeholder idle quest"
            )
            return None
        random.Random(f"idle-order:{draw}").shuffle(examples)
        top = max(counts_per_skill, key=counts_per_skill.get)
        redraw = f"-{self._idle_redraws}" if self._idle_redraws else ""
        name = f"idle-{top}-L{meta_skills[top]['level']}-{step:08d}{redraw}.jsonl"
        parts = [_part(self.skills[s], meta_skills[s]["level"], fitted[s]) for s in sorted(fitted) if fitted[s]]
        meta = {
            "kind": "idle",
            "source": "idle",
            "title": skill_quest_title("idle", parts),
            "seed": f"idle:{draw}",
            "step": step,
            "examples": len(examples),
            "skills": meta_skills,
        }
        path = self._write_quest(folder, name, examples, meta)
        self._count_lineage(counted)
        return path

    def generated_quest(self, skill_id: str, level: int, count: int, seed: str = "") -> tuple[str, bytes, dict]:
        """A quest of ``count`` chats from one skill at one level, asked for over the bus (the
        TUI's quest board): its file name, content and lineage record, for the quest board to
        admit like an added file; the lineage counts are recorded here. Raises ``ValueError``
        saying what is wrong with the ask."""
        skill = self.skills.get(skill_id)
        if skill is None:
            raise ValueError(f"no skill {skill_id!r}; this trainer knows {', '.join(sorted(self.skills)) or 'none'}")
        if not 1 <= level <= skill.max_level:
            raise ValueError(f"skill {skill_id!r} has levels 1..{skill.max_level}, not {level}")
        if not 1 <= count <= MAX_GENERATED_CHATS:
            raise ValueError(f"count must be between 1 and {MAX_GENERATED_CHATS}, not {count}")
        seed = seed or f"{time.time_ns()}"
        batch = curriculum.training_examples(skill, level, count, seed=f"asked:{seed}")
        name = f"{skill.id}-L{level}-{count}x-{seed[-8:]}.jsonl"
        generator = f"{skill.generator}@{skill.family.version}"
        meta = {
            "kind": "asked",
            "source": "generated",
            "title": skill_quest_title("generated", [_part(skill, level, count)]),
            "skill": skill.id,
            "level": level,
            "generator": skill.generator,
            "generator_version": skill.family.version,
            "seed": f"asked:{seed}",
            "examples": count,
            "counts": batch.counts,
        }
        self._count_lineage(
            [LineageCount(generator=generator, validator="", count=count), *_rejections(generator, batch.counts)]
        )
        return name, _jsonl(batch.examples).encode(), meta

    def correction_quest(self, skill: SkillConfig, level: int, step: int, wrong: list[Verdict]) -> int:
        """The round's wrong probe items, each ``CORRECTION_REPEATS`` times, as a high-priority
        quest; the number of items it holds. Items longer than ``train.max_length`` are left out
        (counted as ``too_long``), so the quest never fails on length."""
        if not wrong or not self.config.corrections:
            return 0
        items = [{"messages": curriculum.chat(skill, v.sample, v.sample.answer)} for v in wrong]
        fitting = self._fitting(items)
        if len(fitting) < len(items):
            self._count_lineage(
                [LineageCount(generator=CORRECTION_GENERATOR, validator="too_long", count=len(items) - len(fitting))]
            )
        if not fitting:
            return 0
        examples = fitting * CORRECTION_REPEATS
        random.Random(f"correction:{skill.id}:{step}").shuffle(examples)
        name = f"correction-{skill.id}-L{level}-{step:08d}.jsonl"
        meta = {
            "kind": "correction",
            "source": "correction",
            "title": skill_quest_title(
                "correction", [_part(skill, level, len(examples), training=False)], wrong=len(wrong)
            ),
            "generator": CORRECTION_GENERATOR,
            "source_generator": skill.generator,
            "source_generator_version": skill.family.version,
            "skill": skill.id,
            "level": level,
            "step": step,
            "seed": f"probe:{skill.id}:{level}:{step}",
            "examples": len(examples),
            "wrong_items": len(fitting),
            "repeats": CORRECTION_REPEATS,
        }
        path = self._write_quest(self.home.queued("high"), name, examples, meta)
        info = QuestInfo(
            name=path.name, examples=len(examples), priority="high", source="correction", title=meta["title"]
        )
        self.emit(QuestQueued(quest=info))  # the board lists it until its battle begins
        self._count_lineage([LineageCount(generator=CORRECTION_GENERATOR, validator="", count=len(examples))])
        return len(fitting)

    def _fitting(self, examples: list[dict]) -> list[dict]:
        limit = self.engine.config.train.max_length
        # encode one token past the limit: encode_chat truncates, so a fitting example stays shorter
        lengths = [len(encode_chat(self.engine.tokenizer, ex["messages"], limit + 1).input_ids) for ex in examples]
        return [example for example, length in zip(examples, lengths) if length <= limit]

    def _write_quest(self, folder: Path, name: str, examples: list[dict], meta: dict) -> Path:
        return lineage.write_quest(self.home, folder, name, _jsonl(examples), meta)

    def _count_lineage(self, counts: list[LineageCount]) -> None:
        for c in counts:
            self.store.count(c.generator, c.validator, c.count)
        if counts:
            self.emit(LineageCounted(counts=tuple(counts)))


def _jsonl(examples: list[dict]) -> str:
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples)


def _rejections(generator: str, counts: dict[str, int]) -> list[LineageCount]:
    """The lineage rows for what a drawer's validators rejected (``rejected_NAME`` counts)."""
    return [
        LineageCount(generator=generator, validator=key[len("rejected_") :], count=value)
        for key, value in counts.items()
        if key.startswith("rejected_")
    ]


def _part(skill: SkillConfig, level: int, chats: int, training: bool = True) -> tuple[str, int, int, tuple[str, ...]]:
    """A part of a quest's title (``skill_quest_title``): the skill, the level, its chats and what
    they practise (the training draws' params, or the level's own for a correction's probe items)."""
    return _short(skill), level, chats, curriculum.describe_level(skill, level, training=training)


def _short(skill: SkillConfig) -> str:
    """The skill as the screens show it: ``BIN``."""
    return skill.short_name or skill.id.upper()
