"""``realm play | trainer | status | pause | resume | stop | skip``: start the trainer (alone or
with the TUI and an oracle beside it), read its snapshot, and control it through the bus."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import msgspec

from realm.bus import TrainerUnreachable
from realm.cli.common import (
    EXIT_OK,
    UsageError,
    common_options,
    load_context,
    setup_file_logging,
    setup_logging,
    step_count,
    trainer_client,
)
from realm.cli.oracle import OracleKeeper
from realm.cli.tui import checked_keymap, trainer_link
from realm.config import endpoints, resolve_home
from realm.game.hero import hero_stats
from realm.home import Home, lock_holder
from realm.overrides import OVERRIDES, overridden, yaml_text
from realm.protocol import PauseRequest, ResumeRequest, SkipRequest, StopRequest
from realm.tui.oracles import registry_oracles

STOP_WAIT_S = 120  # a stop checkpoints first; a big model needs a while to save


def add_parsers(sub) -> None:
    play = common_options(sub.add_parser("play", help="trainer + TUI on this machine, embedded defaults"))
    play.add_argument("--headless", action="store_true", help="no TUI: train in the foreground")
    play.add_argument(
        "--max-steps", type=step_count, metavar="N", help="stop after N optimizer steps (with a checkpoint)"
    )
    play.set_defaults(func=cmd_play)

    trainer = common_options(sub.add_parser("trainer", help="the headless trainer (what systemd runs)"))
    trainer.add_argument(
        "--max-steps", type=step_count, metavar="N", help="stop after N optimizer steps (with a checkpoint)"
    )
    trainer.add_argument(
        "--log-file",
        metavar="FILE",
        help="log (and stdout/stderr) to FILE, rotated past train.log_max_mb into FILE.1 ... (default: stderr)",
    )
    trainer.set_defaults(func=cmd_trainer)


def add_control_parsers(sub) -> None:
    status = common_options(sub.add_parser("status", help="one snapshot of the realm, from the trainer"))
    status.add_argument("--json", action="store_true", help="one JSON document, stable for scripts")
    status.set_defaults(func=cmd_status)

    for name, request, text in (
        ("pause", PauseRequest, "pause training after the current step"),
        ("resume", ResumeRequest, "resume training"),
        ("stop", StopRequest, "checkpoint, then stop the trainer"),
        ("skip", SkipRequest, "end the current quest as skipped after this step"),
    ):
        common_options(sub.add_parser(name, help=text)).set_defaults(func=_control_command(request))


def cmd_trainer(args) -> int:
    # trainer/ (torch, transformers) loads only in the trainer's own process: `realm status` never pays for it
    from trainer.daemon import Daemon

    home, config, config_path = load_context(args)
    if getattr(args, "log_file", None):
        setup_file_logging(Path(args.log_file), int(config.train.log_max_mb * 2**20), config.train.log_keep)
    else:
        setup_logging()
    logging.getLogger("realm.trainer").info("config: %s", config_path or "built-in defaults")
    return Daemon(config, home, max_steps=args.max_steps).run()


def cmd_play(args) -> int:
    from trainer.trackers import check_trackers  # accelerate loads only when train.log_with names a tracker

    home, config, config_path = load_context(args)
    check_trackers(config.train.log_with)  # here too: the TUI's trainer is a child process
    keymap = {} if args.headless else checked_keymap(config)  # a bad tui.keys fails before anything starts
    paths = Home(home)
    playing = lock_holder(paths.trainer_lock)
    if playing:
        raise UsageError(f"a trainer (pid {playing}) already plays on {home}; `realm tui --home {home}` joins it")
    # the inference worker beside the trainer; an oracle already serving this HOME is used as it is
    oracle = None if lock_holder(paths.oracle_lock) else OracleKeeper(home, config_path)
    try:
        return _play(args, home, config, config_path, keymap, oracle)
    finally:
        if oracle is not None:
            oracle.stop()


def _play(args, home, config, config_path, keymap: dict[str, str], oracle: OracleKeeper | None) -> int:
    if args.headless:
        return cmd_trainer(args)
    from realm.tui.app import TrainerProcess, run_tui  # Textual: only when the TUI runs
    from realm.tui.last_known import skill_mix

    pub, control = endpoints(config, home)
    (home / "logs").mkdir(parents=True, exist_ok=True)
    log_path = home / "logs" / "trainer.log"
    command = [sys.executable, "-m", "realm.cli", "trainer", "--home", str(home), "--log-file", str(log_path)]
    if config_path:
        command += ["--config", str(config_path)]
    if args.max_steps is not None:
        command += ["--max-steps", str(args.max_steps)]
    with open(log_path, "ab") as log_file:
        trainer = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        run_tui(
            pub,
            control,
            heartbeat_s=config.bus.heartbeat_s,
            keymap=keymap,
            trainer=TrainerProcess(trainer, log_path),
            oracles=registry_oracles(config, home),
            chat_max_new_tokens=config.tui.chat_max_new_tokens,
            away_after_s=config.tui.away_after_s,
            bin_glyphs=config.tui.bin_glyphs,
            oracle_follow=config.tui.oracle_follow,
            trainer_setup=trainer_link(config, home, control),
            home=home,
            skills=skill_mix(config),
        )
    finally:
        if oracle is not None:
            oracle.wind_down()  # the oracle winds down while the trainer saves its checkpoint
        _stop_trainer(trainer, args)
    print(f"DIO rests. Trainer log: {log_path}")
    return EXIT_OK


def _stop_trainer(trainer: subprocess.Popen, args) -> None:
    if trainer.poll() is None:
        print("Stopping the trainer (saving a checkpoint)...", flush=True)
        try:
            trainer_client(args).request(StopRequest())
        except TrainerUnreachable:
            trainer.terminate()  # SIGTERM also checkpoints, then exits
        try:
            trainer.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            trainer.kill()
            trainer.wait()


def cmd_status(args) -> int:
    snapshot = trainer_client(args).snapshot()
    if args.json:
        sys.stdout.write(msgspec.json.encode(snapshot).decode() + "\n")
    else:
        print(format_status(snapshot))
        print(overrides_line(resolve_home(args.home)))
    return EXIT_OK


def overrides_line(home) -> str:
    """Which settings HOME/overrides.yaml changes (the Armory's, `realm config set`'s)."""
    changed = overridden(home)
    if not changed:
        return "overrides: none (the config file's settings)"
    return "overrides: " + ", ".join(f"{key}={yaml_text(value)}" for key, value in changed.items()) + f" ({OVERRIDES})"


def format_status(snapshot) -> str:
    state = snapshot.state
    stats = hero_stats(state)
    battle = state.battle

    def num(value, fmt="{:.3f}"):
        return "-" if value is None else fmt.format(value)

    lines = [
        f"DIO  Lv {stats.level}  XP {stats.xp:,} ({stats.xp_into_level:,}/{stats.xp_for_level:,})  "
        f"ATK {num(stats.atk)}  DEF {num(stats.defense)}  ACC {num(stats.acc, '{:.0%}')}  Gold {stats.gold:,}",
        "  ATK 1/smoothed train loss · DEF 1/suite loss (held-out) · ACC eval accuracy",
    ]
    quest = f"{battle.quest.name} {battle.quest_step}/{battle.quest_total}" if battle.quest else "none"
    if battle.quest and battle.quest_epochs:
        quest += f" (epoch {battle.quest_epoch}/{battle.quest_epochs})"
    rate = f"  {battle.tokens_per_s:,.0f} tok/s" if battle.status == "training" else ""  # paused: not a rate now
    lines.append(f"battle: {battle.status}  loss {num(battle.loss)}{rate}")
    lines.append(f"quest: {quest}")
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
        profile = f", profile {t.profile}" if t.profile else ""
        lines.append(f"trainer: {t.model} on {t.device}, {t.parameters / 1e6:.2f}M params{profile}")
        lines.append(f"  pid {t.pid}, run {snapshot.run}")
    return "\n".join(lines)


def _skills_status(state) -> list[str]:
    """One line for the skills: level and latest accuracy per skill."""
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
        reply = trainer_client(args).request(request_type())
        print(getattr(reply, "message", "") or "ok")
        return EXIT_OK

    return run
