"""The ChatML text DIO is trained on and prompted with, and its token ids with loss labels.

DIO sees plain ChatML, the same text the tokenizer's chat template writes::

    <|im_start|>{role}\\n{content}<|im_end|>\\n

and learns only what the assistant says: the loss covers each assistant turn's content and its
closing ``<|im_end|>`` (so DIO learns to stop), nothing else. Training, the skill evals and the
oracle's eval prompts all encode a chat here, so they agree on every token boundary.
"""

from __future__ import annotations

from typing import NamedTuple

IGNORE_INDEX = -100
IM_START, IM_END = "<|im_start|>", "<|im_end|>"

# Plain ChatML, no Qwen3 <think> injection. Kept in one place: the DIO-nano build ships it and
# loading.load_tokenizer puts it on tokenizers whose own template writes something else.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

Example = list[dict]  # OpenAI messages: [{"role": "user", "content": "..."}, ...]


class EncodedExample(NamedTuple):
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX where there is no loss; not shifted (HF models shift)


def render_chatml(messages: Example, add_generation_prompt: bool = False) -> str:
    """The ChatML text of ``messages``: what ``CHATML_TEMPLATE`` renders."""
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")


def encode_chat(tokenizer, messages: Example, max_length: int) -> EncodedExample:
    """Token ids of the ChatML rendering, with labels on assistant content + its ``<|im_end|>``.

    The text is exactly ``render_chatml(messages)`` (and the chat template's output). It is
    encoded piece by piece: the ``<|im_start|>role\\n`` header, the content, ``<|im_end|>``,
    ``\\n``. That is the split generation sees (the prompt ends at ``assistant\\n``, and the
    reply is tokenized on its own), and it keeps the mask exact. Control tokens typed inside a
    message's content (a literal ``<|im_end|>``) are encoded as plain text, so content cannot
    forge turn boundaries; added non-special tokens such as ``<think>`` stay single tokens.
    The result is cut to the first ``max_length`` tokens. A ``TextExample`` (from a raw-text
    quest) is encoded by ``encode_text`` instead, so callers can pass any quest example here.
    """
    if isinstance(messages, str):
        return encode_text(tokenizer, messages, max_length)
    if max_length < 1:
        raise ValueError("max_length must be at least 1")
    start, end, newline = _markers(tokenizer)
    input_ids: list[int] = []
    labels: list[int] = []
    for message in messages:
        head = start + text_ids(tokenizer, message["role"] + "\n")
        body = text_ids(tokenizer, message["content"]) if message["content"] else []
        input_ids += head + body + end + newline
        if message["role"] == "assistant":
            labels += [IGNORE_INDEX] * len(head) + body + end + [IGNORE_INDEX] * len(newline)
        else:
            labels += [IGNORE_INDEX] * (len(head) + len(body) + len(end) + len(newline))
        if len(input_ids) >= max_length:
            break
    return EncodedExample(input_ids[:max_length], labels[:max_length])


def encode_text(tokenizer, text: str, max_length: int) -> EncodedExample:
    """Raw text, trained on every token; the end-of-text token closes it so DIO learns to stop."""
    if max_length < 1:
        raise ValueError("max_length must be at least 1")
    ids = text_ids(tokenizer, text) if text else []
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    ids = ids[:max_length]
    return EncodedExample(ids, list(ids))


def text_ids(tokenizer, text: str) -> list[int]:
    """``text`` as ordinary text: special tokens written in it are not matched."""
    # verbose=False: a text past the tokenizer's own model_max_length is no fault here (train.max_length rules)
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True, verbose=False)["input_ids"]


def _markers(tokenizer) -> tuple[list[int], list[int], list[int]]:
    """Ids of ``<|im_start|>``, ``<|im_end|>`` and ``\\n``.

    The markers are matched as single tokens when the vocabulary has them (DIO-nano, Qwen), and
    encoded as text by tokenizers that lack them.
    """
    start = tokenizer(IM_START, add_special_tokens=False)["input_ids"]
    end = tokenizer(IM_END, add_special_tokens=False)["input_ids"]
    return start, end, text_ids(tokenizer, "\n")
