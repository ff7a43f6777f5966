"""What every ``realm`` command shares: the --home/--config options and what they load, the
clients for the trainer and the oracle, logging, exit codes, and the one-line error report."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
from pathlib import Path

from realm.bus import RealmClient, RequestFailed, TrainerUnreachable, socket_file
from realm.config import ConfigError, RealmConfig, resolve_config_path, resolve_home
from realm.errors import RealmError, SetupError
from realm.home import Home, lock_holder
from realm.hosts import connect_oracle, connect_trainer
from realm.oracle.client import OracleClient
from realm.overrides import load_home_config
from realm.vault.champion import BadReference, check_reference

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_PIPE = 128 + 13  # what a shell reports for a writer killed by SIGPIPE: the reader stopped reading
EXIT_INTERRUPTED = 130


class CommandError(RealmError):
    """A failure to report as ``realm: message`` with a non-zero exit."""


class UsageError(CommandError):
    """A command that cannot run as asked: ``realm: message`` and exit code 2."""


def checkpoint_reference(ref: str, label: str = "STEP") -> str:
    """A checkpoint reference checked for form before any socket or file is touched."""
    try:
        return check_reference(ref)
    except BadReference as exc:
        raise UsageError(f"{label} {exc}") from None


def step_count(text: str) -> int:
    """argparse type for a number of optimizer steps: a whole number, at least 1."""
    steps = int(text) if text.strip().lstrip("+").isdigit() else 0
    if steps < 1:
        raise argparse.ArgumentTypeError(f"expected a number of steps, 1 or more; got {text!r}")
    return steps


def port_number(text: str) -> int:
    """argparse type for a TCP port: 1 to 65535 (the OS took 99999 as 99999 mod 65536)."""
    port = int(text) if text.strip().isdigit() else 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port, 1 to 65535; got {text!r}")
    return port


def common_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--home", metavar="DIR", help="data root (default: $REALM_HOME or ./realm-home)")
    parser.add_argument("--config", metavar="FILE", help="config file (default: $REALM_CONFIG or HOME/realm.yaml)")
    return parser


def load_context(args) -> tuple[Path, RealmConfig, Path | None]:
    """(home, config, config file or None) from the command's --home and --config; the config
    is the file's with the home's overrides.yaml (the Armory's saved changes) over it."""
    home = resolve_home(args.home)
    config_path = resolve_config_path(args.config, home)
    return home, load_home_config(home, config_path), config_path


def trainer_client(args) -> RealmClient:
    home, config, _ = load_context(args)
    _, control, setup = connect_trainer(config, home)  # the host registry, and CURVE when it lists a key
    if no_local_trainer(control, home):
        raise TrainerUnreachable(
            f"no trainer is running on {home}: start one with `realm play` (trainer and game) "
            "or `realm trainer` (training only), with the same --home/--config"
        )
    return RealmClient(control, timeout_s=config.bus.timeout_s, retries=config.bus.retries, socket_setup=setup)


def no_local_trainer(control: str, home: Path) -> bool:
    """True when ``control`` is an ipc socket nothing can be serving: its file is missing, or it is
    this home's and no trainer holds the home's lock. Then waiting for timeouts and retries tells
    nothing more; other transports may reach a trainer on another machine, so they are tried."""
    path = socket_file(control)
    if path is None:
        return False
    if not path.exists():
        return True
    paths = Home(home)
    return path.resolve().parent == paths.run.resolve() and not lock_holder(paths.trainer_lock)


def oracle_client(args, *, timeout_s: float | None = None) -> OracleClient:
    home, config, _ = load_context(args)
    _, control, setup = connect_oracle(config, home, getattr(args, "oracle", None))
    return OracleClient(
        control, timeout_s=timeout_s or config.bus.timeout_s, retries=config.bus.retries, socket_setup=setup
    )


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(stream=sys.stderr) -> None:
    logging.basicConfig(level=logging.INFO, stream=stream, format=LOG_FORMAT)


class _OutputFollowingHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated log that this process's stdout and stderr also write to (a traceback, a library's
    print), moved onto each new file at rotation, so nothing keeps writing into a rotated one."""

    def _open(self):
        stream = super()._open()
        sys.stdout.flush()
        sys.stderr.flush()
        for fd in (1, 2):
            os.dup2(stream.fileno(), fd)
        return stream


def setup_file_logging(path: Path, max_bytes: int, keep: int) -> None:
    """Log to ``path``, rotated past ``max_bytes`` (0: never) into ``path.1`` ... ``path.{keep}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = _OutputFollowingHandler(path, maxBytes=max_bytes, backupCount=keep, encoding="utf-8")
    logging.basicConfig(level=logging.INFO, handlers=[handler], format=LOG_FORMAT)


def run_command(args) -> int:
    """Run the parsed command; a failure becomes one line, ``realm: ...``, and its exit code."""
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"realm: bad config: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, SetupError) as exc:
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
        return EXIT_INTERRUPTED


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"
