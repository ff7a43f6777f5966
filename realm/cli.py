"""``realm``: the command line. The commands and options here are a contract (see README)."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from pathlib import Path

import msgspec

from realm.errors import RealmError
from realm.config import ConfigError, RealmConfig, endpoints, load_config, resolve_config_path, resolve_home
from realm.quest_files import quest_add_request

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_PIPE = 128 + 13  # what a shell reports for a writer killed by SIGPIPE: the reader stopped reading
STOP_WAIT_S = 120  # a stop checkpoints first; a big model needs a while to save


class CommandError(RealmError):
    """A failure to report as ``realm: message`` with a non-zero exit."""


class UsageError(CommandError):
    """A command that cannot run as asked: ``realm: message`` and exit code 2."""


# --------------------------------------------------------------------------- shared plumbing


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--home", metavar="DIR", help="data root (default: $REALM_HOME or ./realm-home)")
    parser.add_argument("--config", metavar="FILE", help="config file (default: $REALM_CONFIG or HOME/realm.yaml)")
    return parser


def _context(args) -> tuple[Path, RealmConfig, Path | None]:
    home = resolve_home(args.home)
    config_path = resolve_config_path(args.config, home)
    return home, load_config(config_path), config_path


def _client(args):
    from realm.bus import RealmClient

    from realm.hosts import connect_trainer

    home, config, _ = _context(args)
    _, control, setup = connect_trainer(config, home)  # the host registry, and CURVE when it lists a key
    return RealmClient(control, timeout_s=config.bus.timeout_s, retries=config.bus.retries, socket_setup=setup)


def _derived_pub(control: str) -> str:
    """The pub endpoint beside a control endpoint: ipc sibling ``trainer-pub``, or tcp port + 1."""
    if control.startswith("ipc://"):
        return f"ipc://{Path(control[len('ipc://'):]).with_name('trainer-pub')}"
    head, _, port = control.rpartition(":")
    if not port.isdigit():
        raise CommandError(f"cannot tell the event endpoint from {control!r}; pass --pub ENDPOINT")
    return f"{head}:{int(port) + 1}"


def _setup_logging(stream=sys.stderr) -> None:
    logging.basicConfig(
        level=logging.INFO, stream=stream, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# --------------------------------------------------------------------------- commands


def cmd_trainer(args) -> int:
    from trainer.daemon import Daemon

    home, config, config_path = _context(args)
    _setup_logging()
    logging.getLogger("realm.trainer").info("config: %s", config_path or "built-in defaults")
    return Daemon(config, home, max_steps=args.max_steps).run()


def cmd_play(args) -> int:
    from realm.home import Home, lock_holder
    from realm.oracle.commands import start_oracle, stop_oracle

    home, config, config_path = _context(args)
    keymap = {} if args.headless else _keymap(config)  # a bad tui.keys fails before anything starts
    paths = Home(home)
    playing = lock_holder(paths.trainer_lock)
    if playing:
        raise UsageError(f"a trainer (pid {playing}) already plays on {home}; `realm tui --home {home}` joins it")
    # the inference worker beside the trainer; an oracle already serving this HOME is used as it is
    oracle = None if lock_holder(paths.oracle_lock) else start_oracle(home, config_path)
    try:
        return _play(args, home, config, config_path, keymap, oracle)
    finally:
        stop_oracle(oracle)


def _play(args, home, config, config_path, keymap: dict[str, str], oracle: subprocess.Popen | None) -> int:
    if args.headless:
        return cmd_trainer(args)
    from realm.tui.app import TrainerProcess, run_tui

    pub, control = endpoints(config, home)
    (home / "logs").mkdir(parents=True, exist_ok=True)
    log_path = home / "logs" / "trainer.log"
    command = [sys.executable, "-m", "realm.cli", "trainer", "--home", str(home)]
    if config_path:
        command += ["--config", str(config_path)]
    if args.max_steps is not None:
        command += ["--max-steps", str(args.max_steps)]
    with open(log_path, "ab") as log_file:
        trainer = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        run_tui(pub, control, heartbeat_s=config.bus.heartbeat_s, keymap=keymap,
                trainer=TrainerProcess(trainer, log_path), oracles=_tui_oracles(config, home),
                chat_max_new_tokens=config.tui.chat_max_new_tokens, trainer_setup=_trainer_link(config, home, control))
    finally:
        if oracle is not None and oracle.poll() is None:
            oracle.terminate()  # SIGTERM: the oracle winds down while the trainer saves its checkpoint
        _stop_trainer(trainer, args)
    print(f"DIO rests. Trainer log: {log_path}")
    return EXIT_OK


def _stop_trainer(trainer: subprocess.Popen, args) -> None:
    from realm.bus import TrainerUnreachable
    from realm.protocol import StopRequest

    if trainer.poll() is None:
        print("Stopping the trainer (saving a checkpoint)...", flush=True)
        try:
            _client(args).request(StopRequest())
        except TrainerUnreachable:
            trainer.terminate()  # SIGTERM also checkpoints, then exits
        try:
            trainer.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            trainer.kill()
            trainer.wait()


def cmd_tui(args) -> int:
    from realm.tui.app import run_tui

    if args.keys:
        from realm.tui.keymap import describe

        print(describe())
        return EXIT_OK
    if getattr(args, "serve", False):
        return _serve_tui(args)
    from realm.hosts import trainer_endpoints

    home, config, _ = _context(args)
    keymap = _keymap(config)
    pub, control, _ = trainer_endpoints(config, home)
    if args.connect and args.connect != control:
        control = args.connect
        pub = args.pub or _derived_pub(control)
    run_tui(pub, control, heartbeat_s=config.bus.heartbeat_s, readonly=args.readonly, keymap=keymap,
            oracles=_tui_oracles(config, home), chat_max_new_tokens=config.tui.chat_max_new_tokens,
            trainer_setup=_trainer_link(config, home, control))
    return EXIT_OK


def _trainer_link(config, home, control: str):
    """CURVE client keys for the TUI's link to the trainer at ``control``, when the host registry
    lists that trainer's key (a trainer it does not list has no key to check it by)."""
    from realm.hosts import trainer_endpoints
    from realm.security import client_setup

    _, listed, key = trainer_endpoints(config, home)
    return client_setup(config, home, key if listed == control else "", control)


def _keymap(config) -> dict[str, str]:
    from realm.tui.keymap import check_keymap

    return check_keymap(config.tui.keys)


def _tui_oracles(config, home):
    """The oracle nodes of the host registry, for the Oracle and Watchtower screens."""
    from realm.tui.oracles import registry_oracles

    return registry_oracles(config, home)


def _serve_tui(args) -> int:
    """``realm tui --serve``: the same app in a browser, one app process per browser tab."""
    import shlex

    from textual_serve.server import Server

    command = [sys.executable, "-m", "realm.cli", "tui"]
    for flag in ("home", "config", "connect", "pub"):
        value = getattr(args, flag, None)
        if value:
            command += [f"--{flag}", str(Path(value).resolve()) if flag in ("home", "config") else value]
    if args.readonly:
        command.append("--readonly")
    print(f"Serving the Realm at http://{args.host}:{args.port} (ctrl+c stops)", flush=True)
    Server(shlex.join(command), host=args.host, port=args.port, title="Realm of Training").serve()
    return EXIT_OK


def cmd_status(args) -> int:
    snapshot = _client(args).snapshot()
    if args.json:
        sys.stdout.write(msgspec.json.encode(snapshot).decode() + "\n")
    else:
        print(format_status(snapshot))
    return EXIT_OK


def format_status(snapshot) -> str:
    from realm.game.hero import hero_stats

    state = snapshot.state
    stats = hero_stats(state)
    battle = state.battle

    def num(value, fmt="{:.3f}"):
        return "-" if value is None else fmt.format(value)

    lines = [
        f"DIO  Lv {stats.level}  XP {stats.xp} ({stats.xp_into_level}/{stats.xp_for_level})  "
        f"ATK {num(stats.atk)}  DEF {num(stats.defense)}  ACC {num(stats.acc, '{:.0%}')}  Gold {stats.gold}",
        "  ATK = 1/train loss · DEF = 1/suite loss (held-out, same for every checkpoint) · ACC = eval accuracy",
    ]
    quest = f"{battle.quest.name} {battle.quest_step}/{battle.quest_total}" if battle.quest else "none"
    lines.append(
        f"battle: {battle.status}  quest: {quest}  loss {num(battle.loss)}  {battle.tokens_per_s:,.0f} tok/s"
    )
    if battle.reason:
        lines.append(f"why {battle.status}: {battle.reason}")
    lines.append(f"queue: {len(state.board.queued)} quest(s) waiting")
    checkpoints = state.vault.checkpoints
    latest = checkpoints[-1].name if checkpoints else "none"
    champion = f", champion step {state.vault.champion}" if state.vault.champion is not None else ", no champion yet"
    lines.append(f"vault: {len(checkpoints)} checkpoint(s), latest {latest}{champion}")
    lines += _skills_status(state)
    if state.trainer:
        t = state.trainer
        lines.append(f"trainer: {t.model} on {t.device}, {t.parameters / 1e6:.2f}M params, pid {t.pid}, run {snapshot.run}")
    return "\n".join(lines)


def _skills_status(state) -> list[str]:
    """One line for the skills (issue 4): level and latest accuracy per skill."""
    skills = state.skills.skills
    if not skills:
        return []
    parts = [
        f"{s.short_name or s.id} L{s.level}/{s.max_level} acc {'-' if s.accuracy is None else f'{s.accuracy:.0%}'}"
        for s in skills
    ]
    return ["skills: " + ", ".join(parts)]


def _control_command(request_type):
    def run(args) -> int:
        reply = _client(args).request(request_type())
        print(getattr(reply, "message", "") or "ok")
        return EXIT_OK

    return run


# --------------------------------------------------------------------------- quests


def cmd_quest_add(args) -> int:
    _, config, _ = _context(args)
    request = quest_add_request(Path(args.file), args.priority, config.bus.max_message_bytes)
    print(_client(args).request(request).message)
    return EXIT_OK


def cmd_quest_list(args) -> int:
    from realm.protocol import QuestListRequest

    reply = _client(args).request(QuestListRequest())
    if args.json:
        sys.stdout.write(msgspec.json.encode({"quests": reply.quests}).decode() + "\n")
    else:
        print(format_quest_list(reply.quests))
    return EXIT_OK


def format_quest_list(quests) -> str:
    lines = []
    for state in ("queued", "active", "done", "skipped", "failed", "removed"):
        group = [quest for quest in quests if quest.state == state]
        if not group and state not in ("queued", "active"):
            continue
        lines.append(f"{state} ({len(group)})" + (":" if group else ""))
        for quest in group:
            head = f"{quest.position + 1:>3}. {quest.priority:<6} " if state == "queued" else "     "
            line = f"  {head}{quest.name}  {quest.bytes:,} B"
            if quest.quarantine:
                line += f"  quarantine: {quest.quarantine}"
            lines.append(line)
            if quest.reason:
                lines.append(f"         {quest.reason}")
    return "\n".join(lines)


def _quest_command(make_request):
    def run(args) -> int:
        print(_client(args).request(make_request(args)).message)
        return EXIT_OK

    return run


def _add_quest_parser(sub) -> None:
    from realm.protocol import QuestRemoveRequest, QuestRetryRequest

    quest = sub.add_parser("quest", help="the quest queue: add, list, retry, remove")
    actions = quest.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = _common(actions.add_parser("add", help="send a quest file to the trainer (validated at once)"))
    add.add_argument("file", metavar="FILE", help="a JSONL quest (messages, conversations, alpaca, prompt/completion, text)")
    add.add_argument("--priority", choices=("high", "normal", "low"), default="normal")
    add.set_defaults(func=cmd_quest_add)
    listing = _common(actions.add_parser("list", help="every quest: queued, active, done, skipped, failed, removed"))
    listing.add_argument("--json", action="store_true", help="one JSON document, stable for scripts")
    listing.set_defaults(func=cmd_quest_list)
    retry = _common(actions.add_parser("retry", help="put a failed or skipped quest back in the queue"))
    retry.add_argument("name", metavar="NAME")
    retry.set_defaults(func=_quest_command(lambda args: QuestRetryRequest(name=args.name)))
    remove = _common(actions.add_parser("remove", help="take a queued quest off the queue (kept in quests/removed/)"))
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(func=_quest_command(lambda args: QuestRemoveRequest(name=args.name)))


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from realm.protocol import PauseRequest, ResumeRequest, SkipRequest, StopRequest

    parser = argparse.ArgumentParser(
        prog="realm",
        description="Realm of Training: an idle RPG whose hero, DIO, is a language model in real training.",
        epilog="Start with `realm play`. Every command takes --home DIR and --config FILE.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    play = _common(sub.add_parser("play", help="trainer + TUI on this machine, embedded defaults"))
    play.add_argument("--headless", action="store_true", help="no TUI: train in the foreground")
    play.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps (with a checkpoint)")
    play.set_defaults(func=cmd_play)

    trainer = _common(sub.add_parser("trainer", help="the headless trainer (what systemd runs)"))
    trainer.add_argument("--max-steps", type=int, metavar="N", help="stop after N optimizer steps (with a checkpoint)")
    trainer.set_defaults(func=cmd_trainer)

    tui = _common(sub.add_parser("tui", help="the Textual app, connected to a trainer"))
    tui.add_argument("--connect", metavar="ENDPOINT", help="the trainer's control endpoint (e.g. tcp://host:5555)")
    tui.add_argument("--pub", metavar="ENDPOINT", help="its event endpoint (default: beside --connect)")
    tui.add_argument("--readonly", action="store_true", help="show everything, send no command")
    tui.add_argument("--serve", action="store_true", help="serve the app to a browser (textual-serve)")
    tui.add_argument("--host", default="localhost", help="with --serve: the address to listen on")
    tui.add_argument("--port", type=int, default=8000, help="with --serve: the port to listen on")
    tui.add_argument("--keys", action="store_true", help="list the binding ids the config's tui.keys can rebind")
    tui.set_defaults(func=cmd_tui)

    status = _common(sub.add_parser("status", help="one snapshot of the realm, from the trainer"))
    status.add_argument("--json", action="store_true", help="one JSON document, stable for scripts")
    status.set_defaults(func=cmd_status)

    for name, request, text in (
        ("pause", PauseRequest, "pause training after the current step"),
        ("resume", ResumeRequest, "resume training"),
        ("stop", StopRequest, "checkpoint, then stop the trainer"),
        ("skip", SkipRequest, "end the current quest as skipped after this step"),
    ):
        _common(sub.add_parser(name, help=text)).set_defaults(func=_control_command(request))
    _add_quest_parser(sub)
    _add_skills_parser(sub)

    from realm.oracle.commands import add_commands as add_oracle_commands

    add_oracle_commands(sub, _common)  # oracle, chat, vault
    return parser


def _add_skills_parser(sub) -> None:
    from realm.skills.cli import add_parser

    add_parser(sub, _common)


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _run(build_parser().parse_args(argv))
        finally:
            sys.stdout.flush()  # a reader gone early (`realm status | head`) shows here, not at exit
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return EXIT_PIPE


def tui_main(argv: list[str] | None = None) -> int:
    """``realm-tui``: the same as ``realm tui``."""
    return main(["tui", *(sys.argv[1:] if argv is None else argv)])


def _run(args) -> int:
    from realm.bus import RequestFailed, TrainerUnreachable

    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"realm: bad config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"realm: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (TrainerUnreachable, RequestFailed, RealmError) as exc:
        print(f"realm: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except BrokenPipeError:
        raise  # main's: the reader went away, not an error to report
    except OSError as exc:  # a file or folder the command was pointed at: say which and why, in one line
        print(f"realm: {_os_error(exc)}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


if __name__ == "__main__":
    sys.exit(main())
