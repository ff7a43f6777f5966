"""The reasoning-gym bridge: a skill whose samples come from a reasoning-gym dataset.

A skill YAML with ``generator: reasoning_gym`` names the dataset in its level params
(``dataset: basic_arithmetic``); every other key of a level is passed to the dataset's config,
so level keyframes with ``interpolate:`` grow the dataset's difficulty smoothly. Grading is the
dataset's own ``score_answer``: the item is recreated from its seed and config, so a sample
needs nothing but its meta to be graded again. reasoning-gym is an optional dependency (in the
``dev`` extra); without it, a skill of this family fails to load with a message saying so.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from realm.skills.base import Grade, Sample, register


def _rg():
    try:
        import reasoning_gym
    except ModuleNotFoundError:
        raise ValueError("the reasoning_gym generator needs reasoning-gym: pip install reasoning-gym") from None
    return reasoning_gym


@lru_cache(maxsize=4096)
def _dataset(dataset: str, seed: int, config_json: str):
    return _rg().create_dataset(dataset, seed=seed, size=1, **json.loads(config_json))


class ReasoningGymFamily:
    id = "reasoning_gym"
    version = "1.0.0"

    def check_params(self, params: Mapping[str, Any]) -> None:
        rg = _rg()
        name = params.get("dataset")
        if not isinstance(name, str):
            raise ValueError("dataset: name a reasoning-gym dataset, e.g. basic_arithmetic")
        config = {k: v for k, v in params.items() if k != "dataset"}
        try:
            rg.create_dataset(name, seed=0, size=1, **config)
        except Exception as exc:  # unknown dataset or a config key it refuses
            raise ValueError(f"dataset {name!r} with {config}: {exc}") from None

    def generate(self, params: Mapping[str, Any], rng: random.Random) -> Sample:
        name = params["dataset"]
        config = {k: v for k, v in params.items() if k != "dataset"}
        config_json = json.dumps(config, sort_keys=True)
        seed = rng.getrandbits(31)
        entry = _dataset(name, seed, config_json)[0]
        meta = {
            "dataset": name,
            "seed": seed,
            "config": config_json,
            "op": str(entry.get("metadata", {}).get("source_dataset", name)),
            "key": f"{name}|{seed}|{config_json}",
        }
        return Sample(prompt=entry["question"], answer=str(entry["answer"]), meta=meta)

    def canonical_key(self, sample: Sample) -> str:
        return " ".join(sample.prompt.split())  # different seeds may write the same question

    def grade(self, sample: Sample, response: str) -> Grade:
        meta = sample.meta
        dataset = _dataset(meta["dataset"], meta["seed"], meta["config"])
        lines = [line.strip() for line in response.strip().splitlines() if line.strip()]
        answer = lines[-1] if lines else ""
        score = float(dataset.score_answer(answer, dataset[0]) or 0.0)
        if score >= 1.0:
            return Grade(score=1.0, correct=True)
        return Grade(score=score, correct=False, explanation=f"expected {sample.answer}, got {answer!r}")


REASONING_GYM = register(ReasoningGymFamily())
