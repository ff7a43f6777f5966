"""The trainer's side of skills: eval rounds, level-ups, idle quests, corrections, lineage.

The daemon calls ``SkillRunner`` between optimizer steps: ``after_step`` runs an eval round
when one is due (``trainer.skill_rounds``), on an oracle with ``skills.eval_on: oracle``
(``trainer.skill_oracle``); ``write_idle_quest`` makes the quest an empty queue trains on
(``trainer.skill_quests``). Everything the runner learns goes out as events through ``emit``
(the daemon's publisher), and into SQLite (``realm.skills.history``) so progress survives restarts.
"""

from __future__ import annotations

import logging
from pathlib import Path

from realm.config import ConfigError, RealmConfig, SkillsConfig
from realm.protocol import (
    LineageCount,
    Notice,
    SkillEvalItem,
    SkillEvalPoint,
    SkillsLoaded,
    SkillsState,
    SkillState,
    SkillUnlocked,
)
from realm.skills import curriculum
from realm.skills.history import SkillStore
from realm.skills.registry import SkillConfig, load_skills, mix_problem
from trainer.skill_oracle import OracleRounds
from trainer.skill_quests import SkillQuests
from trainer.skill_rounds import EvalRounds

log = logging.getLogger("realm.trainer.skills")


def check_mix(config: SkillsConfig) -> None:
    """``ConfigError`` when ``skills.mix`` names a skill the folder does not have. A skill file
    that does not load is ``SkillRunner.start``'s to report: the trainer then goes on without skills."""
    try:
        skills = load_skills(config.folder)
    except ValueError:
        return
    problem = _mix_problem(config, skills)
    if problem:
        raise ConfigError(problem)


def _mix_problem(config: SkillsConfig, skills: dict[str, SkillConfig]) -> str:
    return mix_problem(config, skills)


def playing_mix(weights: dict[str, float], level_of, has_played, unlock_level: int):
    """The skills of ``weights`` that train now, and for each locked one what it waits for:
    (the skill before it in the mix, the level that one must reach).

    The first skill plays from the start. Each later one joins once the skill before it plays
    and has reached ``unlock_level``, so a new hero's first level-up comes from one skill
    alone. A skill that has played before (eval rounds on record) keeps playing: progress is
    never locked away by a later edit of the mix or of the level."""
    playing: dict[str, float] = {}
    locked: dict[str, tuple[str, int]] = {}
    before = None
    for skill, weight in weights.items():
        if before is None or has_played(skill) or (before in playing and level_of(before) >= unlock_level):
            playing[skill] = weight
        else:
            locked[skill] = (before, unlock_level)
        before = skill
    return playing, locked


class SkillRunner:
    """``save_checkpoint()`` (the daemon's) returns the step of a checkpoint holding the current
    weights, saving one when needed, or None; oracle rounds (``skills.eval_on``) name it."""

    def __init__(self, config: RealmConfig, home, engine, emit, save_checkpoint=None) -> None:
        self._realm_config = config
        self.save_checkpoint = save_checkpoint
        self.config = config.skills
        self.home = home
        self.engine = engine
        self.emit = emit
        self.skills: dict[str, SkillConfig] = {}
        self.mix: dict[str, float] = {}  # the skills that train and are evaluated now
        self.locked: dict[str, tuple[str, int]] = {}  # the mix's other skills: what each waits for
        self.store = SkillStore(home.db)
        # built by start, once the skills are loaded
        self.rounds: EvalRounds | None = None
        self.on_oracle: OracleRounds | None = None
        self.quests: SkillQuests | None = None

    # ------------------------------------------------------------------ start-up

    def start(self) -> None:
        self.skills = load_skills(self.config.folder)
        problem = _mix_problem(self.config, self.skills)
        if problem:
            raise ValueError(problem)
        self._apply_mix()
        self.quests = SkillQuests(
            self.config, self.home, self.engine, self.store, self.emit, self.notice, self.skills, self.mix
        )
        self.rounds = EvalRounds(
            self.config, self.engine, self.store, self.emit, self.skills, self.mix, self.quests.correction_quest
        )
        self.on_oracle = OracleRounds(
            self._realm_config, self.home, self.engine, self.rounds, self.emit, self.notice, self.save_checkpoint
        )
        self.emit(SkillsLoaded(skills=self._loaded_state()))
        if self.config.eval_on == "oracle":
            self.on_oracle.connect()

    def use_mix(self, config: SkillsConfig) -> None:
        """A live ``skills.mix``: the next eval round and idle quest use it. The dict is the one
        the quest writer and the eval rounds hold, so it changes in place."""
        self.config = self.quests.config = self.rounds.config = config
        self._apply_mix()
        self.emit(SkillsLoaded(skills=self._loaded_state()))

    def _configured(self) -> dict[str, float]:
        return {s: w for s, w in self.config.weights().items() if w > 0}

    def _apply_mix(self) -> list[str]:
        """Sets ``mix`` (in place: the quest writer and the eval rounds hold it) and ``locked``
        from the config and the levels on record; returns the skills that joined."""
        playing, self.locked = playing_mix(
            self._configured(),
            lambda s: self.store.level(s)[0],
            lambda s: bool(self.store.history(s, limit=1)),
            self.config.unlock_level,
        )
        joined = [s for s in playing if s not in self.mix]
        self.mix.clear()
        self.mix.update(playing)
        if self.quests is not None:
            for skill_id in joined:
                self.quests.drawers.setdefault(skill_id, curriculum.Drawer(self.skills[skill_id]))
        return joined

    def skills_in_mix(self) -> list[SkillConfig]:
        """Every skill the mix names, locked ones too: the evaluation suite holds their frozen
        items from the start, so a skill joining does not change what the suite measures."""
        return [self.skills[s] for s in self._configured()]

    def _unlock(self) -> None:
        """After a round: the locked skills whose wait is over join, each with its event."""
        if not self.locked:
            return
        waits = dict(self.locked)
        joined = self._apply_mix()
        for skill_id in joined:
            after, level = waits.get(skill_id, ("", 0))
            self.emit(SkillUnlocked(skill=skill_id, after=after, level=level, step=self.engine.step))
            log.info("skill %s joins the training: %s reached L%d", skill_id, after, level)
        if joined:
            self.emit(SkillsLoaded(skills=self._loaded_state()))

    @property
    def active(self) -> str:
        return next(iter(self.mix), "")

    def _loaded_state(self) -> SkillsState:
        states = []
        for skill_id in self._configured():
            skill = self.skills[skill_id]
            waits_for, waits_level = self.locked.get(skill_id, ("", 0))
            level, _ = self.store.level(skill_id)
            history = self.store.history(skill_id)
            current = [r for r in history if r.level == level and r.at_level == level]
            states.append(
                SkillState(
                    id=skill.id,
                    name=skill.name,
                    short_name=skill.short_name,
                    icon=skill.icon,
                    color=skill.color,
                    level=level,
                    max_level=skill.max_level,
                    accuracy=current[-1].accuracy if current else None,
                    history=tuple(
                        SkillEvalPoint(
                            level=r.level, step=r.step, accuracy=r.accuracy, probe=r.probe, probe_items=r.probe_items
                        )
                        for r in history
                    ),
                    last_items=tuple(SkillEvalItem(**item) for item in (current[-1].items if current else [])),
                    next_eval_step=0 if waits_for else self.rounds.next_eval_step,
                    waits_for=waits_for,
                    waits_level=waits_level,
                )
            )
        lineage = tuple(LineageCount(generator=g, validator=v, count=n) for g, v, n in self.store.lineage())
        return SkillsState(active=self.active, skills=tuple(states), lineage=lineage)

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ eval rounds

    def after_step(self, seconds: float) -> None:
        self.rounds.train_seconds += seconds
        self._guarded(self._collect_or_start)

    def while_paused(self) -> None:
        """Record an oracle round that has answered. A failed one waits for the resume: its
        fallback is a local eval, which a paused trainer must not run."""
        pending = self.on_oracle.pending
        if pending is not None and pending.done.is_set() and not pending.error:
            self._guarded(self.on_oracle.collect)
            self._guarded(self._unlock)

    def _collect_or_start(self) -> None:
        scheduled = self.rounds.next_eval_step
        if self.on_oracle.pending is not None:
            self.on_oracle.collect()
        if self.mix and self.on_oracle.pending is None and self.engine.step >= self.rounds.next_eval_step:
            self.eval_round()
        if self.rounds.next_eval_step != scheduled:  # a round closed: a level may have risen
            self._unlock()

    def _guarded(self, work) -> None:
        try:
            work()
        except Exception as exc:  # an eval must never take the trainer down
            log.exception("skill eval failed")
            self.on_oracle.pending = None
            self.rounds.next_eval_step = self.engine.step + self.config.eval_every
            self.notice(f"skill eval failed at step {self.engine.step}: {exc}")

    def eval_round(self) -> None:
        if self.on_oracle.target is not None and self.on_oracle.hand_over():
            return
        self.rounds.run_locally()

    def checkpoints_in_use(self) -> tuple[int, ...]:
        """The step of the checkpoint an oracle round is reading, if one is in flight."""
        return self.on_oracle.checkpoints_in_use()

    def finish(self) -> None:
        """At shutdown: collect a round still on the oracle, so no round is lost."""
        self.on_oracle.finish()

    # ------------------------------------------------------------------ quests

    def write_idle_quest(self, folder: Path, n: int) -> Path | None:
        """An idle quest drawn from the mix at each skill's level (``SkillQuests.write_idle_quest``)."""
        return self.quests.write_idle_quest(folder, n)

    def generated_quest(self, skill_id: str, level: int, count: int, seed: str = "") -> tuple[str, bytes, dict]:
        """A quest asked for over the bus (``SkillQuests.generated_quest``)."""
        return self.quests.generated_quest(skill_id, level, count, seed)

    def notice(self, text: str) -> None:
        self.emit(Notice(level="warning", text=text))
