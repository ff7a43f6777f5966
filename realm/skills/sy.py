"""SY — Word Weaving: syllacrostic puzzles from the committed lexicon.

A puzzle is a bank of syllable tiles (``[CAP] [TAIN]``) and numbered clues, each with its syllable count. Every
answer is built from tiles; every tile is used exactly once except the red herrings. The
level's params (``configs/skills/sy.yaml``) set six dimensions:

- ``words``: answers per puzzle;
- ``syllables: [min, max]``: syllables (tiles) per answer;
- ``zipf: [lo, hi]``: the answers' word-frequency window (Zipf scale, 7 = "the", 2 = rare);
- ``overlap``: the chance that each answer is drawn from words sharing a tile with earlier ones;
- ``herrings``: tiles that belong to no answer;
- ``hints: {kind: weight}``: clue kinds, strong to weak by tier — 1: definition, synonym;
  2: category, example, hypernym; 3: antonym, domain, morphology; 4: pattern ("starts with
  X, n letters"). A kind a word lacks falls back to another of its tier, then weaker tiers.

Every puzzle is checked by ``solve`` to have exactly one answer list; while it has more, one
answer the other solution puts in doubt is redrawn. What counts as a solution, exactly: an
answer per clue, each a word of the solver word list (~74k words: WordNet lemmas, their
inflections, common CMU words; see ``lexicon_build.solver_vocabulary``) spelled by as many
tiles as the clue's syllable count, together using each tile at most once (the tiles left
over are then the herrings). Which words a clue admits is ``Clue.admits``: a pattern clue any
word with its first letter and length; a morphology clue any word with its ending; a category
clue any word not known to be of another category; a specific clue (definition, synonym,
example, hypernym, antonym, domain) its answer, forms of it and its synonyms. No clue but a
pattern admits another clue's answer (hints never name another answer: they are redrawn).

The answer is ``{"answers": [...]}`` in clue order, upper case; the grader is exact on the
words and tolerant of whitespace and code fences around the JSON.
"""

from __future__ import annotations

import bisect
import gzip
import json
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from realm.resources import shipped
from realm.skills.base import Grade, Sample, register

LEXICON_PATH = shipped("assets/lexicon/sy-lexicon.json.gz")
CONFIG_PATH = shipped("configs/skills/sy.yaml")

HINT_TIERS: dict[str, int] = {
    "definition": 1,
    "synonym": 1,
    "category": 2,
    "example": 2,
    "hypernym": 2,
    "antonym": 3,
    "domain": 3,
    "morphology": 3,
    "pattern": 4,
}
TIER_CLUES = {1: "definition clues", 2: "category clues", 3: "antonym/domain clues", 4: "pattern clues"}
POS_NAMES = {"n": "a noun", "v": "a verb", "a": "an adjective", "r": "an adverb"}
SUFFIX_MIN_WORDS = 40  # a last tile this many entries end with is a suffix a morphology hint may name
PARAM_KEYS = ("words", "syllables", "zipf", "overlap", "herrings", "hints")
MAX_ATTEMPTS = 200  # puzzles drawn before giving up on params that cannot make a unique one
SOLVER_BUDGET = 20_000  # search nodes before a puzzle counts as not provably unique


@dataclass(frozen=True)
class Entry:
    word: str
    tiles: tuple[str, ...]
    zipf: float
    pos: str
    category: str
    definition: str
    synonyms: tuple[str, ...]
    hypernyms: tuple[str, ...]
    examples: tuple[str, ...]
    antonyms: tuple[str, ...]
    domains: tuple[str, ...]


class Lexicon:
    """The committed lexicon: clue-able entries by syllable count and the solver's words."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.sources: dict[str, str] = dict(data["sources"])
        self.entries = [
            Entry(w, tuple(t.split("-")), z, p, c, d, tuple(s), tuple(h), tuple(x), tuple(a), tuple(m))
            for w, t, z, p, c, d, s, h, x, a, m in data["entries"]
        ]
        by_count: dict[int, list[Entry]] = {}
        for entry in self.entries:
            by_count.setdefault(len(entry.tiles), []).append(entry)
        self.by_count = {k: sorted(v, key=lambda e: (e.zipf, e.word)) for k, v in sorted(by_count.items())}
        self._zipfs = {k: [e.zipf for e in v] for k, v in self.by_count.items()}
        self._windows: dict[tuple[int, float, float], list[Entry]] = {}
        self.by_word = {e.word: e for e in self.entries}
        # word or proper prefix -> the letters that can follow it, led by "$" for a word
        self.trie: dict[str, str] = data["solver_trie"]

        endings = Counter(e.tiles[-1] for e in self.entries)
        self.suffixes = frozenset(t for t, n in endings.items() if n >= SUFFIX_MIN_WORDS)

    def is_word(self, word: str) -> bool:
        return self.trie.get(word, "").startswith("$")

    def window(self, count: int, lo: float, hi: float) -> list[Entry]:
        """Entries of ``count`` syllables with Zipf frequency in [lo, hi], rarest first (don't change it)."""
        key = (count, lo, hi)
        if key not in self._windows:
            zipfs = self._zipfs.get(count, [])
            entries = self.by_count.get(count, [])
            self._windows[key] = entries[bisect.bisect_left(zipfs, lo) : bisect.bisect_right(zipfs, hi)]
        return self._windows[key]


@cache
def lexicon() -> Lexicon:
    with gzip.open(LEXICON_PATH, "rb") as fh:
        return Lexicon(json.loads(fh.read()))


# ----------------------------------------------------------------------------- level params


def level_params(level: int, path: Path = CONFIG_PATH) -> dict[str, Any]:
    """Level ``level``'s eval params (without its ``train:`` table) as the skills registry reads
    them for the game; for tests and benches."""
    params = _skill(path).eval_and_training_params(level)[0]
    return json.loads(json.dumps(params))  # a deep copy the caller may change


@cache
def _skill(path: Path):
    from realm.skills.registry import load_skill  # the registry knows the families, this one among them

    return load_skill(path)


def check_params(params: Mapping[str, Any]) -> None:
    """Raise ValueError naming the key when ``params`` cannot make puzzles."""
    missing = [k for k in PARAM_KEYS if k not in params]
    if missing:
        raise ValueError(f"missing key {missing[0]!r} (SY needs {', '.join(PARAM_KEYS)})")
    unknown = sorted(set(params) - set(PARAM_KEYS))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key (SY knows {', '.join(PARAM_KEYS)})")
    words, (smin, smax), (lo, hi) = params["words"], params["syllables"], params["zipf"]
    if not isinstance(words, int) or not 1 <= words <= 20:
        raise ValueError(f"words: must be an integer 1..20, got {words!r}")
    if not (isinstance(smin, int) and isinstance(smax, int) and 2 <= smin <= smax <= 8):
        raise ValueError(f"syllables: must be [min, max] with 2 <= min <= max <= 8, got {params['syllables']!r}")
    if not lo < hi:
        raise ValueError(f"zipf: must be [lo, hi] with lo < hi, got {params['zipf']!r}")
    if not 0.0 <= float(params["overlap"]) <= 1.0:
        raise ValueError(f"overlap: must be between 0 and 1, got {params['overlap']!r}")
    if not isinstance(params["herrings"], int) or not 0 <= params["herrings"] <= 20:
        raise ValueError(f"herrings: must be an integer 0..20, got {params['herrings']!r}")
    hints = params["hints"]
    if not isinstance(hints, Mapping) or not hints:
        raise ValueError("hints: must map hint kinds to weights")
    for kind, weight in hints.items():
        if kind not in HINT_TIERS:
            raise ValueError(f"hints.{kind}: unknown hint kind (known: {', '.join(HINT_TIERS)})")
        if not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"hints.{kind}: weight must be a number >= 0, got {weight!r}")
    if sum(hints.values()) <= 0:
        raise ValueError("hints: the weights must not all be 0")
    lex = lexicon()
    for count in range(smin, smax + 1):
        pool = len(lex.window(count, lo, hi))
        if pool < 3 * words:
            raise ValueError(f"zipf: only {pool} words of {count} syllables in [{lo}, {hi}]; need at least {3 * words}")


# ----------------------------------------------------------------------------- clues


_WORDS = re.compile(r"[a-z]+")


def _stem(word: str) -> str:
    return word[: max(4, len(word) - 3)] if len(word) > 4 else word


def _mentions(text: str, word: str) -> bool:
    """Whether ``text`` names ``word`` or a form of it (a word of it starts with its stem)."""
    stem = _stem(word)
    return any(token.startswith(stem) for token in _WORDS.findall(text.lower()))


def _blank_example(example: str, word: str) -> str | None:
    if not _mentions(example, word):
        return None
    stem = _stem(word)
    blanked, hits = re.subn(rf"\b{re.escape(stem)}[a-z]*", "___", example, flags=re.I)
    return f"as in “{blanked}”" if hits else None


def hint_text(entry: Entry, kind: str) -> str | None:
    """The clue of ``kind`` for ``entry``, or None when the entry has none that hides the word."""
    pos = POS_NAMES[entry.pos]
    if kind == "definition":
        text = entry.definition
    elif kind == "synonym":
        syns = [s for s in entry.synonyms if not _mentions(s, entry.word) and not _mentions(entry.word, s)]
        text = f"synonym: {', '.join(syns[:2])}" if syns else None
    elif kind == "category":
        text = f"{pos}; category: {entry.category}" if entry.category not in ("all", "pert", "ppl", "Tops") else None
    elif kind == "example":
        return next((t for t in (_blank_example(x, entry.word) for x in entry.examples) if t), None)
    elif kind == "hypernym":
        lead = {"n": "a kind of", "v": "a way to", "a": "akin to", "r": "akin to"}[entry.pos]
        text = f"{lead} {entry.hypernyms[0]}" if entry.hypernyms else None
    elif kind == "antonym":
        text = f"opposite of {entry.antonyms[0]}" if entry.antonyms else None
    elif kind == "domain":
        text = f"{pos} used in {entry.domains[0]}" if entry.domains else None
    elif kind == "morphology":
        suffix = entry.tiles[-1]
        text = f"{pos} ending in -{suffix.upper()}" if suffix in lexicon().suffixes and len(entry.tiles) > 2 else None
    elif kind == "pattern":
        return f"starts with {entry.word[0].upper()}, {len(entry.word)} letters"
    else:
        raise ValueError(f"unknown hint kind {kind!r}")
    if not text or (kind != "morphology" and _mentions(text, entry.word)):
        return None
    return text


def _fallback_order(kind: str, rng: random.Random) -> list[str]:
    """``kind``, then the rest of its tier in random order, then weaker tiers, then stronger."""
    tier = HINT_TIERS[kind]
    same = [k for k in HINT_TIERS if HINT_TIERS[k] == tier and k != kind]
    rng.shuffle(same)
    weaker = sorted((k for k in HINT_TIERS if HINT_TIERS[k] > tier), key=lambda k: HINT_TIERS[k])
    stronger = sorted((k for k in HINT_TIERS if HINT_TIERS[k] < tier), key=lambda k: -HINT_TIERS[k])
    return [kind, *same, *weaker, *stronger]


def choose_hint(entry: Entry, hints: Mapping[str, float], others: Sequence[str], rng: random.Random) -> tuple[str, str]:
    kinds = list(hints)
    kind = rng.choices(kinds, weights=[float(hints[k]) for k in kinds])[0]
    for candidate in _fallback_order(kind, rng):
        text = hint_text(entry, candidate)
        if text and not set(_WORDS.findall(text.lower())).intersection(others):
            return candidate, text
    return "pattern", hint_text(entry, "pattern") or ""


# ----------------------------------------------------------------------------- solver

SPECIFIC = frozenset({"definition", "synonym", "example", "hypernym", "antonym", "domain"})


@dataclass(frozen=True)
class Clue:
    """What the solver knows of a clue: its tile count and which words its hint admits."""

    syllables: int
    answer: str  # lower case
    kind: str  # the hint kind
    synonyms: tuple[str, ...] = ()
    pos: str = ""
    category: str = ""
    ending: str = ""  # the last tile (morphology hints name it)

    @classmethod
    def of(cls, entry: Entry, kind: str) -> Clue:
        return cls(
            len(entry.tiles),
            entry.word,
            kind,
            tuple(s for s in entry.synonyms if s.isalpha()),
            entry.pos,
            entry.category,
            entry.tiles[-1],
        )

    def prefixes(self) -> list[tuple[str, int, int]]:
        """(prefix, most letters, tiles) that every word this clue admits fits; ("", 99, 99): any."""
        k = self.syllables
        if self.kind == "pattern":
            return [(self.answer[0], len(self.answer), k)]
        if self.kind in SPECIFIC:
            return [(self.answer[: max(3, len(self.answer) - 3)], 99, k), *((s, len(s), k) for s in self.synonyms)]
        return [("", 99, 99)]

    def admits(self, word: str, answers: set[str]) -> bool:
        """Whether a player could give ``word`` (spelled by the right number of tiles) here.

        pattern: its first letter and length; morphology: any word with its ending, category:
        any word not known to be of another category; a specific hint (definition, synonym,
        example, hypernym, antonym, domain): the answer, a form of it (same first letters, as
        RECOUNTED for RECOUNT) or a synonym. Another clue's answer is never admitted by a
        non-pattern clue: its hint describes its own answer.
        """
        if self.kind == "pattern":
            return word[0] == self.answer[0] and len(word) == len(self.answer)
        if word == self.answer:
            return True
        if word in answers:
            return False
        if self.kind == "morphology":
            return word.endswith(self.ending)
        if self.kind == "category":
            known = lexicon().by_word.get(word)
            return known is None or (known.pos, known.category) == (self.pos, self.category)
        stem = self.answer[: max(3, len(self.answer) - 3)]
        return word.startswith(stem) or word in self.synonyms


@dataclass
class Solutions:
    found: list[tuple[str, ...]]  # distinct answer lists, at most the limit asked for
    exhausted: bool  # the search ran past its budget: more may exist


def solve(tiles: Sequence[str], clues: Sequence[Clue], limit: int = 2, budget: int = SOLVER_BUDGET) -> Solutions:
    """Answer lists the ``tiles`` allow for ``clues`` (see the module doc), up to ``limit``."""
    trie_get = lexicon().trie.get
    have = dict(Counter(t.lower() for t in tiles))
    by_letter: dict[str, list[str]] = {}
    for tile in sorted(have):
        by_letter.setdefault(tile[0], []).append(tile)
    groups = list(by_letter.items())
    deepest = max(c.syllables for c in clues)
    wanted = {c.syllables for c in clues}
    spelled: dict[int, dict[str, set[tuple[str, ...]]]] = {k: {} for k in wanted}
    path: list[str] = []
    Filters = list[tuple[str, int, int]]

    def walk(prefix: str, following: str, filters: Filters) -> None:
        depth = len(path) + 1
        if len(following) > len(groups):
            firsts = [group for letter, group in groups if letter in following]
        else:
            firsts = [by_letter[letter] for letter in following if letter in by_letter]
        for group in firsts:
            for tile in group:
                if not have[tile]:
                    continue
                word = prefix + tile
                after = trie_get(word)
                if after is None:
                    continue
                if filters:
                    # (prefix, most letters, tiles): the word must agree with the prefix, and
                    # the letters left must leave one at least for every tile still to come
                    n = len(word)
                    left = [
                        f
                        for f in filters
                        if depth <= f[2]
                        and f[1] - n >= f[2] - depth
                        and (word.startswith(f[0]) or f[0].startswith(word))
                    ]
                    if not left:
                        continue
                else:
                    left = filters
                have[tile] -= 1
                path.append(tile)
                if after[0] == "$" and depth in wanted:
                    spelled[depth].setdefault(word, set()).add(tuple(sorted(path)))
                if depth < deepest:
                    walk(word, after, left)
                path.pop()
                have[tile] += 1

    # Only words some clue could admit are spelled out: their prefixes and lengths prune the walk.
    filters = sorted({f for c in clues for f in c.prefixes()})
    walk("", trie_get(""), [] if ("", 99, 99) in filters else filters)
    answers = {c.answer for c in clues}
    options: list[list[tuple[str, tuple[tuple[str, int], ...]]]] = []
    for clue in clues:
        options.append(
            [
                (word, tuple(Counter(use).items()))
                for word, uses in spelled[clue.syllables].items()
                if clue.admits(word, answers)
                for use in sorted(uses)
            ]
        )
    order = sorted(range(len(clues)), key=lambda i: len(options[i]))
    found: dict[tuple[str, ...], None] = {}
    chosen: list[str] = [""] * len(clues)
    steps = 0

    def search(depth: int) -> bool:
        """Depth-first over clues; False once the limit or the budget stops it."""
        nonlocal steps
        if depth == len(order):
            found[tuple(chosen)] = None
            return len(found) < limit
        i = order[depth]
        for word, need in options[i]:
            steps += 1
            if steps > budget:
                return False
            if all(have[t] >= n for t, n in need):
                for t, n in need:
                    have[t] -= n
                chosen[i] = word
                going = search(depth + 1)
                for t, n in need:
                    have[t] += n
                if not going:
                    return False
        return True

    search(0)
    return Solutions(list(found), steps > budget)


def count_solutions(tiles: Sequence[str], clues: Sequence[Clue], limit: int = 2) -> int:
    """Distinct answer lists (up to ``limit``); ``limit`` when the search ran out of budget."""
    result = solve(tiles, clues, limit)
    return limit if result.exhausted else len(result.found)


# ----------------------------------------------------------------------------- generation


def _draw_word(params: Mapping[str, Any], chosen: Sequence[Entry], rng: random.Random) -> Entry:
    """One more answer: not chosen yet, no synonym of a chosen one, sharing a tile by ``overlap``."""
    lex = lexicon()
    smin, smax = params["syllables"]
    lo, hi = params["zipf"]
    tiles_so_far = {t for e in chosen for t in e.tiles}
    taken = {w for e in chosen for w in (e.word, *e.synonyms)}
    for _ in range(10_000):
        pool = lex.window(rng.randint(smin, smax), lo, hi)
        entry = rng.choice(pool)
        if chosen and rng.random() < float(params["overlap"]):
            # look a few draws ahead for a word sharing a tile (a full scan of the pool is slow)
            for _ in range(40):
                if tiles_so_far.intersection(entry.tiles):
                    break
                entry = rng.choice(pool)
        if entry.word not in taken and not taken.intersection(entry.synonyms):
            return entry
    raise RuntimeError(f"sy: no further word fits params {dict(params)} (the Zipf window is too narrow)")


def _draw_herrings(count: int, words: Sequence[Entry], params: Mapping[str, Any], rng: random.Random) -> list[str]:
    """``count`` tiles of other words in the level's window, none a tile of an answer."""
    lex = lexicon()
    lo, hi = params["zipf"]
    smin, smax = params["syllables"]
    used = {t for e in words for t in e.tiles}
    herrings: list[str] = []
    for _ in range(10_000):
        if len(herrings) == count:
            return herrings
        donor = rng.choice(lex.window(rng.randint(smin, smax), lo, hi))
        tile = rng.choice(donor.tiles)
        if tile not in used and tile not in herrings:
            herrings.append(tile)
    if len(herrings) == count:
        return herrings
    raise RuntimeError(f"sy: found no {count} red-herring tiles for params {dict(params)}")


def tile_bank(tiles: Sequence[str]) -> str:
    """``[CAP] [TAIN]``: a bracket before each tile starts its letters as a word of their own, so a
    byte-level BPE tokenizer splits them as it splits them inside the answer (DIO-nano's: 96 % of
    L1-L6 answers, against 33 % after a space, which also turns the first letter into another
    token); joining tiles is then copying tokens."""
    return " ".join(f"[{tile}]" for tile in tiles)


def _prompt(tiles: Sequence[str], clues: Sequence[tuple[int, str]], herrings: int) -> str:
    rule = "use every tile once"
    if herrings:
        rule += f", except {herrings} red herring{'s' if herrings > 1 else ''}"
    lines = [
        f"Syllacrostic: join the syllable tiles into the answers to the clues; {rule}.",
        "Tiles: " + tile_bank(tiles),
        *(f"{i}. ({n} syllables) {text}" for i, (n, text) in enumerate(clues, 1)),
        'Answer as JSON {"answers": [...]}, upper case, in clue order.',
    ]
    return "\n".join(lines)


class SyllacrosticFamily:
    id = "sy"
    version = "1.2.0"

    def check_params(self, params: Mapping[str, Any]) -> None:
        check_params(params)

    def describe(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """What a level's ``params`` practise, longest first: ``4 words of 2 syllables, definition
        clues``, then without the clues, the red herrings, the syllables. The clues are named by
        the tier that weighs most in ``hints``."""
        lo, hi = params["syllables"]
        words = f"{params['words']} word{'s' if params['words'] > 1 else ''}"
        shaped = f"{words} of {lo if lo == hi else f'{lo}-{hi}'} syllables"
        weights = Counter()
        for kind, weight in params["hints"].items():
            weights[HINT_TIERS[kind]] += weight
        clues = TIER_CLUES[max(weights, key=lambda tier: (weights[tier], -tier))]
        herrings = params.get("herrings", 0)
        with_herrings = f", {herrings} red herring{'s' if herrings > 1 else ''}" if herrings else ""
        forms = (f"{shaped}, {clues}{with_herrings}", f"{shaped}, {clues}", f"{shaped}{with_herrings}", shaped, words)
        return tuple(dict.fromkeys(forms))

    def generate(self, params: Mapping[str, Any], rng: random.Random) -> Sample:
        """A puzzle with exactly one solution; ambiguous answers are redrawn until it has."""
        check_params(params)
        words: list[Entry] = []
        while len(words) < params["words"]:
            words.append(_draw_word(params, words, rng))
        for attempt in range(1, MAX_ATTEMPTS + 1):
            answers = [e.word for e in words]
            hinted = [choose_hint(e, params["hints"], [a for a in answers if a != e.word], rng) for e in words]
            herrings = _draw_herrings(params["herrings"], words, params, rng)
            tiles = sorted([t for e in words for t in e.tiles] + herrings)
            clues = [Clue.of(e, kind) for e, (kind, _) in zip(words, hinted)]
            result = solve(tiles, clues)
            if len(result.found) == 1 and not result.exhausted:
                return self._sample(words, hinted, herrings, tiles, attempt)
            # redraw one answer that the other solution (or an unfinished search) puts in doubt
            other = next((f for f in result.found if list(f) != answers), None)
            doubtful = [i for i, a in enumerate(answers) if other is None or other[i] != a]
            i = rng.choice(doubtful)
            words[i] = _draw_word(params, words[:i] + words[i + 1 :], rng)
        raise RuntimeError(f"sy: no puzzle with a unique solution in {MAX_ATTEMPTS} draws for params {dict(params)}")

    def _sample(
        self, words: list[Entry], hinted: list[tuple[str, str]], herrings: list[str], tiles: list[str], attempt: int
    ) -> Sample:
        upper = [e.word.upper() for e in words]
        tile_owners = Counter(t for e in words for t in set(e.tiles))
        kinds = [kind for kind, _ in hinted]
        meta = {
            "words": len(words),
            "syllables": [len(e.tiles) for e in words],
            "zipf_mean": round(sum(e.zipf for e in words) / len(words), 3),
            "herrings": len(herrings),
            "herring_tiles": [t.upper() for t in herrings],
            "tiles": [t.upper() for t in tiles],
            "shared_tiles": sum(1 for n in tile_owners.values() if n > 1),
            "hints": kinds,
            "hint": Counter(kinds).most_common(1)[0][0],
            "hint_tier_mean": round(sum(HINT_TIERS[k] for k in kinds) / len(kinds), 3),
            "answers": upper,
            "attempts": attempt,
        }
        clues = [(len(e.tiles), text) for e, (_, text) in zip(words, hinted)]
        prompt = _prompt([t.upper() for t in tiles], clues, len(herrings))
        return Sample(prompt=prompt, answer=json.dumps({"answers": upper}), meta=meta)

    def canonical_key(self, sample: Sample) -> str:
        """The puzzle whatever its hints' wording and clue order: its answers and herrings.

        What eval exclusion compares: a training puzzle with the same words is the same problem.
        """
        meta = sample.meta
        return ",".join(sorted(meta["answers"])) + "|" + ",".join(sorted(meta["herring_tiles"]))

    def perturb(self, sample: Sample, rng: random.Random) -> str:
        """A near-miss wrong answer (for discrimination quests): two answers swapped, one tile of
        an answer traded for another tile of the bank, or an answer missing its last tile."""
        answers = list(json.loads(sample.answer)["answers"])
        lex = lexicon()
        i = rng.randrange(len(answers))
        how = rng.choice(("swap", "trade", "drop")) if len(answers) > 1 else rng.choice(("trade", "drop"))
        tiles = [t.upper() for t in lex.by_word[answers[i].lower()].tiles]
        if how == "swap":
            j = rng.choice([j for j in range(len(answers)) if j != i])
            answers[i], answers[j] = answers[j], answers[i]
        elif how == "trade":
            k = rng.randrange(len(tiles))
            others = [t for t in sorted(set(sample.meta["tiles"])) if t != tiles[k]]
            tiles[k] = rng.choice(others)
            answers[i] = "".join(tiles)
        else:
            answers[i] = "".join(tiles[:-1])
        return json.dumps({"answers": answers})

    def grade(self, sample: Sample, response: str) -> Grade:
        expected = json.loads(sample.answer)["answers"]
        got, problem = parse_answers(response)
        if got is None:
            return Grade(0.0, False, problem)
        right = sum(1 for e, g in zip(expected, got) if e == g)
        wrong = [
            f"{i}: expected {e}, got {g if g is not None else 'nothing'}{' (answers are upper case)' if g and g.upper() == e else ''}"
            for i, (e, g) in enumerate(zip(expected, got + [None] * len(expected)), 1)
            if e != g
        ]
        notes = []
        if len(got) != len(expected):
            notes.append(f"expected {len(expected)} answers, got {len(got)}")
        if wrong:
            notes.append("wrong words: " + "; ".join(wrong))
        correct = right == len(expected) and len(got) == len(expected)
        return Grade(right / len(expected), correct, "" if correct else "; ".join(notes))


FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.S)


def parse_answers(response: str) -> tuple[list[str] | None, str]:
    """The answer list in ``response`` (JSON, maybe fenced), or None and what is wrong."""
    text = response.strip()
    fenced = FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f'not JSON ({exc.msg} at position {exc.pos}); expected {{"answers": [...]}}'
    if not isinstance(data, dict) or not isinstance(data.get("answers"), list):
        return None, 'expected a JSON object {"answers": [...]}'
    answers = data["answers"]
    if not all(isinstance(a, str) for a in answers):
        return None, "every answer must be a string"
    return list(answers), ""


FAMILY = register(SyllacrosticFamily())
