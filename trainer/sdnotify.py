"""systemd's notify protocol, without a dependency: READY, WATCHDOG and STOPPING datagrams.

Under ``Type=notify`` systemd sets ``NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract
socket) and, with ``WatchdogSec``, ``WATCHDOG_USEC``. Outside systemd both are unset and every
call here does nothing. The watchdog is pinged by the training loop itself, at most twice per
watchdog period, so a loop that hangs stops the pings and systemd restarts the trainer.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    def __init__(self, environ: dict | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        # under `accelerate launch` / torchrun the unit's main process is the launcher, our parent
        launcher = str(os.getppid()) if "WORLD_SIZE" in env else None
        for_us = not watchdog_pid or watchdog_pid in (str(os.getpid()), launcher)
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and for_us else None
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, message: str) -> bool:
        """Send one datagram; False when there is no socket or it cannot be reached."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode(), self.address)
            return True
        except OSError:
            return False  # systemd gone or the socket full: never let the trainer die of it

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def ping(self) -> bool:
        """WATCHDOG=1, at most twice per watchdog period; call it from the loop that must stay alive."""
        if self.watchdog_s is None:
            return False
        now = time.monotonic()
        if now - self._last_ping < self.watchdog_s / 2:
            return False
        self._last_ping = now
        return self.send("WATCHDOG=1")


def _address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()  # abstract namespace
    if value.startswith("/"):
        return value
    return None
