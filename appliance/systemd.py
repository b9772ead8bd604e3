"""sd_notify for the session: READY=1, STATUS=, WATCHDOG=1 cadence and STOPPING=1."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import sdnotify

log = logging.getLogger(__name__)


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Half of $WATCHDOG_USEC in seconds, if systemd armed a watchdog for this very process."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid.strip() != str(os.getpid()):
        return None  # the watchdog belongs to another process (we were exec'd by a wrapper)
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not an integer", usec)
        return None
    return value / 2_000_000 if value > 0 else None


class Notifier:
    """Thin wrapper over sdnotify; a no-op without $NOTIFY_SOCKET. Never blocks the loop."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.enabled = bool(env.get("NOTIFY_SOCKET"))
        self.watchdog_interval = watchdog_interval(env)
        self._notifier: sdnotify.SystemdNotifier | None = None
        if self.enabled:
            self._notifier = sdnotify.SystemdNotifier()  # reads $NOTIFY_SOCKET itself
            sock = getattr(self._notifier, "socket", None)
            if sock is None:
                log.warning("cannot reach NOTIFY_SOCKET %s", env.get("NOTIFY_SOCKET"))
                self.enabled = False
            else:
                sock.setblocking(False)  # a stuck systemd must not stall our event loop
        self._ready = False
        self._status = ""

    def _send(self, message: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(message)

    def ready(self) -> None:
        if not self._ready:
            self._ready = True
            self._send("READY=1")

    def status(self, line: str) -> None:
        """Send STATUS= only when the line changed."""
        line = line.replace("\n", " ")
        if line != self._status:
            self._status = line
            self._send(f"STATUS={line}")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")
