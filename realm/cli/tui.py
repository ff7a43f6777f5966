"""``realm tui``: the Textual app connected to a trainer, in the terminal or served to a browser;
and what ``realm play`` shares with it (the checked keymap, the CURVE link to the trainer)."""

from __future__ import annotations

import base64
import shlex
import sys
import tempfile
from pathlib import Path

from realm.cli.common import EXIT_OK, CommandError, common_options, load_context, port_number
from realm.hosts import trainer_endpoints
from realm.resources import shipped
from realm.security import client_setup
from realm.tui.oracles import registry_oracles

PAGE_TEMPLATE = Path(__file__).with_name("serve_page.html")  # textual-serve's page, with the font added
PAGE_FONT = "assets/fonts/enclosed-alphanumerics.woff2"


def add_parsers(sub) -> None:
    tui = common_options(sub.add_parser("tui", help="the Textual app, connected to a trainer"))
    tui.add_argument("--connect", metavar="ENDPOINT", help="the trainer's control endpoint (e.g. tcp://host:5555)")
    tui.add_argument("--pub", metavar="ENDPOINT", help="its event endpoint (default: beside --connect)")
    tui.add_argument("--readonly", action="store_true", help="show everything, send no command")
    tui.add_argument("--serve", action="store_true", help="serve the app to a browser (textual-serve)")
    tui.add_argument("--host", default="localhost", help="with --serve: the address to listen on")
    tui.add_argument("--port", type=port_number, default=8000, help="with --serve: the port to listen on")
    tui.add_argument("--keys", action="store_true", help="list the binding ids the config's tui.keys can rebind")
    tui.set_defaults(func=cmd_tui)


def cmd_tui(args) -> int:
    # Textual loads only here (and in play): `realm status` and the other commands start without it
    from realm.tui.app import run_tui
    from realm.tui.keymap import describe
    from realm.tui.last_known import skill_mix

    if args.keys:
        print(describe())
        return EXIT_OK
    if getattr(args, "serve", False):
        return _serve_tui(args)
    home, config, _ = load_context(args)
    keymap = checked_keymap(config)
    pub, control, _ = trainer_endpoints(config, home)
    elsewhere = bool(args.connect and args.connect != control)  # another trainer: this home's files are not its
    if elsewhere:
        control = args.connect
        pub = args.pub or _derived_pub(control)
    run_tui(
        pub,
        control,
        heartbeat_s=config.bus.heartbeat_s,
        readonly=args.readonly,
        keymap=keymap,
        oracles=registry_oracles(config, home),
        chat_max_new_tokens=config.tui.chat_max_new_tokens,
        away_after_s=config.tui.away_after_s,
        bin_glyphs=config.tui.bin_glyphs,
        oracle_follow=config.tui.oracle_follow,
        trainer_setup=trainer_link(config, home, control),
        home=None if elsewhere else home,
        skills=skill_mix(config),
    )
    return EXIT_OK


def _derived_pub(control: str) -> str:
    """The pub endpoint beside a control endpoint: ipc sibling ``trainer-pub``, or tcp port + 1."""
    if control.startswith("ipc://"):
        return f"ipc://{Path(control[len('ipc://') :]).with_name('trainer-pub')}"
    head, _, port = control.rpartition(":")
    if not port.isdigit():
        raise CommandError(f"cannot tell the event endpoint from {control!r}; pass --pub ENDPOINT")
    return f"{head}:{int(port) + 1}"


def trainer_link(config, home, control: str):
    """CURVE client keys for the TUI's link to the trainer at ``control``, when the host registry
    lists that trainer's key (a trainer it does not list has no key to check it by)."""
    _, listed, key = trainer_endpoints(config, home)
    return client_setup(config, home, key if listed == control else "", control)


def checked_keymap(config) -> dict[str, str]:
    """The config's tui.keys, checked against the app's bindings (a bad one fails before anything starts)."""
    from realm.tui.keymap import check_keymap  # imports the app, so Textual: only for the commands that show it

    return check_keymap(config.tui.keys)


def _serve_tui(args) -> int:
    """``realm tui --serve``: the same app in a browser, one app process per browser tab."""
    from textual_serve.server import Server  # Textual and an HTTP server: only for --serve

    command = [sys.executable, "-m", "realm.cli", "tui"]
    for flag in ("home", "config", "connect", "pub"):
        value = getattr(args, flag, None)
        if value:
            command += [f"--{flag}", str(Path(value).resolve()) if flag in ("home", "config") else value]
    if args.readonly:
        command.append("--readonly")
    with tempfile.TemporaryDirectory(prefix="realm-page-") as templates:
        write_page_template(Path(templates))
        print(f"Serving the Realm at http://{args.host}:{args.port} (ctrl+c stops)", flush=True)
        server = Server(
            shlex.join(command), host=args.host, port=args.port, title="Realm of Training", templates_path=templates
        )
        server.serve()
    return EXIT_OK


def write_page_template(folder: Path) -> Path:
    """The browser page's template, ``folder/app_index.html``, with BIN's circled digits inlined as a
    font: a data URL needs no route of its own, and textual-serve's static folder stays its own."""
    font = shipped(PAGE_FONT)
    if not font.is_file():
        raise CommandError(f"{font} is missing: reinstall realm-of-training (it is the browser page's font)")
    encoded = base64.b64encode(font.read_bytes()).decode("ascii")
    page = folder / "app_index.html"
    page.write_text(PAGE_TEMPLATE.read_text().replace("REALM_ENCLOSED_ALPHANUMERICS_WOFF2", encoded))
    return page
