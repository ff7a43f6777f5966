"""``realm skills list | sample | eval | stats``. Works without a running trainer: it reads the
skill YAML, the data root's ``vault/realm.db`` and its checkpoints directly."""

from __future__ import annotations

import json
import random
import sys
from contextlib import closing

from realm.cli.common import EXIT_OK, CommandError, checkpoint_reference, common_options, load_context
from realm.home import Home
from realm.skills import curriculum
from realm.skills.confidence import ProbeBand, band_text, probe_band
from realm.skills.history import SkillStore
from realm.skills.registry import SkillConfigError, get_skill, load_skills
from realm.vault import champion
from realm.vault.ledger import Ledger


def add_parsers(sub) -> None:
    skills = sub.add_parser("skills", help="skills: list, sample, eval, stats")
    verbs = skills.add_subparsers(dest="skills_command", metavar="VERB", required=True)

    listing = common_options(verbs.add_parser("list", help="every skill, with its level in this realm"))
    listing.add_argument("--json", action="store_true", help="one JSON document")
    listing.set_defaults(func=cmd_list)

    sample = common_options(verbs.add_parser("sample", help="generated samples with their answers and self-grades"))
    sample.add_argument("skill", metavar="SKILL")
    sample.add_argument("--level", type=int, required=True, metavar="N")
    sample.add_argument("-n", type=int, default=3, metavar="K", help="how many (default 3)")
    sample.add_argument(
        "--seed", default="0", metavar="S", help="seed (default 0): the same seed gives the same samples"
    )
    sample.add_argument("--json", action="store_true", help="one JSON document")
    sample.set_defaults(func=cmd_sample)

    evaluate = common_options(verbs.add_parser("eval", help="score a checkpoint on the frozen eval sets"))
    evaluate.add_argument("skill", metavar="SKILL")
    evaluate.add_argument(
        "--checkpoint",
        default="latest",
        metavar="latest|champion|STEP",
        help="a vault checkpoint: latest (default), champion, a step or a canonical name",
    )
    evaluate.add_argument("--level", type=int, metavar="N", help="the level (default: the skill's level here)")
    evaluate.add_argument("--json", action="store_true", help="one JSON document")
    evaluate.set_defaults(func=cmd_eval)

    stats = common_options(verbs.add_parser("stats", help="levels, latest accuracies and lineage counts"))
    stats.add_argument("--json", action="store_true", help="one JSON document")
    stats.set_defaults(func=cmd_stats)


def _store(home):
    """The realm's skill store, or None when this data root has none yet (read-only use)."""
    db = home / "vault" / "realm.db"
    return SkillStore(db) if db.exists() else None


def _skills(config):
    try:
        return load_skills(config.skills.folder)
    except SkillConfigError as exc:
        raise CommandError(str(exc)) from None


def _skill(config, skill_id: str):
    try:
        return get_skill(skill_id, config.skills.folder)
    except SkillConfigError as exc:
        raise CommandError(str(exc)) from None


def _print_json(document) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------ list


def cmd_list(args) -> int:
    home, config, _ = load_context(args)
    skills = _skills(config)
    store = _store(home)
    rows = []
    for skill in skills.values():
        level = store.level(skill.id)[0] if store else 1
        rows.append(
            {
                "id": skill.id,
                "name": skill.name,
                "rpg_name": skill.rpg_name,
                "short_name": skill.short_name,
                "icon": skill.icon,
                "color": skill.color,
                "generator": skill.generator,
                "version": skill.family.version,
                "level": level,
                "max_level": skill.max_level,
                "description": skill.description,
            }
        )
    if store:
        store.close()
    if args.json:
        _print_json({"skills": rows})
    else:
        for r in rows:
            print(
                f"{r['icon']} {r['short_name'] or r['id']:<4} {r['name']} ({r['rpg_name']})  "
                f"L{r['level']}/{r['max_level']}  generator {r['generator']}@{r['version']}"
            )
            print(f"      {r['description']}")
    return EXIT_OK


# ------------------------------------------------------------------ sample


def cmd_sample(args) -> int:
    _, config, _ = load_context(args)
    skill = _skill(config, args.skill)
    if not 1 <= args.level <= skill.max_level:
        raise CommandError(f"skill {skill.id!r} has levels 1..{skill.max_level}, not {args.level}")
    if args.n < 1:
        raise CommandError("-n must be at least 1")
    rng = random.Random(f"sample:{skill.id}:{args.level}:{args.seed}")
    params = curriculum.eval_params(skill, args.level)
    rows = []
    for _ in range(args.n):
        sample = skill.family.generate(params, rng)
        grade = skill.family.grade(sample, sample.answer)
        rows.append(
            {
                "prompt": sample.prompt,
                "answer": sample.answer,
                "grade": {"score": grade.score, "correct": grade.correct, "explanation": grade.explanation},
                "meta": sample.meta,
            }
        )
    if args.json:
        _print_json({"skill": skill.id, "level": args.level, "seed": args.seed, "samples": rows})
    else:
        for i, r in enumerate(rows, start=1):
            print(f"--- {skill.id} L{args.level} #{i}  (self-grade {r['grade']['score']:.1f})")
            print(r["prompt"])
            print(">>> " + r["answer"].replace("\n", "\n>>> "))
    return EXIT_OK


# ------------------------------------------------------------------ eval


def cmd_eval(args) -> int:
    home, config, _ = load_context(args)
    skill = _skill(config, args.skill)
    store = _store(home)
    level = args.level if args.level is not None else (store.level(skill.id)[0] if store else 1)
    if store:
        store.close()
    if not 1 <= level <= skill.max_level:
        raise CommandError(f"skill {skill.id!r} has levels 1..{skill.max_level}, not {level}")
    folder = _checkpoint_folder(home, config, args.checkpoint)
    model, tokenizer = _load(config, folder)
    from realm.skills.grading import accuracy, evaluate  # torch: only `skills eval` runs a model

    levels = [level] + ([level + 1] if level < skill.max_level else [])
    results = []
    for at in levels:
        verdicts = evaluate(skill, model, tokenizer, curriculum.eval_set(skill, at), config.skills.eval_batch_size)
        results.append(
            {
                "level": at,
                "accuracy": accuracy(verdicts),
                "items": [
                    {
                        "prompt": v.sample.prompt,
                        "expected": v.sample.answer,
                        "response": v.response,
                        "correct": v.correct,
                        "explanation": v.explanation,
                    }
                    for v in verdicts
                ],
            }
        )
    document = {"skill": skill.id, "checkpoint": folder.name if folder else "untrained", "results": results}
    if args.json:
        _print_json(document)
    else:
        print(f"{skill.icon} {skill.name}: checkpoint {document['checkpoint']}")
        for r in results:
            print(f"L{r['level']}: {r['accuracy']:.0%}")
            for item in r["items"]:
                mark = "ok " if item["correct"] else "BAD"
                print(
                    f"  {mark} {item['prompt']!r} -> {item['response']!r}"
                    + ("" if item["correct"] else f"  ({item['explanation']})")
                )
    return EXIT_OK


def _checkpoint_folder(home, config, ref: str):
    ref = checkpoint_reference(ref, "--checkpoint")
    db = Home(home).db
    if not db.exists():
        raise CommandError(f"no checkpoint in {home / 'vault' / 'checkpoints'}; train first or pass --home")
    with closing(Ledger(db)) as ledger:
        return champion.resolve(ledger, ref, config.champion)[1]


def _load(config, folder):
    # torch and transformers (seconds to import): only `skills eval` loads a model
    import torch

    from realm.model.loading import load_model

    torch.set_num_threads(1)
    model, tokenizer = load_model(config.model, checkpoint=folder, seed=config.train.seed)
    return model, tokenizer


# ------------------------------------------------------------------ stats


def cmd_stats(args) -> int:
    home, config, _ = load_context(args)
    skills = _skills(config)
    store = _store(home)
    rows = []
    lineage = []
    for skill in skills.values():
        level, since = store.level(skill.id) if store else (1, 0)
        history = store.history(skill.id, limit=200) if store else []
        latest = {}
        for r in history:
            latest[r.level] = {"step": r.step, "accuracy": r.accuracy, "probe": r.probe}
        band = probe_band(history, level, skill.progression.window)
        rows.append(
            {
                "id": skill.id,
                "level": level,
                "since_step": since,
                "max_level": skill.max_level,
                "rounds": len(history),
                "latest_by_level": {str(k): v for k, v in sorted(latest.items())},
                "probe_band": band._asdict() if band else None,
            }
        )
    if store:
        lineage = [{"generator": g, "validator": v, "count": n} for g, v, n in store.lineage()]
        store.close()
    if args.json:
        _print_json({"skills": rows, "lineage": lineage})
        return EXIT_OK
    for r in rows:
        print(f"{r['id']}: L{r['level']}/{r['max_level']} since step {r['since_step']}, {r['rounds']} eval round(s)")
        if r["probe_band"]:
            print(f"  L{r['level']} {band_text(ProbeBand(**r['probe_band']))}")
        for lvl, v in r["latest_by_level"].items():
            probe = "" if v["probe"] is None else f", probe {v['probe']:.0%}"
            print(f"  L{lvl}: {v['accuracy']:.0%}{probe} at step {v['step']}")
    print("lineage (generated / rejected by validator):")
    generated = {x["generator"]: x["count"] for x in lineage if not x["validator"]}
    for name, count in sorted(generated.items()):
        rejected = {x["validator"]: x["count"] for x in lineage if x["generator"] == name and x["validator"]}
        detail = ", ".join(f"{v} {n} ({n / (count + n):.1%})" for v, n in sorted(rejected.items())) or "none"
        print(f"  {name}: {count} generated; rejected: {detail}")
    if not lineage:
        print("  nothing generated yet")
    return EXIT_OK
