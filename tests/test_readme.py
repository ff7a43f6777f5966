"""The README's two commands are the ones that work: CI runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [block.strip() for block in blocks]


def test_ci_runs_the_readme_test_command():
    play, tests = readme_commands()[:2]
    assert play.endswith("realm play") and tests.endswith("python -m pytest")
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_readme_setup_pins_the_cpu_torch_that_ci_uses():
    constraints = (ROOT / "configs" / "cpu-constraints.txt").read_text()
    assert re.search(r"^torch==\d", constraints, re.M)
    for command in readme_commands()[:2]:
        assert "-c configs/cpu-constraints.txt" in command
