"""Batched greedy generation and ``realm skills``."""

from __future__ import annotations

import json

import pytest
import torch

from realm.cli.main import main
from realm.config import RealmConfig, TrainConfig
from realm.model.chatml import IM_END
from realm.model.greedy import generate
from realm.skills import curriculum
from realm.skills.registry import get_skill

BIN = get_skill("bin")


@pytest.fixture(scope="module")
def trained():
    """DIO-nano after a few real steps on BIN L1, so its greedy answers are not all alike."""
    from trainer.engine import Engine

    engine = Engine(RealmConfig(train=TrainConfig(batch_size=16, max_length=48, warmup_steps=2, threads=1)))
    examples = engine.encode([e["messages"] for e in curriculum.training_examples(BIN, 2, 192, seed=0).examples])
    for batch in engine.batches(examples, "t"):
        engine.train_step(batch)
    return engine


def test_batched_left_padded_generation_equals_one_prompt_at_a_time(trained):
    samples = curriculum.probe(BIN, 3, 12, seed=0)  # mixed prompt lengths: padding matters
    prompts = [curriculum.chat(BIN, s) for s in samples]
    batched = generate(trained.model, trained.tokenizer, prompts, max_new_tokens=12, batch_size=8)
    single = [generate(trained.model, trained.tokenizer, [p], max_new_tokens=12)[0] for p in prompts]
    assert batched == single
    assert all(IM_END not in text for text in batched)


def test_generation_matches_the_models_own_greedy_decoding(trained):
    from realm.model.greedy import prompt_ids

    messages = curriculum.chat(BIN, curriculum.eval_set(BIN, 2)[0])
    ids = prompt_ids(trained.tokenizer, messages)
    with torch.no_grad():
        seq = torch.tensor([ids])
        for _ in range(6):  # no cache, full recompute: the reference
            seq = torch.cat([seq, trained.model(seq).logits[:, -1:].argmax(-1)], dim=1)
    reference = trained.tokenizer.decode(seq[0, len(ids) :].tolist()).split(IM_END)[0]
    assert generate(trained.model, trained.tokenizer, [messages], max_new_tokens=6)[0] == reference


def test_generation_stops_at_im_end_once_the_model_has_learned_to():
    from trainer.engine import Engine

    engine = Engine(RealmConfig(train=TrainConfig(batch_size=8, max_length=32, warmup_steps=1, threads=1, lr=5e-3)))
    chat = [{"role": "user", "content": "say ok"}, {"role": "assistant", "content": "ok"}]
    batch = engine.encode([chat] * 8)
    for _ in range(40):
        engine.train_step(batch)
    assert generate(engine.model, engine.tokenizer, [chat[:1]], max_new_tokens=20) == ["ok"]


# ------------------------------------------------------------------ CLI


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_skills_list_and_sample(capsys, tmp_path):
    code, out, _ = run(capsys, "skills", "list", "--json", "--home", str(tmp_path))
    assert code == 0
    [skill] = [s for s in json.loads(out)["skills"] if s["id"] == "bin"]
    assert skill["level"] == 1 and skill["max_level"] == 30 and skill["name"] == "Binary Alchemy"
    code, out, _ = run(
        capsys, "skills", "sample", "bin", "--level", "9", "-n", "4", "--seed", "5", "--json", "--home", str(tmp_path)
    )
    document = json.loads(out)
    assert code == 0 and len(document["samples"]) == 4
    assert all(s["grade"]["score"] == 1.0 and s["prompt"] and s["answer"] for s in document["samples"])
    _, again, _ = run(
        capsys, "skills", "sample", "bin", "--level", "9", "-n", "4", "--seed", "5", "--json", "--home", str(tmp_path)
    )
    assert again == out
    code, out, _ = run(capsys, "skills", "sample", "bin", "--level", "1", "--home", str(tmp_path))
    assert code == 0 and "self-grade 1.0" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["skills", "sample", "nope", "--level", "1"], "no skill 'nope'"),
        (["skills", "sample", "bin", "--level", "31"], "levels 1..30, not 31"),
        (["skills", "eval", "bin"], "no checkpoint in"),
    ],
)
def test_skills_commands_fail_clearly(capsys, tmp_path, argv, message):
    code, _, err = run(capsys, *argv, "--home", str(tmp_path))
    assert code == 1 and message in err


def _vault_checkpoint(home, engine, step, suite=None):
    """A real checkpoint of ``engine`` saved as ``step`` and recorded in the realm's ledger."""
    from datetime import datetime

    from realm.home import Home
    from realm.vault.checkpoints import read_sidecar, write_checkpoint
    from realm.vault.ledger import Ledger

    paths = Home(home).ensure()
    folder = write_checkpoint(paths.checkpoints, step, datetime.now(), engine.save, {"time": float(step)})
    ledger = Ledger(paths.db)
    ledger.record(folder, read_sidecar(folder))
    if suite is not None:
        ledger.record_score(step, suite, when=float(step))
    ledger.close()
    return folder


def test_skills_eval_and_stats_read_the_realm(capsys, tmp_path, trained):
    from realm.protocol import SuiteScore
    from realm.skills.history import EvalRow, SkillStore

    home = tmp_path / "home"
    champion = _vault_checkpoint(home, trained, trained.step, SuiteScore(version="v1", loss=1.0, accuracy=0.5))
    latest = _vault_checkpoint(home, trained, trained.step + 1)
    store = SkillStore(home / "vault" / "realm.db")
    store.record(EvalRow("bin", 1, 1, 50, 0.0, 0.6, 0.5, {"add": 0.5}, [], 40))
    store.count("bin@1.0.0", "", 256)
    store.count("bin@1.0.0", "eval_overlap", 9)
    store.close()
    code, out, _ = run(capsys, "skills", "eval", "bin", "--json", "--home", str(home))
    document = json.loads(out)
    assert code == 0 and [r["level"] for r in document["results"]] == [1, 2]
    assert all(len(r["items"]) == 5 and 0.0 <= r["accuracy"] <= 1.0 for r in document["results"])
    assert document["checkpoint"] == latest.name
    for ref, folder in (("champion", champion), ("latest", latest), (str(trained.step), champion)):
        code, out, _ = run(
            capsys, "skills", "eval", "bin", "--checkpoint", ref, "--level", "30", "--json", "--home", str(home)
        )
        assert code == 0 and json.loads(out)["checkpoint"] == folder.name, ref
    for level in ("0", "31"):  # 0 evaluated the level reached instead
        code, out, err = run(capsys, "skills", "eval", "bin", "--level", level, "--home", str(home))
        assert (code, out) == (1, "") and f"skill 'bin' has levels 1..30, not {level}" in err, level
    code, out, err = run(capsys, "skills", "eval", "bin", "--checkpoint", "999", "--home", str(home))
    assert code == 1 and "no checkpoint 999" in err
    for bad in ("best", "../etc"):
        code, out, err = run(capsys, "skills", "eval", "bin", "--checkpoint", bad, "--home", str(home))
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, bad
        assert f"--checkpoint {bad!r} is not a checkpoint reference" in err and "latest or champion" in err
    code, out, _ = run(capsys, "skills", "stats", "--json", "--home", str(home))
    stats = json.loads(out)
    assert stats["skills"][0]["latest_by_level"]["1"]["accuracy"] == 0.6
    assert stats["skills"][0]["probe_band"]["items"] == 40 and stats["skills"][0]["probe_band"]["accuracy"] == 0.5
    assert {"generator": "bin@1.0.0", "validator": "eval_overlap", "count": 9} in stats["lineage"]
    code, out, _ = run(capsys, "skills", "stats", "--home", str(home))
    assert "eval_overlap 9 (3.4%)" in out
    assert "L1 probe 50% (35-65%, 40 items in 1 round)" in out
