"""Where the shipped files (``assets/`` and ``configs/``) are, in a checkout or a wheel install.

A checkout (and ``pip install -e``) reads them beside the packages. A wheel installs them as
data files under ``{sys.prefix}/share/realm-of-training/`` (see pyproject.toml)."""

from __future__ import annotations

import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
INSTALLED = Path(sys.prefix) / "share" / "realm-of-training"


def shipped(relative: str) -> Path:
    """The path of a shipped file or folder, e.g. ``shipped("assets/dio-nano")``."""
    local = CHECKOUT / relative
    if local.exists() or not (INSTALLED / relative).exists():
        return local  # a missing file is reported at its checkout path, where a developer looks
    return INSTALLED / relative
