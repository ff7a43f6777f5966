"""Build the DIO-nano tokenizer: ``python -m trainer.tokenizer_build [--out assets/dio-nano]``.

A byte-level BPE (so any text encodes, emoji and CJK included) trained with the ``tokenizers``
library on a corpus this module writes itself, offline and deterministically: English prose and
word sentences, numbers and arithmetic, binary strings in circled digits (⓪ ①), JSON answers
and ChatML-shaped chat turns. Pre-tokenization follows Qwen2/3: every digit (circled ones too)
is a token of its own, which is what arithmetic skills want.

Special tokens: ``<|endoftext|>`` (pad), ``<|im_start|>``, ``<|im_end|>`` (eos); ``<think>`` and
``</think>`` are ordinary added tokens (as in Qwen3, so decoding keeps them), and so are the 16
glyphs of BIN's symbol languages. The chat template is plain ChatML with no ``<think>`` injection.

The same code gives the same files byte for byte on every run; the shipped files in
``assets/dio-nano`` are this module's output and a test checks that they still are.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from realm.model.chatml import CHATML_TEMPLATE, IM_END, IM_START
from realm.skills.bin import SYMBOLS

VOCAB_SIZE = 1024  # total, the added tokens included
SEED = 20251125
PAD = "<|endoftext|>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END]
# BIN's symbol-language glyphs are tokens of their own: as bytes each is three tokens sharing
# their lead bytes, so reading a symbol through the key took matching three-token groups
ADDED_TOKENS = ["<think>", "</think>", *SYMBOLS]
MODEL_MAX_LENGTH = 2048

# Qwen2/Qwen3's split pattern: contractions, words (with one leading non-letter), single digits,
# punctuation runs, newlines, spaces.
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "assets" / "dio-nano"

# --- the corpus ----------------------------------------------------------------------------------

LORE = """\
In the Realm of Training there lives a hero named DIO. DIO is not a knight and not a wizard:
DIO is a language model, and every quest it takes is a file of examples. When a quest begins,
DIO reads each example, guesses the next word, and learns from every mistake. The loss is the
damage it takes; the lower the loss, the stronger the hero. Over many steps DIO gains levels,
earns gold for every quest it finishes, and keeps its best moments in the vault.

The realm never sleeps. When the quest board is empty, DIO trains on its own: it practises
its skills, one level at a time. Word Weaving asks it to rebuild hidden words from their
syllables. Binary Alchemy asks it to add, subtract and compare numbers written in circled
bits. A skill levels up only when DIO answers most of the questions right, three times in a row.

A traveller may speak with DIO at the Oracle. Ask a question and the answer streams back, one
token after another. Ask again after an hour of training and the answer may be better, or
stranger. The champion is the checkpoint with the best score; promote it, and every oracle in
the realm will speak with its voice.

Good training data is clear and honest. Each example shows a question and the answer we hope
to see. The system message sets the scene, the user asks, and the assistant replies. Only the
assistant's words are graded; everything else is context. Keep answers short when the task is
short, and write them the same way every time, so the pattern is easy to learn.

Numbers matter as well. Twelve plus thirty is forty-two. One hundred minus seven is ninety-three.
Half of sixty-four is thirty-two, and three times eleven is thirty-three. In binary, five is
written as one, zero, one, and the sum of two ones is one zero.
"""

WORDS = """\
the of and to a in is it you that he was for on are with as I his they be at one have this from
or had by hot word but what some we can out other were all there when up use your how said an
each she which do their time if will way about many then them write would like so these her long
make thing see him two has look more day could go come did number sound no most people my over
know water than call first who may down side been now find any new work part take get place made
live where after back little only round man year came show every good me give our under name very
through just form sentence great think say help low line differ turn cause much mean before move
right boy old too same tell does set three want air well also play small end put home read hand
port large spell add even land here must big high such follow act why ask men change went light
kind off need house picture try us again animal point mother world near build self earth father
head stand own page should country found answer school grow study still learn plant cover food
sun four between state keep eye never last let thought city tree cross farm hard start might story
saw far sea draw left late run while press close night real life few north open seem together next
white children begin got walk example ease paper group always music those both mark often letter
until mile river car feet care second book carry took science eat room friend began idea fish
mountain stop once base hear horse cut sure watch colour face wood main enough plain girl usual
young ready above ever red list though feel talk bird soon body dog family direct pose leave song
measure door product black short numeral class wind question happen complete ship area half rock
order fire south problem piece told knew pass since top whole king space heard best hour better
true during hundred five remember step early hold west ground interest reach fast verb sing listen
six table travel less morning ten simple several vowel toward war lay against pattern slow center
love person money serve appear road map rain rule govern pull cold notice voice unit power town
fine certain fly fall lead cry dark machine note wait plan figure star box noun field rest correct
able pound done beauty drive stood contain front teach week final gave green oh quick develop
ocean warm free minute strong special mind behind clear tail produce fact street inch multiply
nothing course stay wheel full force blue object decide surface deep moon island foot system busy
test record boat common gold possible plane stead dry wonder laugh thousand ago ran check game
shape equal miss brought heat snow tire bring yes distant fill east paint language among hero quest
battle level skill vault oracle champion realm train loss model token data file step checkpoint
dragon sword shield castle magic spell potion forest cave treasure journey brave wise ancient
""".split()

NAMES = ["DIO", "Ada", "Alan", "Grace", "Linus", "Emmy", "Kurt", "Marie", "Niels", "Rosalind"]
EMOJI = ["🧩", "🔢", "🤔", "💡", "🧠", "✨", "🛑", "🔚", "⚔️", "🛡️", "🏆", "📜", "🐉", "🔥", "✅", "❌"]
CIRCLED = {"0": "⓪", "1": "①"}

SYSTEM_PROMPTS = [
    "You are DIO, a helpful assistant.",
    "You are DIO, the hero of the Realm of Training. Answer briefly.",
    "Answer with JSON only.",
    "You solve binary arithmetic written in circled digits.",
]


def _circled(n: int, width: int) -> str:
    return "".join(CIRCLED[b] for b in format(n, f"0{width}b"))


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(4, 14))]
    if rng.random() < 0.2:
        words.insert(rng.randrange(len(words)), rng.choice(NAMES))
    text = " ".join(words)
    text = text[0].upper() + text[1:]
    if rng.random() < 0.2:
        parts = text.split(" ")
        parts.insert(rng.randrange(1, len(parts) + 1), rng.choice([",", ";", ":", "-"]))
        text = " ".join(parts).replace(" ,", ",").replace(" ;", ";").replace(" :", ":")
    return text + rng.choice([".", ".", ".", "?", "!"])


def _arithmetic(rng: random.Random) -> str:
    a, b = rng.randint(0, 999), rng.randint(0, 99)
    op = rng.choice(["+", "-", "*", "+", "="])
    if op == "+":
        return f"{a} + {b} = {a + b}" if rng.random() < 0.5 else f"{a}+{b}={a + b}"
    if op == "-":
        return f"{a} - {b} = {a - b}"
    if op == "*":
        return f"{a % 100} * {b} = {(a % 100) * b}"
    return f"{rng.randint(0, 10**6)}, {rng.uniform(0, 100):.2f}, {rng.randint(1900, 2100)}"


def _binary(rng: random.Random) -> str:
    width = rng.randint(2, 12)
    a, b = rng.randrange(2**width), rng.randrange(2**width)
    op = rng.choice(["+", "-", "AND", "OR", "XOR", "compare"])
    if op == "+":
        return f"{_circled(a, width)} + {_circled(b, width)} = {_circled(a + b, width + 1)}"
    if op == "-":
        big, small = max(a, b), min(a, b)
        return f"{_circled(big, width)} - {_circled(small, width)} = {_circled(big - small, width)}"
    if op == "compare":
        sign = "<" if a < b else ">" if a > b else "="
        return f"{_circled(a, width)} {sign} {_circled(b, width)}"
    result = {"AND": a & b, "OR": a | b, "XOR": a ^ b}[op]
    return f"{_circled(a, width)} {op} {_circled(b, width)} = {_circled(result, width)}"


def _syllables(word: str, rng: random.Random) -> list[str]:
    parts, i = [], 0
    while i < len(word):
        step = rng.randint(2, 3)
        parts.append(word[i : i + step])
        i += step
    return parts


def _json_answer(rng: random.Random) -> str:
    words = [rng.choice(WORDS).upper() for _ in range(rng.randint(1, 3))]
    return json.dumps({"answers": words}, ensure_ascii=False)


def _chat(rng: random.Random) -> str:
    """A ChatML-shaped exchange, minus the special tokens (they are never merged)."""
    kind = rng.randrange(5)
    if kind == 0:
        word = rng.choice([w for w in WORDS if len(w) >= 5])
        pieces = _syllables(word.upper(), rng)
        rng.shuffle(pieces)
        user = f"Rebuild the word from these syllables: {' | '.join(pieces)}. Answer as JSON."
        answer = json.dumps({"answers": [word.upper()]})
    elif kind == 1:
        width = rng.randint(2, 8)
        a, b = rng.randrange(2**width), rng.randrange(2**width)
        user = f"What is {_circled(a, width)} + {_circled(b, width)}?"
        answer = _circled(a + b, width + 1)
    elif kind == 2:
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        user = f"{a}+{b}="
        answer = str(a + b)
    elif kind == 3:
        user = _sentence(rng).rstrip(".!") + "?"
        answer = " ".join(_sentence(rng) for _ in range(rng.randint(1, 2)))
    else:
        user = f"{rng.choice(EMOJI)} {_sentence(rng)}"
        answer = f"<think>{_sentence(rng)}</think>\n\n{_sentence(rng)} {rng.choice(EMOJI)}"
    turns = []
    if rng.random() < 0.5:
        turns.append(f"system\n{rng.choice(SYSTEM_PROMPTS)}\n")
    turns.append(f"user\n{user}\n")
    turns.append(f"assistant\n{answer}\n")
    return "".join(turns)


def corpus(seed: int = SEED) -> list[str]:
    """The training texts, the same list for the same seed."""
    rng = random.Random(seed)
    texts = [paragraph for paragraph in LORE.split("\n\n")] * 4
    makers = [_sentence] * 6 + [_arithmetic] * 3 + [_binary] * 3 + [_json_answer, _chat, _chat, _chat]
    for _ in range(12000):
        texts.append(rng.choice(makers)(rng))
    # a sprinkle of code-like text and symbols, so punctuation has tokens of its own
    texts += [
        'def main() -> int:\n    return 0\n\nif __name__ == "__main__":\n    main()\n',
        '{\n  "messages": [\n    {"role": "user", "content": "Hi"}\n  ]\n}\n',
        "- item one\n- item two\n* bold ** and `code` # heading ( ) [ ] < > / \\ | ~ ^ % $ @ & ' \"\n",
    ] * 20
    return texts


# --- the build -----------------------------------------------------------------------------------


def build_tokenizer(vocab_size: int = VOCAB_SIZE, seed: int = SEED):
    """Train the BPE and wrap it as a ``PreTrainedTokenizerFast`` (not yet saved)."""
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(ADDED_TOKENS),
        min_frequency=2,
        show_progress=False,
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus(seed), trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED_TOKENS])
    if tok.get_vocab_size() != vocab_size:
        raise RuntimeError(f"trained vocab has {tok.get_vocab_size()} tokens, wanted {vocab_size}")

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD,
        bos_token=None,
        unk_token=None,
        chat_template=CHATML_TEMPLATE,
        model_max_length=MODEL_MAX_LENGTH,
        padding_side="right",
        clean_up_tokenization_spaces=False,
        add_prefix_space=False,
    )


def build(out: Path = DEFAULT_OUT) -> list[Path]:
    """Build and save into ``out`` (created if needed); return the files written."""
    tokenizer = build_tokenizer()
    out.mkdir(parents=True, exist_ok=True)
    # Save into a scratch folder first, then move the files over, so a failed build never leaves
    # a half-written tokenizer behind.
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as scratch:
        # save_jinja_files=False keeps the chat template inside tokenizer_config.json, where
        # every transformers version (4.x too) looks for it.
        files = [Path(f) for f in tokenizer.save_pretrained(scratch, save_jinja_files=False)]
        config_file = Path(scratch) / "tokenizer_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8"))
        # transformers 5 writes its own class name ("TokenizersBackend"), which 4.x cannot
        # resolve; "PreTrainedTokenizerFast" means the same thing to both.
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        # Name the ChatML markers as special (as Qwen3 does), so skip_special_tokens drops them.
        config.pop("extra_special_tokens", None)
        config["additional_special_tokens"] = [IM_START, IM_END]
        text = json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        config_file.write_text(text, encoding="utf-8")
        written = []
        for file in files:
            if not file.exists():
                continue
            target = out / file.name
            file.replace(target)
            written.append(target)
    return sorted(written)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.tokenizer_build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write (default: assets/dio-nano)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    written = build(args.out)
    total = sum(path.stat().st_size for path in written)
    for path in written:
        print(f"{path}  {path.stat().st_size:,} bytes")
    print(f"DIO-nano tokenizer: {VOCAB_SIZE} tokens, {total:,} bytes, built in {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
