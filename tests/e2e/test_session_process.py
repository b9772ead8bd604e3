"""`appliance run` as a process: sd_notify over a real socket, SIGTERM exits 0 within 5 s."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


class Notifications:
    """A bound NOTIFY_SOCKET read by the test's loop; `wait_for(text)` needs no sleeping."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[tuple[float, str]] = []
        self._changed = asyncio.Event()
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._read)

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                break
            self.messages.append((time.monotonic(), data.decode()))
        self._changed.set()

    async def wait_for(self, predicate: Any, within: float = 20.0) -> None:
        async with asyncio.timeout(within):
            while not predicate([m for _, m in self.messages]):
                self._changed.clear()
                await self._changed.wait()

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


def write_config(tmp: Path, srv: Any) -> Path:
    cfg = tmp / "appliance.toml"
    cfg.write_text(f"""
[livekit]
url = "{srv.url}"
room = "lobby"
identity = "kiosk-proc"
api_key = "{srv.api_key}"
api_secret = "{srv.api_secret}"
[camera]
backend = "none"
[microphone]
backend = "none"
[speaker]
backend = "none"
[reconnect]
backoff_initial = 0.3
backoff_max = 2.0
[gpio]
pin_factory = "mock"
[control]
socket = "{tmp / 'control.sock'}"
[device]
file = "{tmp / 'no-device-file.toml'}"
""")
    cfg.chmod(0o600)
    return cfg


@pytest.fixture
async def notify(tmp_path: Path) -> AsyncIterator[Notifications]:
    n = Notifications(tmp_path / "notify.sock")
    yield n
    n.close()


async def start(cfg: Path, notify: Notifications,
                **extra_env: str) -> asyncio.subprocess.Process:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="1000000",
               GPIOZERO_PIN_FACTORY="mock", **extra_env)
    env.pop("WATCHDOG_PID", None)
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", "run", "--config", str(cfg), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def stop(proc: asyncio.subprocess.Process,
               after: float = 0.0) -> tuple[int, float, bytes]:
    """SIGTERM `after` seconds from now (a timer, not a sleep); exit status, seconds, stderr."""
    signalled = asyncio.Event()

    def term() -> None:
        proc.send_signal(signal.SIGTERM)
        signalled.set()

    asyncio.get_running_loop().call_later(after, term)
    await signalled.wait()
    sent = time.monotonic()
    try:
        async with asyncio.timeout(10):
            _, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        raise
    assert proc.returncode is not None
    return proc.returncode, time.monotonic() - sent, err


async def test_run_joins_notifies_and_stops_cleanly(devserver: Any, tmp_path: Path,
                                                    notify: Notifications) -> None:
    proc = await start(write_config(tmp_path, devserver), notify)
    await notify.wait_for(lambda ms: any("in room lobby" in m for m in ms), within=30)
    await devserver.wait_for(lambda: devserver.participant("lobby", "kiosk-proc"),
                             timeout=10, what="the kiosk at the double")
    seen = len(notify.messages)
    await notify.wait_for(lambda ms: ms[seen:].count("WATCHDOG=1") >= 3, within=5)
    rc, took, err = await stop(proc)
    assert rc == 0, err.decode()[-2000:]
    assert took < 5.0
    texts = [m for _, m in notify.messages if m != "WATCHDOG=1"]
    assert texts.count("READY=1") == 1
    statuses = [t.removeprefix("STATUS=") for t in texts if t.startswith("STATUS=")]
    assert statuses[0].startswith("kiosk-proc: disconnected")
    assert statuses[1] == "kiosk-proc: joining lobby (attempt 1)"
    assert statuses[2].startswith("kiosk-proc: in room lobby alone")
    assert texts.index("STOPPING=1") > texts.index("READY=1")
    pings = [t for t, m in notify.messages if m == "WATCHDOG=1"]
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert gaps and max(gaps) < 1.0  # WATCHDOG_USEC=1 s: a ping every ~0.5 s
    await devserver.wait_for(lambda: devserver.participant("lobby", "kiosk-proc") is None,
                             timeout=10, what="the kiosk leaving (client-initiated)")


async def test_sigterm_while_connecting_exits_within_5_s(devserver: Any, tmp_path: Path,
                                                         notify: Notifications) -> None:
    devserver.faults.freeze(120.0)  # the server accepts the socket and never answers
    proc = await start(write_config(tmp_path, devserver), notify)
    await notify.wait_for(lambda ms: "READY=1" in ms and any("joining lobby" in m for m in ms),
                          within=30)
    rc, took, err = await stop(proc)
    assert rc == 0, err.decode()[-2000:]
    assert took < 5.0, f"took {took:.1f} s"
    assert "STOPPING=1" in [m for _, m in notify.messages]
    devserver.faults.thaw()


# Offsets after the STATUS "joining" line: before the SDK's connect, inside it (the signalling
# handshake, the peer connection) and right after it (ReadyForRoomEvent, first publish).
JOIN_WINDOW_OFFSETS = (0.0, 0.005, 0.01, 0.02, 0.035, 0.05, 0.08, 0.12, 0.2, 0.35, 0.6)


async def test_sigterm_anywhere_in_the_join_window_exits_0_within_5_s(
        devserver: Any, tmp_path: Path, notify: Notifications) -> None:
    cfg = write_config(tmp_path, devserver)
    results = []
    for offset in JOIN_WINDOW_OFFSETS:
        first = len(notify.messages)
        proc = await start(cfg, notify)
        await notify.wait_for(lambda ms, first=first: any(
            "joining lobby" in m for m in ms[first:]), within=30)
        rc, took, err = await stop(proc, after=offset)
        results.append((offset, rc, round(took, 2)))
        assert rc == 0 and took < 5.0, (results, err.decode()[-2000:])
        # ...and by the clean path, not by abandoning a hung SDK call (kiosk.HARD_EXIT_AFTER)
        assert b"abandoning" not in err, (results, err.decode()[-2000:])
        await devserver.wait_for(lambda: devserver.participant("lobby", "kiosk-proc") is None,
                                 timeout=15, what="the previous kiosk gone from the double")


async def test_crashes_since_boot_are_counted_and_shown(devserver: Any, tmp_path: Path,
                                                       notify: Notifications) -> None:
    cfg = write_config(tmp_path, devserver)
    state = tmp_path / "state"
    state.mkdir()
    proc = await start(cfg, notify, STATE_DIRECTORY=str(state))
    await notify.wait_for(lambda ms: any("in room lobby" in m for m in ms), within=30)
    proc.send_signal(signal.SIGABRT)  # what a panicking SDK or systemd's watchdog does
    await proc.communicate()
    # Killed by a signal (SIGABRT; the native SDK may turn the abort into a SIGSEGV on the way)
    assert proc.returncode is not None and proc.returncode < 0
    first = len(notify.messages)
    proc = await start(cfg, notify, STATE_DIRECTORY=str(state))
    await notify.wait_for(lambda ms: any("in room lobby" in m and "[1 crash since boot]" in m
                                         for m in ms[first:]), within=30)
    rc, _, err = await stop(proc)  # a clean stop is not a crash
    assert rc == 0, err.decode()[-2000:]
    first = len(notify.messages)
    proc = await start(cfg, notify, STATE_DIRECTORY=str(state))
    await notify.wait_for(lambda ms: any("in room lobby" in m for m in ms[first:]), within=30)
    statuses = [m for _, m in notify.messages[first:] if m.startswith("STATUS=")]
    assert statuses and all("[1 crash since boot]" in m for m in statuses), statuses
    rc, _, err = await stop(proc)
    assert rc == 0, err.decode()[-2000:]


async def test_config_error_exits_78(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[livekit]\nurl = 'ftp://x'\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", "run", "--config", str(bad),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 78 and b"configuration error" in err
