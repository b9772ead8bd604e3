"""sd_notify through a real datagram socket: READY once, STATUS in order, WATCHDOG cadence."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from session_helpers import fast_config
from state_waits import wait_state

from appliance.config import Config, WatchdogConfig
from appliance.session.model import RoomState, StopRequested
from appliance.systemd import Notifier, watchdog_interval


class NotifySocket:
    """Binds NOTIFY_SOCKET; a thread timestamps every datagram (the loop under test may block)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, str]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.changed = asyncio.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))
            if self.loop is not None:
                # The test's loop may have ended before this fixture stops the reader (a kiosk's
                # last datagrams): nobody is waiting any more then.
                with contextlib.suppress(RuntimeError):
                    self.loop.call_soon_threadsafe(self.changed.set)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def texts(self, prefix: str = "") -> list[str]:
        return [m for _, m in self.messages if m.startswith(prefix)]

    def times(self, text: str) -> list[float]:
        return [t for t, m in self.messages if m == text]


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    path = tmp_path / "notify.sock"
    ns = NotifySocket(path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # pings every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield ns
    ns.close()


def test_watchdog_interval_is_half_and_checks_the_pid() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None


async def _until(notify: NotifySocket, predicate: Any, within: float = 5.0) -> None:
    """Wait, woken by each datagram (at least every 0.1 s), until predicate() holds."""
    notify.loop = asyncio.get_running_loop()
    async with asyncio.timeout(within):
        while not predicate():
            notify.changed.clear()
            # wake at least every 0.1 s: some predicates depend on time passing too
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await notify.changed.wait()


async def test_ready_status_watchdog_stopping(notify: NotifySocket,
                                              harness_factory: Any) -> None:
    h = await harness_factory(notifier=Notifier())
    await wait_state(h.runner, lambda s: s.mic_live and s.video_live)
    await _until(notify, lambda: "STATUS=kiosk-1: in room lobby alone, quality unknown, mic live, "
                         "camera live" in notify.texts())
    start = time.monotonic()
    await _until(notify, lambda: len([t for t in notify.times("WATCHDOG=1") if t > start]) >= 5)
    h.runner.post(StopRequested(h.runner.clock(), "SIGTERM"))
    async with asyncio.timeout(5):
        await h.task
    # Both go out in one step, STOPPING=1 first; wait for the reader to have taken both.
    await _until(notify, lambda: "STOPPING=1" in notify.texts()
                 and "STATUS=kiosk-1: stopping" in notify.texts())
    texts = [m for _, m in notify.messages if m != "WATCHDOG=1"]
    assert texts.count("READY=1") == 1
    statuses = [t.removeprefix("STATUS=") for t in texts if t.startswith("STATUS=")]
    assert statuses[0] == "kiosk-1: disconnected: not connected"
    assert statuses[1] == "kiosk-1: joining lobby (attempt 1)"
    assert texts.index("READY=1") < texts.index("STATUS=kiosk-1: joining lobby (attempt 1)")
    assert all("kiosk-1" in s for s in statuses)  # the identity is on every line
    assert statuses[-1] == "kiosk-1: stopping"
    assert texts.index("STOPPING=1") < len(texts) - 1
    pings = notify.times("WATCHDOG=1")
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) < 0.35 and min(gaps) > 0.05  # every ~0.1 s: half of WATCHDOG_USEC


async def test_a_blocked_loop_stops_the_pings(notify: NotifySocket, harness_factory: Any) -> None:
    h = await harness_factory(notifier=Notifier())
    await wait_state(h.runner, lambda s: s.room is RoomState.CONNECTED)
    await _until(notify, lambda: len(notify.times("WATCHDOG=1")) >= 3)
    blocked_from = time.monotonic()
    threading.Event().wait(0.8)  # a wedged event loop: a blocking call right on it
    blocked_to = time.monotonic()
    await _until(notify, lambda: any(t > blocked_to for t in notify.times("WATCHDOG=1")))
    during = [t for t in notify.times("WATCHDOG=1") if blocked_from + 0.05 < t < blocked_to]
    assert during == []


async def test_escalation_stops_pinging_when_out_of_the_room_too_long(
        notify: NotifySocket, harness_factory: Any) -> None:
    base = fast_config()
    cfg = Config(livekit=base.livekit, reconnect=base.reconnect,
                 watchdog=WatchdogConfig(max_time_outside_room=0.4))
    gate = asyncio.Event()

    def hang(link: Any) -> None:
        link.gate = gate

    h = await harness_factory(cfg, notifier=Notifier(), link_setup=hang)
    start = time.monotonic()
    await _until(notify, lambda: time.monotonic() - start > 1.2 and bool(
        notify.times("WATCHDOG=1")))
    pings = notify.times("WATCHDOG=1")
    assert pings and max(pings) < start + 0.7  # stopped once 0.4 s outside had passed
    gate.set()  # the join completes: pinging resumes
    await wait_state(h.runner, lambda s: s.room is RoomState.CONNECTED)
    back = time.monotonic()
    await _until(notify, lambda: any(t > back for t in notify.times("WATCHDOG=1")))
