"""Skill evals handed to an oracle (``skills.eval_on: oracle``): a real trainer and a real oracle
on one home, and the local fallback when the oracle is down."""

from __future__ import annotations

import msgspec
import pytest

from realm.config import BusConfig, ModelConfig
from realm.model.greedy import generate
from realm.model.loading import load_model
from realm.oracle.client import OracleRefused
from realm.protocol import PauseRequest, Sampling
from realm.skills import curriculum
from realm.skills.grading import accuracy, evaluate
from realm.skills.history import SkillStore
from realm.skills.registry import load_skills
from realm.state import every_line
from realm.vault.checkpoints import complete_checkpoints
from tests.conftest import wait_for
from tests.oracle.conftest import add_checkpoint, oracle_config
from tests.skills.test_trainer_skills import skill_folder, skills_config


def oracle_eval_config(tmp_path, **skills):
    config = skills_config(skill_folder(tmp_path), eval_on="oracle", **skills)
    return msgspec.structs.replace(config, bus=BusConfig(timeout_s=0.5, retries=0))


def bin_chats(skill, level: int) -> list[list[dict]]:
    samples = curriculum.eval_set(skill, level) + curriculum.eval_set(skill, level + 1)
    return [curriculum.prompt_messages(skill, s) for s in samples]


def test_the_eval_form_answers_exactly_as_the_trainer_generates(tmp_path, oracle_factory):
    home = tmp_path / "home"
    folder = add_checkpoint(home, 4)  # untrained weights: long, odd answers, special tokens and all
    skill = load_skills(skill_folder(tmp_path))["bin"]
    chats = bin_chats(skill, 1)
    oracle = oracle_factory(oracle_config(load_on_start=""), home=home)

    result = oracle.client.generate([], Sampling(max_new_tokens=24), checkpoint="4", chats=chats)

    model, tokenizer = load_model(ModelConfig(device="cpu"), checkpoint=folder)
    assert list(result.texts) == generate(model, tokenizer, chats, max_new_tokens=24)
    assert result.checkpoint == folder.name


def test_a_generate_request_needs_prompts_or_well_formed_chats(tmp_path, oracle_factory):
    home = tmp_path / "home"
    add_checkpoint(home, 4)
    oracle = oracle_factory(home=home)
    with pytest.raises(OracleRefused, match="prompts or chats"):
        oracle.client.generate(["hi"], chats=[[{"role": "user", "content": "hi"}]])
    with pytest.raises(OracleRefused, match="chat 1: message 0 has role 'wizard'"):
        oracle.client.generate([], chats=[[{"role": "user", "content": "a"}], [{"role": "wizard", "content": "b"}]])
    assert oracle.client.ping()  # and it serves on


def test_evals_on_the_oracle_equal_local_greedy_evals_of_the_same_checkpoint(tmp_path, trainer_factory, oracle_factory):
    home = tmp_path / "home"
    config = oracle_eval_config(tmp_path)
    oracle_factory(oracle_config(config, load_on_start=""), home=home)
    trainer = trainer_factory(config, max_steps=10, home=home).start()
    assert trainer.join() == 0  # the round handed off at step 10 is collected before the trainer exits

    state = trainer.state
    [skill_state] = state.skills.skills
    steps = [p.step for p in skill_state.history if p.level == 1]
    # the round of step 5 always; step 10's only if step 5's answers were back by then (one in flight)
    assert steps in ([5], [5, 10])
    on_oracle = [line.text for line in every_line(state) if "answers from oracle local" in line.text]
    assert len(on_oracle) == len(steps), [line.text for line in every_line(state)]
    assert not [line.text for line in every_line(state) if "failed" in line.text]

    skill = load_skills(skill_folder(tmp_path))["bin"]
    store = SkillStore(home / "vault" / "realm.db")
    rows = {(r.level, r.step): r for r in store.history("bin")}
    store.close()
    folders = {int(f.name.split("-")[1]): f for f in complete_checkpoints(home / "vault" / "checkpoints")}
    for step in steps:  # each round's checkpoint, evaluated here the way a local round does it
        model, tokenizer = load_model(ModelConfig(device="cpu"), checkpoint=folders[step])
        frozen, preview = curriculum.eval_set(skill, 1), curriculum.eval_set(skill, 2)
        fresh = curriculum.probe(skill, 1, skill.eval.probe_size, seed=step)
        local = evaluate(skill, model, tokenizer, frozen + preview + fresh)
        at, nxt, probe = local[:5], local[5:10], local[10:]
        assert [i["response"] for i in rows[(1, step)].items] == [v.response for v in at]
        assert [i["response"] for i in rows[(2, step)].items] == [v.response for v in nxt]
        assert rows[(1, step)].accuracy == accuracy(at) and rows[(2, step)].accuracy == accuracy(nxt)
        assert rows[(1, step)].probe == accuracy(probe)


def test_an_oracle_that_is_down_means_a_local_eval_and_a_warning(tmp_path, trainer_factory):
    trainer = trainer_factory(oracle_eval_config(tmp_path), max_steps=10).start()
    assert trainer.join() == 0

    state = trainer.state
    warnings = [
        line.text
        for line in every_line(state)
        if line.level == "warning" and "oracle eval of step 5 failed" in line.text
    ]
    assert warnings and "no oracle answered" in warnings[0] and "evaluated on the trainer" in warnings[0]
    [skill_state] = state.skills.skills
    rounds = [p.step for p in skill_state.history if p.level == 1]
    assert rounds and rounds[0] > 5  # the round of step 5, run here once the oracle had failed
    assert not [line.text for line in every_line(state) if "answers from oracle" in line.text]


def test_an_unknown_eval_oracle_is_an_error_notice_and_evals_run_locally(tmp_path, trainer_factory):
    trainer = trainer_factory(oracle_eval_config(tmp_path, eval_oracle="atlantis"), max_steps=5).start()
    assert trainer.join() == 0
    errors = [line.text for line in every_line(trainer.state) if line.level == "error"]
    assert any("no oracle node 'atlantis'" in text and "run on the trainer" in text for text in errors), errors
    [skill_state] = trainer.state.skills.skills
    assert [p.step for p in skill_state.history if p.level == 1] == [5]


def test_a_round_still_on_the_oracle_at_stop_is_evaluated_here(tmp_path, trainer_factory, oracle_factory, monkeypatch):
    monkeypatch.setattr("trainer.skill_oracle.SHUTDOWN_WAIT_S", 0.0)  # stop at once: the oracle cannot have answered
    home = tmp_path / "home"
    config = oracle_eval_config(tmp_path)
    oracle_factory(oracle_config(config, load_on_start=""), home=home)
    trainer = trainer_factory(config, max_steps=5, home=home).start()
    assert trainer.join() == 0

    state = trainer.state
    assert any(
        "no answer within 0s of the trainer stopping" in line.text
        for line in every_line(state)
        if line.level == "warning"
    )
    [skill_state] = state.skills.skills
    assert [p.step for p in skill_state.history if p.level == 1] == [5]


def test_retention_keeps_the_checkpoint_an_oracle_round_is_reading(tmp_path, trainer_factory, oracle_factory):
    """A checkpoint every step, only the newest kept, and an oracle that comes up only after a few
    more steps (a busy or slow-loading one): the round's checkpoint must still be there when
    the oracle reads it, and retention's again once the round is collected."""
    home = tmp_path / "home"
    config = oracle_eval_config(tmp_path)
    config = msgspec.structs.replace(
        config,
        bus=BusConfig(timeout_s=30, retries=0),  # the round's request waits for the late oracle
        train=msgspec.structs.replace(config.train, checkpoint_every=1),
        vault=msgspec.structs.replace(config.vault, keep_last=1, keep_best=0),
    )
    trainer = trainer_factory(config, max_steps=12, home=home).start()
    wait_for(lambda: trainer.state.hero.steps >= 8, timeout=60, what="step 8")
    oracle_factory(oracle_config(config, load_on_start=""), home=home)
    assert trainer.join() == 0

    log = [line.text for line in every_line(trainer.state)]
    assert any("at step 5 (answers from oracle local)" in text for text in log), log
    assert not [text for text in log if "oracle eval of step" in text and "failed" in text]
    kept = [int(f.name.split("-")[1]) for f in complete_checkpoints(home / "vault" / "checkpoints")]
    assert 5 not in kept and kept[-1] == 12  # step 5's went at the first save after its round was collected


def test_a_round_the_oracle_answers_while_the_trainer_is_paused_is_recorded_at_once(
    tmp_path, trainer_factory, oracle_factory
):
    """Paused with a round on an oracle that comes up later: its answers are recorded while the
    trainer stays paused, not held until the resume."""
    home = tmp_path / "home"
    config = oracle_eval_config(tmp_path)
    config = msgspec.structs.replace(config, bus=BusConfig(timeout_s=30, retries=0))
    trainer = trainer_factory(config, max_steps=40, home=home).start()
    wait_for(lambda: trainer.state.hero.steps >= 6, timeout=60, what="step 6: the round of step 5 is out")
    trainer.client.request(PauseRequest())
    wait_for(lambda: trainer.state.battle.status == "paused", what="the pause")
    paused_at = trainer.state.hero.steps
    oracle_factory(oracle_config(config, load_on_start=""), home=home)

    def recorded():
        [skill_state] = trainer.state.skills.skills
        return [p.step for p in skill_state.history if p.level == 1]

    assert wait_for(recorded, timeout=60, what="the round's result") == [5]
    assert trainer.state.battle.status == "paused" and trainer.state.hero.steps == paused_at
    trainer.stop()
