"""`realm tui --serve`: textual-serve answers in a browser's place with the app's page, which ships a font
with BIN's circled digits (U+24EA, U+2460)."""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import textual_serve
from fontTools.ttLib import TTFont

from realm.cli.tui import PAGE_TEMPLATE, write_page_template

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[2]
FONT_FACE = re.compile(r"@font-face\s*{([^}]*)}")
DATA_URL = re.compile(r"url\(data:font/woff2;base64,([A-Za-z0-9+/=]+)\)")
OURS = re.compile(r"    <!-- realm .*?<!-- /realm -->\n", re.DOTALL)


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


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


@pytest.fixture
def served_page(tmp_path):
    """The page a browser gets from a real ``realm tui --serve`` in a home with no trainer."""
    port = free_port()
    env = {**os.environ, "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "realm.cli", "tui", "--serve", "--home", str(tmp_path / "realm"), "--port"]
    server = subprocess.Popen(
        [*command, str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert "Serving the Realm at" in server.stdout.readline()
        deadline = time.monotonic() + 60  # the server binds just after it says so
        while True:
            try:
                status, page = _get(f"http://localhost:{port}/")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "realm tui --serve did not listen"
                time.sleep(0.2)
        assert status == 200
        yield page.decode()
    finally:
        server.terminate()
        server.communicate(timeout=10)


def _font_faces(page: str) -> list[str]:
    return [face for face in FONT_FACE.findall(page) if "unicode-range: U+2460-24FF" in face]


def test_the_served_page_declares_a_font_with_bins_circled_digits(served_page):
    page = served_page
    [face] = _font_faces(page)
    assert 'font-family: "Roboto Mono"' in face  # the family textual.js gives the terminal
    [encoded] = DATA_URL.findall(face)
    font = TTFont(io.BytesIO(base64.b64decode(encoded)))
    cmap = font.getBestCmap()
    assert 0x24EA in cmap and 0x2460 in cmap
    cell = round(0.6 * font["head"].unitsPerEm)  # Roboto Mono's advance: one terminal cell
    assert {font["hmtx"][cmap[code]][0] for code in (0x24EA, 0x2460)} == {cell}
    statics = re.findall(r'(?:src|href)="(http://localhost:[^"]+/static/[^"]+)"', page)
    assert len(statics) == 2  # textual-serve's own css and js, which still load
    for static in statics:
        assert _get(static)[0] == 200, static


def test_the_page_template_is_textual_serves_plus_the_font_only(tmp_path):
    """When textual-serve's template changes (an upgrade), serve_page.html needs remaking from it."""
    upstream = Path(textual_serve.__file__).with_name("templates") / "app_index.html"
    assert OURS.sub("", PAGE_TEMPLATE.read_text()) == upstream.read_text()
    page = write_page_template(tmp_path).read_text()
    assert len(_font_faces(page)) == 1 and "REALM_" not in page
