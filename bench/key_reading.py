"""Can DIO-nano read a BIN symbol language? Its architecture trained from scratch on reading alone.

    python bench/key_reading.py [--steps S] [--width W] [--hidden H] [--layers L] [--languages ...]

Each sample is a key and an operand in a symbol language, to be read out in circled digits:
``key: ▲=0 ●=1`` / ``read ▲●●▲ =`` -> ``⓪①①⓪``. Two ways to draw the language:

* ``fixed``: BIN's (1.7.0 on): one of 8 glyphs that always mean 0 and one of 8 that always mean 1;
* ``per-problem``: any two of the 16 glyphs, either way round (BIN 1.5.0), so only the key says
  which is 0: reading it means matching each glyph to its copy in the key and taking the value
  after it, an induction circuit of two attention layers.

A DIO-nano of random weights (or a wider or deeper one), the shipped tokenizer, AdamW at DIO-nano's
learning rate, 16 samples a step, loss on the answer only. Every 250 steps it prints the share of
answer glyphs right and of answers whole on 200 held-out samples (teacher-forced argmax, which is
what greedy decoding writes while it is right). One thread: ~2-4 minutes a language.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import transformers  # noqa: E402

from realm.model.chatml import IGNORE_INDEX  # noqa: E402
from realm.model.loading import dio_nano_config, load_tokenizer  # noqa: E402
from realm.skills.bin import ONE, ONE_GLYPHS, SYMBOLS, ZERO, ZERO_GLYPHS  # noqa: E402

LR, WARMUP, BATCH, EVAL_EVERY = 3e-3, 20, 16, 250


def sample(language: str, width: int, rng: random.Random) -> tuple[str, str]:
    zero, one = (rng.choice(ZERO_GLYPHS), rng.choice(ONE_GLYPHS)) if language == "fixed" else rng.sample(SYMBOLS, 2)
    bits = [rng.randint(0, 1) for _ in range(width)]
    prompt = f"key: {zero}=0 {one}=1\nread {''.join(one if b else zero for b in bits)} =\n"
    return prompt, "".join(ONE if b else ZERO for b in bits)


def batch(tokenizer, language: str, width: int, rng: random.Random, n: int):
    ids, labels = [], []
    for _ in range(n):
        prompt, answer = sample(language, width, rng)
        p = tokenizer(prompt, add_special_tokens=False).input_ids
        a = tokenizer(answer, add_special_tokens=False).input_ids
        ids.append(p + a)
        labels.append([IGNORE_INDEX] * len(p) + a)
    longest = max(map(len, ids))
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([row + [pad] * (longest - len(row)) for row in ids])
    targets = torch.tensor([row + [IGNORE_INDEX] * (longest - len(row)) for row in labels])
    return input_ids, targets, (input_ids != pad).long()


@torch.no_grad()
def accuracy(model, held_out) -> tuple[float, float]:
    """(glyphs right, answers whole) of the held-out batch, teacher-forced argmax."""
    input_ids, targets, mask = held_out
    predicted = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1].argmax(-1)
    wanted = targets[:, 1:]
    scored = wanted != IGNORE_INDEX
    right = (predicted == wanted) & scored
    return right.sum().item() / scored.sum().item(), (right | ~scored).all(1).float().mean().item()


def train(language: str, args, tokenizer) -> None:
    torch.manual_seed(0)
    overrides = {} if args.hidden == 128 else dict(hidden_size=args.hidden, intermediate_size=3 * args.hidden)
    model = transformers.AutoModelForCausalLM.from_config(
        dio_nano_config(len(tokenizer), num_hidden_layers=args.layers, **overrides)
    )
    parameters = sum(p.numel() for p in model.parameters()) / 1e6
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    rng, held_out = random.Random(1), batch(tokenizer, language, args.width, random.Random(99), 200)
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = LR * min(1.0, step / WARMUP)
        input_ids, targets, mask = batch(tokenizer, language, args.width, rng, BATCH)
        loss = model(input_ids=input_ids, attention_mask=mask, labels=targets).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % EVAL_EVERY == 0:
            glyphs, whole = accuracy(model, held_out)
            print(
                f"{language:>11} ({parameters:.2f}M): step {step:>5}  loss {loss.item():.3f}  "
                f"glyphs right {glyphs:4.0%}  answers whole {whole:4.0%}  ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3000, help="training steps a language (default 3000)")
    parser.add_argument("--width", type=int, default=8, help="glyphs an operand (default 8; 1: one glyph to read)")
    parser.add_argument("--hidden", type=int, default=128, help="model width (128 = DIO-nano)")
    parser.add_argument("--layers", type=int, default=4, help="decoder layers (4 = DIO-nano)")
    parser.add_argument("--languages", nargs="+", default=["fixed", "per-problem"], choices=["fixed", "per-problem"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer = load_tokenizer("builtin:dio-nano")
    for language in args.languages:
        train(language, args, tokenizer)


if __name__ == "__main__":
    main()
