"""``realm oracle | chat``: the inference worker, and a chat with DIO on it; and the oracle that
``realm play`` starts beside the trainer."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from realm.cli.common import EXIT_OK, checkpoint_reference, common_options, load_context, oracle_client, setup_logging
from realm.errors import RealmError
from realm.protocol import Sampling


def add_parsers(sub) -> None:
    oracle = common_options(
        sub.add_parser("oracle", help="the inference worker: chat, batch generation, hot-swap promotion")
    )
    oracle.set_defaults(func=cmd_oracle)

    chat = common_options(
        sub.add_parser("chat", help="chat with DIO on the oracle; the answer streams to the terminal")
    )
    chat.add_argument("message", metavar="MESSAGE")
    chat.add_argument(
        "--checkpoint",
        metavar="latest|champion|STEP",
        help="a step, canonical name, latest or champion (default: the served one)",
    )
    chat.add_argument("--system", metavar="TEXT", help="a system message before MESSAGE")
    chat.add_argument("--temperature", type=float, default=0.0, help="0 is greedy (default)")
    chat.add_argument("--top-p", type=float, default=1.0)
    chat.add_argument("--max-new-tokens", type=int, default=128)
    chat.add_argument("--seed", type=int, help="seed for sampling, for a repeatable answer")
    chat.add_argument("--oracle", metavar="NODE", help="the oracle node in the host registry (default: oracle.node)")
    chat.set_defaults(func=cmd_chat)


def cmd_oracle(args) -> int:
    from realm.oracle.worker import OracleWorker  # torch and transformers: only the oracle's own process

    home, config, config_path = load_context(args)
    setup_logging()
    logging.getLogger("realm.oracle").info("config: %s", config_path or "built-in defaults")
    return OracleWorker(config, home).run()


def cmd_chat(args) -> int:
    messages = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": args.message})
    sampling = Sampling(
        temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens, seed=args.seed
    )

    def show(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    checkpoint = checkpoint_reference(args.checkpoint, "--checkpoint") if args.checkpoint else ""
    client = oracle_client(args)
    request_id = uuid.uuid4().hex
    try:
        _, end = client.chat(messages, sampling, checkpoint=checkpoint, on_delta=show, request_id=request_id)
    except KeyboardInterrupt:  # Ctrl-C: stop the oracle generating for nobody
        try:
            client.cancel(request_id)
        except RealmError:
            pass
        raise
    sys.stdout.write("\n")
    rate = end.tokens / end.seconds if end.seconds > 0 else 0.0
    print(
        f"[{end.checkpoint}: {end.tokens} tokens in {end.seconds:.2f}s ({rate:.0f} tok/s), {end.reason}]",
        file=sys.stderr,
    )
    return EXIT_OK


def start_oracle(home: Path, config_path: Path | None) -> subprocess.Popen:
    """``realm oracle`` as a subprocess beside the trainer, logging to HOME/logs/oracle.log."""
    (home / "logs").mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "realm.cli", "oracle", "--home", str(home)]
    if config_path:
        command += ["--config", str(config_path)]
    with open(home / "logs" / "oracle.log", "ab") as log_file:
        return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


class OracleKeeper:
    """``realm play``'s oracle, started again when it dies (a crash or a kill: an exit other than
    0, at most ``MAX_RESTARTS`` times), as systemd's Restart=on-failure keeps a standalone one."""

    MAX_RESTARTS = 3

    def __init__(self, home: Path, config_path: Path | None, check_s: float = 2.0) -> None:
        self.home, self.config_path, self.check_s = home, config_path, check_s
        self.process = start_oracle(home, config_path)
        self.restarts = 0
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="oracle-keeper", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.wait(self.check_s):
            code = self.process.poll()
            if code in (None, 0) or self.restarts >= self.MAX_RESTARTS:
                continue
            self.restarts += 1
            with open(self.home / "logs" / "oracle.log", "a", encoding="utf-8") as log_file:
                log_file.write(
                    f"realm play: the oracle exited with code {code}; starting it again "
                    f"({self.restarts} of {self.MAX_RESTARTS} restarts)\n"
                )
            self.process = start_oracle(self.home, self.config_path)

    def wind_down(self) -> None:
        """Stop watching and send SIGTERM: it finishes its chats while the trainer saves."""
        self._stopping.set()
        self._watcher.join()
        if self.process.poll() is None:
            self.process.terminate()

    def stop(self) -> None:
        self.wind_down()
        stop_oracle(self.process)


def stop_oracle(process: subprocess.Popen | None, timeout_s: float = 30.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()  # SIGTERM: in-flight chats end with "shutdown", then it exits 0
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
