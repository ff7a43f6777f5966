"""The shop in the real trainer: gold buys a commissioned quest and an extra eval round, is
checked by the trainer, survives a restart and cannot be spent twice."""

from __future__ import annotations

import threading
import uuid

import msgspec
from conftest import wait_for
from test_trainer_skills import skill_folder, skills_config

from realm.bus import RealmClient, RequestFailed
from realm.cli.main import main as cli_main
from realm.game.hero import hero_stats
from realm.protocol import Ack, PauseRequest, QuestListRequest, ShopBuyRequest


def refused(client, request) -> str:
    try:
        client.request(request)
    except RequestFailed as exc:
        return str(exc)
    raise AssertionError(f"{request} was sold")


def without_idle(config):
    return msgspec.structs.replace(config, idle=msgspec.structs.replace(config.idle, enabled=False))


def test_gold_buys_a_real_quest_and_a_real_eval_round_and_is_spent_once(trainer_factory, tmp_path, capsys):
    config = skills_config(skill_folder(tmp_path), eval_every=1000)
    home = tmp_path / "home"

    poor = trainer_factory(without_idle(config), home=home).start()
    wait_for(lambda: poor.state.skills.skills, timeout=60, what="the skills to load")
    assert "eval costs 200 gold; DIO has 0" in refused(poor.client, ShopBuyRequest(item="eval"))
    assert "no item 'sword'; it sells quest, eval" in refused(poor.client, ShopBuyRequest(item="sword"))
    poor.stop()

    trainer = trainer_factory(config, home=home).start()
    client = trainer.client
    wait_for(lambda: hero_stats(trainer.state).gold >= 500, timeout=120, what="500 gold from idle quests")
    bad = ShopBuyRequest(item="quest", skill="bin", level=31)
    assert "nothing spent: generate bin L31: skill 'bin' has levels 1..30" in refused(client, bad)

    gold = hero_stats(trainer.state).gold
    reply = client.request(ShopBuyRequest(item="quest", skill="bin", level=2, request_id="buy-1"))
    assert reply.message.startswith("bought for 300 gold") and "queued bin-L2-64x-" in reply.message
    assert client.request(ShopBuyRequest(item="quest", skill="bin", level=2, request_id="buy-1")) == reply  # a retry
    names = [q.name for q in client.request(QuestListRequest()).quests if q.name.startswith("bin-L2-64x-")]
    assert len(names) == 1, names
    assert trainer.state.hero.gold_spent == 300 and hero_stats(trainer.state).gold >= gold - 300

    evaluated = len(trainer.state.skills.skills[0].history)
    assert client.request(ShopBuyRequest(item="eval")).message.startswith("bought for 200 gold")
    wait_for(lambda: len(trainer.state.skills.skills[0].history) > evaluated, timeout=60, what="the eval round")
    assert trainer.state.hero.steps < 1000  # the round came from the purchase, not from eval_every

    client.request(PauseRequest())
    wait_for(lambda: trainer.state.battle.status == "paused", timeout=30, what="the pause")
    gold = hero_stats(trainer.state).gold
    affordable = gold // 200
    answers: list = []

    def buy(n: int) -> None:
        other = RealmClient(trainer.control, timeout_s=10.0, retries=1)  # a second TUI
        for _ in range(n):
            try:
                answers.append(other.request(ShopBuyRequest(item="eval", request_id=uuid.uuid4().hex)))
            except RequestFailed as exc:
                answers.append(str(exc))

    buyers = [threading.Thread(target=buy, args=(n,)) for n in (affordable // 2 + 1, affordable - affordable // 2)]
    for b in buyers:
        b.start()
    for b in buyers:
        b.join()
    assert sum(isinstance(a, Ack) for a in answers) == affordable
    assert [a for a in answers if not isinstance(a, Ack)] == [
        f"shop: eval costs 200 gold; DIO has {gold % 200} (100 a quest won)"
    ]
    spent = trainer.state.hero.gold_spent
    assert spent == 500 + 200 * affordable and hero_stats(trainer.state).gold == gold % 200

    capsys.readouterr()
    assert cli_main(["shop", "list", "--home", str(home)]) == 0
    listed = capsys.readouterr().out
    assert max(map(len, listed.splitlines())) <= 80, listed
    assert "quest    300 gold" in listed and f"gold: {gold % 200} (100 a quest won, {spent:,} spent)" in listed
    assert cli_main(["shop", "buy", "eval", "--home", str(home)]) == 1
    assert capsys.readouterr().err == f"realm: shop: eval costs 200 gold; DIO has {gold % 200} (100 a quest won)\n"
    trainer.stop()

    again = trainer_factory(without_idle(config), home=home).start()
    wait_for(lambda: again.state.trainer is not None, what="the restart")
    assert again.state.hero.gold_spent == spent
    assert [m.kind for m in again.state.milestones].count("streak") >= 1  # milestones restored from the chronicle
    again.stop()
