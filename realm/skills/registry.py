"""Skills from YAML: ``configs/skills/*.yaml`` loaded, validated, and turned into level params.

The YAML shape is documented in ``configs/skills/_template.yaml``. Every problem raises
``SkillConfigError`` naming the file and the key. A skill names its family with
``generator:``; the family module is imported on demand (``realm.skills.{generator}``) so a
skill of a known family needs no code, only its YAML.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Any

import msgspec
import yaml

from realm.config import wrong_type_in_words
from realm.resources import shipped
from realm.skills.base import FAMILIES, Family

SKILLS_DIR = shipped("configs/skills")
_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


class SkillConfigError(ValueError):
    """A skill YAML that cannot be used; the message names the file and the key."""


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class PromptSpec(_Section):
    system: str | None = None
    answer_format: str = ""


class EvalSpec(_Section):
    samples_per_level: int = 5
    seed: int = 20251127
    probe_size: int = 40
    stratify: str = "op"
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        for key in ("samples_per_level", "max_new_tokens"):
            if getattr(self, key) < 1:
                raise ValueError(f"`{key}` must be at least 1")
        if self.probe_size < 0:
            raise ValueError("`probe_size` must be at least 0")


class ProgressionSpec(_Section):
    threshold: float = 0.8
    window: int = 3
    probe_threshold: float = 0.8
    stratum_floor: float = 0.5

    def __post_init__(self) -> None:
        for key in ("threshold", "probe_threshold", "stratum_floor"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"`{key}` must be between 0 and 1")
        if self.window < 1:
            raise ValueError("`window` must be at least 1")


class TrainingSpec(_Section):
    lower_level_share: float = 0.2
    discrimination_share: float = 0.0
    emoji_think: bool = False

    def __post_init__(self) -> None:
        for key in ("lower_level_share", "discrimination_share"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"`{key}` must be between 0 and 1")


class SkillConfig(_Section):
    id: str
    name: str
    generator: str
    max_level: int
    levels: dict[int, dict[str, Any]]
    rpg_name: str = ""
    description: str = ""
    short_name: str = ""
    icon: str = ""
    color: str = "#FFFFFF"
    xp_multiplier: float = 1.0
    interpolate: list[str] = []
    prompt: PromptSpec = PromptSpec()
    eval: EvalSpec = EvalSpec()
    progression: ProgressionSpec = ProgressionSpec()
    training: TrainingSpec = TrainingSpec()
    # set by the loader, not the YAML
    source: str = ""

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError("`id` must be lower-case letters, digits or _ (start with a letter, at most 32)")
        if self.max_level < 1:
            raise ValueError("`max_level` must be at least 1")
        if not _COLOR.match(self.color):
            raise ValueError("`color` must look like #RRGGBB")
        if self.xp_multiplier < 0:
            raise ValueError("`xp_multiplier` must be at least 0")
        if 1 not in self.levels:
            raise ValueError("`levels` must list level 1")
        outside = [level for level in self.levels if not 1 <= level <= self.max_level]
        if outside:
            raise ValueError(f"`levels` lists level {outside[0]}, outside 1..max_level ({self.max_level})")

    @property
    def family(self) -> Family:
        return family(self.generator)

    def params(self, level: int) -> dict[str, Any]:
        """The generator's parameters at ``level`` (1..max_level)."""
        if not 1 <= level <= self.max_level:
            raise ValueError(f"skill {self.id!r} has levels 1..{self.max_level}, not {level}")
        return level_table(self.levels, self.max_level, self.interpolate)[level - 1]

    def eval_and_training_params(self, level: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """A level's params for eval draws, and for training draws: its ``train:`` sub-table
        overrides the rest for training only."""
        params = self.params(level)
        train = params.pop("train", None) or {}
        return params, {**params, **train}


def level_table(levels: dict[int, dict[str, Any]], max_level: int, interpolate: list[str]) -> list[dict[str, Any]]:
    """Every level's params: listed keys replace, unlisted levels inherit, ``interpolate`` keys blend."""
    table: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for level in range(1, max_level + 1):
        current = {**current, **levels.get(level, {})}
        table.append(dict(current))
    keyframes = sorted(levels)
    for key in interpolate:
        points = [(level, levels[level][key]) for level in keyframes if key in levels[level]]
        for (lo, a), (hi, b) in zip(points, points[1:]):
            for level in range(lo + 1, hi):
                value = a + (b - a) * (level - lo) / (hi - lo)
                table[level - 1][key] = round(value) if isinstance(a, int) and isinstance(b, int) else value
    return table


def family(generator: str) -> Family:
    """The registered family ``generator``, importing ``realm.skills.{generator}`` on demand."""
    if generator not in FAMILIES:
        try:
            importlib.import_module(f"realm.skills.{generator}")
        except ModuleNotFoundError as exc:
            if exc.name != f"realm.skills.{generator}":
                raise
    if generator not in FAMILIES:
        known = ", ".join(sorted(FAMILIES)) or "none"
        raise SkillConfigError(f"no skill family {generator!r} (known: {known})")
    return FAMILIES[generator]


def load_skill(path: str | os.PathLike) -> SkillConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise SkillConfigError(f"{path}: skill file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SkillConfigError(f"{path.name}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(raw, dict):
        raise SkillConfigError(f"{path.name}: (top level): expected a mapping of keys, got {type(raw).__name__}")
    raw = {**raw, "source": str(path)}
    try:
        skill = msgspec.convert(raw, SkillConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise SkillConfigError(f"{path.name}: {_explain(exc)}") from None
    if skill.id != path.stem:
        raise SkillConfigError(f"{path.name}: id: {skill.id!r} must match the file name ({path.stem!r})")
    try:
        fam = skill.family
    except SkillConfigError as exc:
        raise SkillConfigError(f"{path.name}: generator: {exc}") from None
    check = getattr(fam, "check_params", None)
    if check is not None:
        for level in range(1, skill.max_level + 1):
            both = zip((f"levels.{level}", f"levels.{level}.train"), skill.eval_and_training_params(level))
            for where, checked in both:
                try:
                    check(checked)
                except (ValueError, TypeError, KeyError) as exc:
                    raise SkillConfigError(f"{path.name}: {where}: {exc}") from None
    return skill


def _explain(exc: msgspec.ValidationError) -> str:
    message = str(exc)
    what, where = message.rsplit(" - at `$", 1) if " - at `$" in message else (message, "")
    key = where.rstrip("`").lstrip(".")
    key = re.sub(r"\[(\d+)\]", r".\1", key)
    unknown = re.match(r"^Object contains unknown field `(?P<field>[^`]*)`$", what)
    if unknown:
        return f"{key + '.' if key else ''}{unknown['field']}: unknown key"
    rule = re.match(r"^`(?P<field>[^`]+)` (?P<rule>.*)$", what)
    if rule:
        return f"{key + '.' if key else ''}{rule['field']}: {rule['rule']}"
    return f"{key or '(top level)'}: {wrong_type_in_words(what) or what[0].lower() + what[1:]}"


def skill_files(folder: Path = SKILLS_DIR) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if not p.name.startswith("_"))


def load_skills(folder: str | os.PathLike | None = None) -> dict[str, SkillConfig]:
    """Every skill in ``folder`` (default ``configs/skills``), by id."""
    folder = Path(folder) if folder else SKILLS_DIR
    if not folder.is_dir():
        raise SkillConfigError(f"{folder}: skills folder not found")
    return {skill.id: skill for skill in map(load_skill, skill_files(folder))}


def mix_problem(config, skills: dict[str, SkillConfig]) -> str:
    """The first skill ``config.mix`` (a ``SkillsConfig``) names that ``skills`` has not, in YAML words, or ""."""
    unknown = [skill for skill in config.weights() if skill not in skills]
    if not unknown:
        return ""
    return (
        f"skills.mix: {unknown[0]!r} is not a skill in {config.folder or 'configs/skills'}; "
        f"known: {', '.join(sorted(skills)) or 'none'}; "
        f"name only those in skills.mix (default [{', '.join(type(config)().mix)}])"
    )


def get_skill(skill_id: str, folder: str | os.PathLike | None = None) -> SkillConfig:
    skills = load_skills(folder)
    if skill_id not in skills:
        raise SkillConfigError(f"no skill {skill_id!r} (known: {', '.join(sorted(skills)) or 'none'})")
    return skills[skill_id]
