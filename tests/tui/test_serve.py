"""`realm tui --serve`: textual-serve answers in a browser's place with the app's page."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_with_the_app_page(tmp_path):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "realm.cli",
        "tui",
        "--serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--home",
        str(tmp_path / "home"),
        "--readonly",
    ]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        page = ""
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read().decode()
                    break
            except OSError:
                time.sleep(0.2)
        assert "textual" in page.lower(), f"no page (exit {server.poll()})"
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0].decode()
    assert "--readonly" in output and "realm.cli tui" in output  # the command each tab runs
