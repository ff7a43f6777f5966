"""The trainer's journal, achievements and live config (the Armory), for real: DIO-nano trains."""

from __future__ import annotations

import pytest
from conftest import fast_config, wait_for

from realm.bus import RequestFailed
from realm.game.achievements import RULES, newly_earned
from realm.protocol import Ack, ConfigUpdateRequest, HeroState, Journal, JournalRequest, PauseRequest, ResumeRequest
from realm.state import RealmState


def test_journal_keeps_notable_events_and_answers_since_a_mark(trainer_factory, tmp_path):
    home = tmp_path / "home"
    config = fast_config()
    config = type(config)(train=config.train, game=type(config.game)(steps_per_level=5))
    first = trainer_factory(config, max_steps=12, home=home).start()
    assert first.join() == 0
    run1 = first.daemon.run_id

    second = trainer_factory(config, home=home).start()
    wait_for(lambda: second.state.hero.steps >= 13, what="the second run to train")
    everything = second.client.request(JournalRequest())
    assert isinstance(everything, Journal)
    kinds = [e.kind for e in everything.entries]
    assert "trainer" in kinds and "level" in kinds and "checkpoint" in kinds and "achievement" in kinds
    levels = [e for e in everything.entries if e.kind == "level" and e.run == run1]
    assert [e.step for e in levels] == [5, 10]  # one entry per level, not one per step
    assert len(everything.entries) < 40

    # a client that last saw run1 at its first level-up asks what happened since
    mark = levels[0]
    since = second.client.request(JournalRequest(run=run1, since_seq=mark.seq, since_time=mark.time))
    assert mark.id not in [e.id for e in since.entries]
    assert any(e.run == run1 and e.step == 10 for e in since.entries)
    assert any(e.run == second.daemon.run_id and e.kind == "trainer" for e in since.entries)
    assert all(e.id > mark.id for e in since.entries)
    second.stop()


def test_achievements_are_earned_once_and_restored_after_a_restart(trainer_factory, tmp_path):
    home = tmp_path / "home"
    first = trainer_factory(max_steps=3, home=home).start()
    assert first.join() == 0
    earned = {a.id for a in first.state.achievements}
    assert "first-blood" in earned and "first-save" in earned

    second = trainer_factory(max_steps=1, home=home).start()
    assert second.join() == 0
    ids = [a.id for a in second.state.achievements]
    assert len(ids) == len(set(ids)), "an achievement was earned twice"
    assert earned <= set(ids)
    first_blood = [a for a in second.state.achievements if a.id == "first-blood"]
    assert first_blood[0].step <= 3  # the original unlock, restored, not a new one


def test_rules_are_pure_and_skip_what_is_earned():
    state = RealmState(hero=HeroState(steps=150, loss_ema=0.5, quests_completed=1))
    fresh = {r.id for r in newly_earned(state, set())}
    assert {"first-blood", "centurion", "under-one", "first-quest"} <= fresh
    assert "thousand-cuts" not in fresh
    assert newly_earned(state, {r.id for r in RULES}) == []
    assert len(RULES) >= 15


def test_armory_applies_a_safe_key_between_steps_and_refuses_bad_ones(trainer_factory):
    trainer = trainer_factory(fast_config(warmup_steps=1)).start()
    wait_for(lambda: trainer.state.hero.steps >= 2, what="a few steps")
    assert {f.key: f.kind for f in trainer.state.config}["train.lr"] == "safe"

    reply = trainer.client.request(ConfigUpdateRequest(key="train.lr", value="1e-4"))
    assert isinstance(reply, Ack) and "train.lr" in reply.message
    wait_for(lambda: trainer.state.battle.lr == pytest.approx(1e-4), what="the new lr in the step metrics")
    assert {f.key: f.value for f in trainer.state.config}["train.lr"] == "0.0001"
    assert any("armory: train.lr" in line.text for line in trainer.state.log)

    refusals = [
        (ConfigUpdateRequest(key="train.lr", value="-1"), "lr"),
        (ConfigUpdateRequest(key="train.lr", value=".inf"), "train.lr: must be a finite number, not inf"),
        (ConfigUpdateRequest(key="train.lr", value=".nan"), "train.lr: must be a finite number, not nan"),
        (ConfigUpdateRequest(key="train.val_every", value="often"), "train.val_every"),
        (ConfigUpdateRequest(key="train.nope", value="1"), "no such config key"),
        (ConfigUpdateRequest(key="train.grad_accum", value="2"), "cannot change while the trainer runs"),
        (ConfigUpdateRequest(key="train.max_length", value="32"), "explicit confirmation"),
        (ConfigUpdateRequest(key="model.name", value="Qwen/Qwen3-0.6B", confirm=True), "cannot change while"),
    ]
    for request, words in refusals:
        with pytest.raises(RequestFailed, match=words):
            trainer.client.request(request)
    assert trainer.daemon.config.train.max_length == 64

    confirmed = trainer.client.request(ConfigUpdateRequest(key="train.max_length", value="48", confirm=True))
    assert isinstance(confirmed, Ack)
    # while paused, a change still lands (between steps is now)
    trainer.client.request(PauseRequest())
    wait_for(lambda: trainer.state.battle.status == "paused", what="paused")
    trainer.client.request(ConfigUpdateRequest(key="train.val_every", value="7"))
    wait_for(lambda: trainer.daemon.config.train.val_every == 7, what="val_every applied while paused")
    assert trainer.daemon.config.train.max_length == 48
    trainer.client.request(ResumeRequest())
    steps = trainer.state.hero.steps
    wait_for(lambda: trainer.state.hero.steps > steps, what="training goes on")
    assert any(a.id == "tinkerer" for a in trainer.state.achievements)
    trainer.stop()
