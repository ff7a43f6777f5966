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


def test_readme_setup_installs_from_the_lock():
    lock = (ROOT / "configs" / "requirements.lock").read_text()
    pins = [line for line in lock.splitlines() if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[^=\s]+", pin) for pin in pins), "every line is an exact pin"
    names = {pin.split("==")[0].lower().replace("_", "-") for pin in pins}
    assert {"torch", "textual", "msgspec", "pyzmq", "transformers", "pytest"} <= names
    assert re.search(r"^torch==[\d.]+$", lock, re.M), "torch without a build tag: each platform takes its own build"
    for command in readme_commands()[:2]:
        assert "-c configs/requirements.lock" in command
