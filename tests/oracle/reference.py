"""The baseline the oracle must equal: plain ``model.generate`` (greedy) on a checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys


def generate_answers(folder, prompts, n) -> list[str]:
    """Greedy answers from plain ``model.generate`` on the checkpoint (the baseline to equal)."""
    import torch

    from realm.config import ModelConfig
    from realm.model.loading import load_model

    model, tok = load_model(ModelConfig(device="cpu"), checkpoint=folder)
    model.eval()
    stop = [tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")]
    answers = []
    for prompt in prompts:
        ids = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=True, add_generation_prompt=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, eos_token_id=stop)[0, len(ids) :]
        answers.append(tok.decode([t for t in out.tolist() if t not in stop], skip_special_tokens=True))
    return answers


def fresh_process_answers(folder, prompts, n) -> list[str]:
    """``generate_answers`` in a fresh Python process."""
    code = (
        "import json, sys, torch; torch.set_num_threads(1); "
        "from tests.oracle.reference import generate_answers; "
        "print(json.dumps(generate_answers(sys.argv[1], json.loads(sys.argv[3]), int(sys.argv[2]))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(n), json.dumps(prompts)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])
