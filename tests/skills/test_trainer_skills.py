"""Skills in the real trainer: eval rounds, idle quests with lineage, level-ups, restarts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
import yaml
from conftest import fast_config

from realm.config import RealmConfig, SkillsConfig
from realm.game.hero import hero_stats
from realm.model.chatml import encode_chat
from realm.model.loading import load_tokenizer
from realm.skills import curriculum
from realm.skills.history import EvalRow, SkillStore
from realm.skills.registry import SKILLS_DIR, get_skill
from realm.state import every_line
from realm.vault.checkpoints import complete_checkpoints, read_sidecar


def skill_folder(tmp_path: Path, **progression) -> Path:
    """The shipped bin.yaml with a small probe and short answers, so evals of an untrained
    DIO-nano stay quick; ``progression`` overrides the rule."""
    folder = tmp_path / "skills"
    folder.mkdir(exist_ok=True)
    raw = yaml.safe_load((SKILLS_DIR / "bin.yaml").read_text(encoding="utf-8"))
    raw["eval"].update(probe_size=6, max_new_tokens=6)
    raw["progression"].update(progression)
    (folder / "bin.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return folder


def skills_config(folder: Path, **skills) -> RealmConfig:
    config = fast_config(max_length=256)  # skill prompts are longer than the default fast 64
    options = dict(enabled=True, folder=str(folder), mix=["bin"], eval_every=5, max_eval_share=0.0, eval_batch_size=32)
    options.update(skills)
    return msgspec.structs.replace(
        config, skills=SkillsConfig(**options), idle=msgspec.structs.replace(config.idle, examples=24)
    )


def test_idle_quests_come_from_the_skill_with_lineage_and_evals_run(trainer_factory, tmp_path):
    trainer = trainer_factory(skills_config(skill_folder(tmp_path)), max_steps=10).start()
    assert trainer.join() == 0
    state = trainer.state
    assert len(state.skills.skills) == 1, [line.text for line in every_line(state)]
    [skill] = state.skills.skills
    assert skill.id == "bin" and skill.level == 1 and skill.max_level == 30
    assert state.skills.active == "bin"
    rounds = [p for p in skill.history if p.level == 1]
    assert [p.step for p in rounds] == [5, 10]
    assert all(p.probe is not None and p.probe_items == 6 for p in rounds)  # probe_size in skill_folder
    assert [p.level for p in skill.history] == [1, 2, 1, 2]  # the next level's frozen set as a preview
    assert len(skill.last_items) == 5 and all(i.prompt and i.expected for i in skill.last_items)
    assert hero_stats(state).acc == skill.accuracy is not None
    assert state.skills.eval_seconds > 0 and state.skills.train_seconds > 0
    home = tmp_path / "home"
    meta = json.loads(sorted((home / "quests" / "lineage").glob("idle-bin-L1-*.meta.json"))[0].read_text())
    assert meta["skills"]["bin"]["generator"] == "bin" and meta["skills"]["bin"]["level"] == 1
    assert meta["examples"] == 24 and meta["seed"] and meta["source"] == "idle"
    assert (
        meta["title"] == "BIN L1 · 2-4-bit add"
    )  # what DIO practises (bin.yaml L1 trains 2-4 bits); the name stays in the detail
    assert {r.source for r in state.board.recent if r.name.startswith("idle-bin-")} == {"idle"}
    assert {r.title for r in state.board.recent if r.name.startswith("idle-bin-")} == {"BIN L1 · 2-4-bit add"}
    assert any(line.text.startswith("Victory: BIN L1 · 2-4-bit add — ") for line in state.log)
    counts = {(c.generator, c.validator): c.count for c in state.skills.lineage}
    assert counts[(f"bin@{get_skill('bin').family.version}", "")] >= 24
    # an untrained DIO gets probe items wrong: they come back as a high-priority correction quest
    corrections = list((home / "quests").rglob("correction-bin-L1-*.jsonl"))
    assert corrections
    waiting = sorted(p.name for p in (home / "quests" / "queued" / "high").glob("correction-*.jsonl"))
    assert waiting and [q.name for q in state.board.queued if q.source == "correction"] == waiting  # on the board
    correction_meta = json.loads((home / "quests" / "lineage" / f"{corrections[0].name}.meta.json").read_text())
    assert correction_meta["generator"] == "self_correction" and correction_meta["source_generator"] == "bin"
    assert correction_meta["source"] == "correction"
    assert correction_meta["title"] == f"Correction · BIN L1 · {correction_meta['wrong_items']} missed · 2-bit add"
    store = SkillStore(home / "vault" / "realm.db")
    assert [r.step for r in store.rounds_at("bin", 1)] == [5, 10]
    store.close()
    # the checkpoint's sidecar carries what the champion board scores
    [folder] = complete_checkpoints(home / "vault" / "checkpoints")
    sidecar = read_sidecar(folder)
    assert sidecar["skill"] == "bin"
    assert sidecar["skills"] == {"bin": {"level": 1, "accuracy": skill.accuracy}}


def test_eval_items_never_reach_a_training_quest(trainer_factory, tmp_path):
    skill = get_skill("bin")
    trainer = trainer_factory(skills_config(skill_folder(tmp_path), eval_every=1000), max_steps=4).start()
    trainer.join()
    frozen = {curriculum.canonical_key(skill, s) for level in (1, 2) for s in curriculum.eval_set(skill, level)}
    quests = list((tmp_path / "home" / "quests").rglob("idle-*.jsonl"))
    assert quests
    # L1 has only 16 distinct problems, so this would fail at once if eval items leaked
    prompts = {json.loads(line)["messages"][0]["content"] for q in quests for line in q.read_text().splitlines()}
    eval_prompts = {s.prompt for level in (1, 2) for s in curriculum.eval_set(skill, level)}
    assert len(prompts) >= 8 and not prompts & eval_prompts
    assert frozen  # keys, not just prompts, are what the drawer excludes (tested in test_curriculum)


def _seed_rounds(db: Path, accuracies: list[float]) -> None:
    store = SkillStore(db)
    for i, acc in enumerate(accuracies):
        store.record(EvalRow("bin", 1, 1, i, 0.0, acc, 1.0, {"add": 1.0}, []))
    store.close()


def _clear_queue(home: Path) -> None:
    """Empty the queue and the interrupted quest a restart would otherwise continue first."""
    for folder in [*(home / "quests" / "queued").iterdir(), home / "quests" / "active"]:
        shutil.rmtree(folder)
        folder.mkdir()


def test_level_up_after_the_window_across_a_restart(trainer_factory, tmp_path):
    """Two passing rounds are on record from a run that stopped; the third, taken by this
    trainer, completes the window. The rule is set to pass any score so the real trainer can
    show the transition without first learning BIN (the rule itself is tested in
    test_progression)."""
    home = tmp_path / "home"
    (home / "vault").mkdir(parents=True)
    _seed_rounds(home / "vault" / "realm.db", [1.0, 1.0])
    folder = skill_folder(tmp_path, threshold=0.0, probe_threshold=0.0, stratum_floor=0.0)
    trainer = trainer_factory(skills_config(folder, eval_every=3, corrections=False), max_steps=3, home=home).start()
    trainer.join()
    [skill] = trainer.state.skills.skills
    assert skill.level == 2
    assert any("rises to L2" in line.text for line in every_line(trainer.state))
    _clear_queue(home)
    again = trainer_factory(skills_config(folder, eval_every=1000), max_steps=1, home=home).start()
    again.join()
    assert again.state.skills.skills[0].level == 2  # the level survived the restart
    assert sorted((home / "quests" / "lineage").glob("idle-bin-L2-*.meta.json"))  # idle follows it


def test_no_level_up_while_the_rule_fails(trainer_factory, tmp_path):
    home = tmp_path / "home"
    (home / "vault").mkdir(parents=True)
    _seed_rounds(home / "vault" / "realm.db", [1.0, 1.0])  # the untrained DIO fails the third
    trainer = trainer_factory(skills_config(skill_folder(tmp_path), eval_every=3), max_steps=3, home=home).start()
    trainer.join()
    assert trainer.state.skills.skills[0].level == 1
    assert SkillStore(home / "vault" / "realm.db").level("bin") == (1, 0)


def test_playing_mix_holds_each_later_skill_until_the_one_before_reaches_the_unlock_level():
    from trainer.skills import playing_mix

    weights = {"bin": 1.0, "sy": 0.5, "qa": 0.25}
    levels = {"bin": 1, "sy": 1, "qa": 1}
    played: set[str] = set()

    def mix(unlock_level=2):
        return playing_mix(weights, levels.__getitem__, played.__contains__, unlock_level)

    assert mix() == ({"bin": 1.0}, {"sy": ("bin", 2), "qa": ("sy", 2)})
    assert mix(unlock_level=1) == (weights, {})
    levels["bin"] = 2
    assert mix() == ({"bin": 1.0, "sy": 0.5}, {"qa": ("sy", 2)})
    levels["sy"] = 3
    assert mix() == (weights, {})
    levels.update(bin=1, sy=1)
    played.add("qa")  # eval rounds on record: it keeps playing whatever the levels before it
    assert mix() == ({"bin": 1.0, "qa": 0.25}, {"sy": ("bin", 2)})


def _sy_too(folder: Path) -> Path:
    """Adds the shipped sy.yaml with a small probe to ``folder``."""
    raw = yaml.safe_load((SKILLS_DIR / "sy.yaml").read_text(encoding="utf-8"))
    raw["eval"].update(probe_size=4, max_new_tokens=4)
    (folder / "sy.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return folder


def test_a_locked_skill_is_neither_trained_nor_evaluated_until_it_joins(trainer_factory, tmp_path):
    folder = _sy_too(skill_folder(tmp_path))
    trainer = trainer_factory(skills_config(folder, mix=["bin", "sy"], eval_every=3), max_steps=6).start()
    assert trainer.join() == 0
    bin_, sy = trainer.state.skills.skills
    assert (sy.id, sy.waits_for, sy.waits_level, sy.next_eval_step, sy.history) == ("sy", "bin", 2, 0, ())
    assert (bin_.waits_for, [p.step for p in bin_.history if p.level == 1]) == ("", [3, 6])
    home = tmp_path / "home"
    assert sorted((home / "quests" / "lineage").glob("idle-bin-*.meta.json"))
    assert not sorted((home / "quests" / "lineage").glob("idle-sy-*.meta.json"))
    assert SkillStore(home / "vault" / "realm.db").history("sy") == []


def test_a_locked_skill_joins_when_the_one_before_levels_up_and_stays_after_a_restart(trainer_factory, tmp_path):
    """BIN's rule passes any score and two passing rounds are on record, so its third round (step
    3) lifts it to L2; SY joins then and its first eval round is the next one (step 6)."""
    home = tmp_path / "home"
    (home / "vault").mkdir(parents=True)
    _seed_rounds(home / "vault" / "realm.db", [1.0, 1.0])
    folder = _sy_too(skill_folder(tmp_path, threshold=0.0, probe_threshold=0.0, stratum_floor=0.0))
    config = skills_config(folder, mix=["bin", "sy"], eval_every=3, corrections=False)
    trainer = trainer_factory(config, max_steps=6, home=home).start()
    assert trainer.join() == 0
    bin_, sy = trainer.state.skills.skills
    assert bin_.level == 2 and (sy.waits_for, sy.level) == ("", 1)
    assert [p.step for p in sy.history if p.level == 1] == [6]
    texts = [line.text for line in every_line(trainer.state)]
    assert "skill sy joins DIO's training: bin reached L2" in texts, texts
    assert [m.text for m in trainer.state.milestones if m.kind == "skill-unlock"] == [
        "sy joined the training: bin reached level 2"
    ]
    # a restart with a stricter unlock level keeps SY playing: it has eval rounds on record
    _clear_queue(home)
    stricter = skills_config(folder, mix=["bin", "sy"], eval_every=1000, unlock_level=5)
    again = trainer_factory(stricter, max_steps=1, home=home).start()
    assert again.join() == 0
    assert [s.waits_for for s in again.state.skills.skills] == ["", ""]


def test_a_bad_skill_yaml_disables_skills_with_a_notice_and_training_goes_on(trainer_factory, tmp_path):
    folder = tmp_path / "skills"
    folder.mkdir()
    (folder / "bin.yaml").write_text("id: bin\nname: B\ngenerator: bin\nmax_level: two\nlevels: {1: {}}\n")
    trainer = trainer_factory(skills_config(folder), max_steps=2).start()
    assert trainer.join() == 0
    errors = [line.text for line in every_line(trainer.state) if line.level == "error"]
    assert any("bin.yaml: max_level" in text for text in errors), errors
    assert trainer.state.hero.steps == 2  # the placeholder idle quest kept DIO training


def test_a_quest_generated_on_request_is_queued_with_lineage_and_bad_asks_are_refused(trainer_factory, tmp_path):
    from conftest import wait_for

    from realm.bus import RequestFailed
    from realm.protocol import QuestGenerateRequest, QuestListRequest

    config = skills_config(skill_folder(tmp_path), eval_every=1000)
    trainer = trainer_factory(msgspec.structs.replace(config, idle=msgspec.structs.replace(config.idle, enabled=False)))
    trainer.start()
    client = trainer.client
    wait_for(lambda: trainer.state.skills.skills, timeout=60, what="the skills to load")
    reply = client.request(QuestGenerateRequest(skill="bin", level=2, count=12, priority="high", seed="s1"))
    assert reply.message.startswith("queued bin-L2-12x-s1.jsonl (high)")
    for bad, why in (
        (QuestGenerateRequest(skill="nope", level=1), "no skill 'nope'; this trainer knows bin"),
        (QuestGenerateRequest(skill="bin", level=31), "levels 1..30, not 31"),
        (QuestGenerateRequest(skill="bin", level=1, count=0), "between 1 and 10000, not 0"),
    ):
        try:
            client.request(bad)
        except RequestFailed as exc:
            assert why in str(exc)
        else:
            raise AssertionError(f"{bad} was not refused")
    home = tmp_path / "home"
    meta = json.loads((home / "quests" / "lineage" / "bin-L2-12x-s1.jsonl.meta.json").read_text())
    assert meta["kind"] == "asked" and meta["level"] == 2 and meta["examples"] == 12 and meta["source"] == "generated"
    wait_for(
        lambda: any(r.name == "bin-L2-12x-s1.jsonl" and r.outcome == "done" for r in trainer.state.board.recent),
        timeout=120,
        what="the generated quest to be trained",
    )
    assert [r.source for r in trainer.state.board.recent if r.name == "bin-L2-12x-s1.jsonl"] == ["generated"]
    assert [r.title for r in trainer.state.board.recent if r.name == "bin-L2-12x-s1.jsonl"] == [
        "BIN L2 · 2-5-bit add, logic"
    ]
    listing = {q.name: q.state for q in client.request(QuestListRequest()).quests}
    assert listing["bin-L2-12x-s1.jsonl"] == "done"
    counts = {(c.generator, c.validator): c.count for c in trainer.state.skills.lineage}
    assert counts[(f"bin@{get_skill('bin').family.version}", "")] >= 12
    trainer.stop()


def test_a_correction_quest_leaves_out_items_longer_than_max_length_and_never_fails_on_length(
    trainer_factory, tmp_path
):
    """SY's L1 puzzles run from under to over 118 tokens, so an untrained DIO's wrong probe items
    include both: only the fitting ones are trained, and the quest is not failed."""
    folder = tmp_path / "skills"
    folder.mkdir()
    raw = yaml.safe_load((SKILLS_DIR / "sy.yaml").read_text(encoding="utf-8"))
    raw["eval"].update(probe_size=12, max_new_tokens=4)
    (folder / "sy.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    config = skills_config(folder, mix=["sy"], eval_every=2, eval_next_level=False)
    limit = 118  # SY L1 puzzles take 114-123 tokens as chats
    config = msgspec.structs.replace(config, train=msgspec.structs.replace(config.train, max_length=limit))
    trainer = trainer_factory(config, max_steps=6).start()
    assert trainer.join() == 0
    home = tmp_path / "home"
    counts = {(c.generator, c.validator): c.count for c in trainer.state.skills.lineage}
    assert counts.get(("self_correction", "too_long"), 0) > 0, counts
    tokenizer = load_tokenizer(config.model.name)
    corrections = list((home / "quests").rglob("correction-sy-L1-*.jsonl"))
    assert corrections
    for quest in corrections:
        lines = [json.loads(line)["messages"] for line in quest.read_text(encoding="utf-8").splitlines()]
        assert lines and all(len(encode_chat(tokenizer, m, 10_000).input_ids) <= limit for m in lines)
    failed = [r for r in trainer.state.board.recent if r.name.startswith("correction-") and r.outcome == "failed"]
    assert not failed, failed


def test_an_idle_quest_made_again_at_the_same_step_is_a_new_draw(tmp_path):
    """The loop makes another idle quest at the same step only when the last one made no step (it
    failed whole): that one must be drawn afresh, not the same failing quest again."""
    from realm.home import Home
    from trainer import lineage
    from trainer.engine import Engine
    from trainer.skills import SkillRunner

    config = skills_config(skill_folder(tmp_path))
    home = Home(tmp_path / "home").ensure()
    runner = SkillRunner(config, home, Engine(config), emit=lambda event: None)
    runner.start()
    folder = home.queued("low")
    first, again = (runner.write_idle_quest(folder, 24) for _ in range(2))
    assert first.name != again.name and first.read_text() != again.read_text()
    runner.engine.step += 1
    later = runner.write_idle_quest(folder, 24)
    assert later.name == "idle-bin-L1-00000001.jsonl"
    assert [lineage.read(home, path.name)["seed"] for path in (first, again, later)] == ["idle:0", "idle:0.1", "idle:1"]
