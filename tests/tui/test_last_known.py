"""Honest resume: the TUI shows a data root's last known state from its files, marked as such,
until the trainer answers; never the zeros of a new game when the home has history."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from realm.game.hero import hero_stats
from realm.home import Home
from realm.protocol import Envelope, HeroState, QuestFinished, QuestResult, RealmState, SuiteScore
from realm.skills.history import EvalRow, SkillStore
from realm.tui.app import RealmApp
from realm.tui.last_known import read_last_known
from realm.vault.ledger import Ledger
from trainer.chronicle import Chronicle

from .conftest import text_of

pytestmark = pytest.mark.timeout(120)
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def write_home(root: Path) -> Path:
    """A data root as a trainer leaves it: metrics log, finished quests, ledger, chronicle."""
    home = Home(root).ensure()
    with (home.logs / "metrics.jsonl").open("w") as log:
        for step in range(1, 1201):
            log.write(
                json.dumps({"kind": "step", "step": step, "loss": 2.0 / (1 + step / 300), "time": T0 + step}) + "\n"
            )
        log.write('{"kind": "step", "step": 1201, "lo')  # a torn last line
    for n in range(7):
        (home.done / f"idle-bin-L1-{n:08d}.jsonl").write_text("{}\n")
    (home.done / "idle-bin-L1-00000000.jsonl.reason.txt").write_text("not a quest\n")
    ledger = Ledger(home.db)
    ledger.record(
        home.checkpoints / "checkpoint-1000", {"step": 1000, "name": "checkpoint-1000-20260101-0016", "time": T0 + 1000}
    )
    ledger.record_score(1000, SuiteScore(version="v1", loss=0.8, accuracy=0.3), T0 + 1001)
    ledger.close()
    chronicle = Chronicle(home.db)
    chronicle.unlock_new(RealmState(hero=HeroState(steps=1)), "old-run", T0 + 1)
    for seq in range(1, 6):
        result = QuestResult(name=f"idle-bin-L1-{seq:08d}.jsonl", outcome="done", steps=15, title="BIN L1 · 256 chats")
        won = QuestFinished(result=result)
        chronicle.record(Envelope(run="old-run", seq=seq, time=T0 + 200 * seq, event=won), 200 * seq)
        chronicle.reach_milestones(won, 200 * seq, "old-run", T0 + 200 * seq)
    store = SkillStore(home.db)
    store.set_level("bin", 2, 900)
    for step, level, accuracy in ((800, 1, 0.9), (1000, 2, 0.25), (1100, 2, 0.4)):
        store.record(EvalRow("bin", level, level, step, T0 + step, accuracy, None, {}, []))
    store.close()
    chronicle.record_purchase("old-run", T0 + 1190, "eval", 200, "an eval round of bin")
    chronicle.close()
    return root


def test_the_last_known_state_is_read_from_the_files_a_trainer_writes(tmp_path):
    assert read_last_known(tmp_path / "new-game") is None
    known = read_last_known(write_home(tmp_path / "home"), ("bin",))
    hero = known.state.hero
    assert hero.steps == 1200 and hero.quests_completed == 7 and hero.milestones == 2 and hero.gold_spent == 200
    stats = hero_stats(known.state)
    assert stats.gold == 500 and stats.defense == pytest.approx(1 / 0.8) and stats.atk > 0
    assert stats.acc == 0.4 and known.state.skills.skills[0].level == 2  # the latest round at the current level
    assert [a.name for a in known.state.achievements] == ["First Blood"]
    assert [m.text for m in known.state.milestones] == ["3 quests won in a row", "5 quests won in a row"]
    assert known.time == T0 + 1200
    assert [line.text for line in known.state.log][-1] == "Victory: BIN L1 · 256 chats — 15 steps"


def resumed_app(root: Path, now: float) -> RealmApp:
    return RealmApp(
        f"ipc://{root}/run/pub", f"ipc://{root}/run/ctl",
        clock=lambda: now, last_known=read_last_known(root, ("bin",)), follow_bus=False,
    )  # fmt: skip


async def test_the_hero_screen_shows_the_last_known_state_marked_until_the_trainer_answers(tmp_path):
    root = write_home(tmp_path / "home")
    app = resumed_app(root, T0 + 1200 + 180)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        status = text_of(app.screen.query_one("StatusBar"))
        assert "last known · 3 min ago (from disk, not live)" in status
        stats = text_of(app.screen.query_one("#hero-stats"))
        assert "Gold 500" in stats and "ATK -" not in stats and "Quests 7" in stats and "ACC 40%" in stats
        assert "XP 1,200" in str(app.screen.query_one("#hero-xp").render())


def test_resumed_hero_screen(snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    root = write_home(tmp_path / "home")
    assert snap_compare(resumed_app(root, T0 + 1200 + 180), press=["wait:300"], terminal_size=(80, 24))


async def test_a_real_trainers_home_resumes_with_its_numbers(trainer_factory, tmp_path):
    from conftest import fast_config, write_chat_quest

    home = tmp_path / "home"
    write_chat_quest(home / "quests" / "inbox" / "words.jsonl", n=16)
    trainer = trainer_factory(fast_config(checkpoint_every=10), max_steps=30, home=home).start()
    assert trainer.join() == 0
    live = trainer.state
    known = read_last_known(home)
    assert known.state.hero.steps == live.hero.steps == 30
    assert known.state.hero.quests_completed == live.hero.quests_completed
    assert known.state.hero.milestones == live.hero.milestones >= 1
    assert [c.step for c in known.state.vault.checkpoints] == [c.step for c in live.vault.checkpoints]
    assert hero_stats(known.state).gold == hero_stats(live).gold
    assert known.state.hero.loss_ema == pytest.approx(live.hero.loss_ema)
