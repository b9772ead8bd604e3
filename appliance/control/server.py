"""Local control socket: newline-delimited JSON over a unix socket (status; mock press/hold)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.control import MAX_HOLD, MAX_REQUEST, ControlError
from appliance.devices.gpio import GpioFrontEnd
from appliance.errors import DeviceError
from appliance.indicators import as_json, indicators
from appliance.session.model import ButtonName, State, status_line

log = logging.getLogger(__name__)

SOCKET_MODE = 0o660  # owner and group: the service user and its admin group
DIR_MODE = 0o750
IDLE_TIMEOUT = 60.0
MAX_CLIENTS = 8
SHORT_PRESS = 0.1

Reply = dict[str, Any]


class BadRequest(ControlError):
    """A request the server understood to be wrong; its text goes back to the client."""


class ControlServer:
    """Serves the daemon's observed state; drives mock button pins on request."""

    def __init__(self, path: Path, *, state: Callable[[], State],
                 gpio: GpioFrontEnd | None = None,
                 simulate_camera: Callable[[bool], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._state = state
        self._clock = clock  # the runner's: `next_retry_at` is on that clock
        self._gpio = gpio
        self._simulate_camera = simulate_camera
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._press_locks = {name: asyncio.Lock() for name in ButtonName}
        self._closed = False

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        sock = _bind(self.path)
        try:
            self._server = await asyncio.start_unix_server(
                self._client, sock=sock, limit=MAX_REQUEST)
        except BaseException:
            sock.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            raise
        log.info("control socket listening on %s", self.path)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.gather(*self._clients, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or len(self._clients) >= MAX_CLIENTS:
            await _send(writer, {"ok": False, "error": "too many control clients"})
            writer.close()
            return
        self._clients.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.debug("control client went away: %s", exc)
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT):
                    line = await reader.readline()
            except TimeoutError:
                return
            except ValueError:  # StreamReader's limit: a line longer than MAX_REQUEST
                await _send(writer, {"ok": False,
                                     "error": f"request too long (max {MAX_REQUEST} bytes)"})
                return  # the rest of that line is unframed: drop the connection
            if not line:
                return
            if not line.strip():
                continue
            await _send(writer, await self.handle(line))

    async def handle(self, line: bytes) -> Reply:
        """One request line -> one reply; never raises for anything the client sent."""
        request_id: Any = None
        try:
            try:
                request = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BadRequest(f"malformed JSON: {exc}") from None
            if not isinstance(request, dict):
                raise BadRequest("expected a JSON object like {\"cmd\": \"status\"}")
            request_id = request.get("id")
            cmd = request.get("cmd")
            if cmd == "status":
                reply = self._status()
            elif cmd in ("press", "hold"):
                reply = await self._press(cmd, request)
            elif cmd == "simulate":
                reply = self._simulate(request)
            else:
                raise BadRequest(f"unknown cmd {cmd!r} (expected status, press, hold or "
                                 "simulate)")
        except (ControlError, DeviceError) as exc:
            reply = {"ok": False, "error": str(exc)}
        if request_id is not None:
            reply["id"] = request_id
        return reply

    def _status(self) -> Reply:
        state = self._state()
        now = self._clock()
        snapshot = state.as_dict()
        # A client cannot read the kiosk's clock: say how far off the next attempt is instead.
        snapshot["status"] = status_line(state, now)
        snapshot["next_retry_in"] = (None if state.next_retry_at is None
                                     else round(max(0.0, state.next_retry_at - now), 1))
        reply: Reply = {"ok": True, "state": snapshot, "leds": as_json(indicators(state))}
        if self._gpio is not None:
            reply["gpio"] = {
                "profile": self._gpio.profile.name,
                "factory": type(self._gpio.factory).__name__,
                "mock": self._gpio.mock,
                "buttons": [b.value for b in self._gpio.buttons],
                "shown": as_json(self._gpio.leds.shown),
            }
        return reply

    def _simulate(self, request: dict[str, Any]) -> Reply:
        """`{"cmd": "simulate", "device": "camera", "present": false}`: test camera only."""
        if request.get("device") != "camera":
            raise BadRequest(f"`device`: expected \"camera\", found {request.get('device')!r}")
        present = request.get("present")
        if not isinstance(present, bool):
            raise BadRequest(f"`present`: expected true or false, found {present!r}")
        if self._simulate_camera is None:
            raise BadRequest("simulate needs the test camera (camera.backend = \"test\")")
        self._simulate_camera(present)
        return {"ok": True, "device": "camera", "present": present}

    async def _press(self, cmd: str, request: dict[str, Any]) -> Reply:
        gpio = self._gpio
        if gpio is None or not gpio.mock:
            raise BadRequest(f"{cmd} needs the mock pin factory (gpio.pin_factory = \"mock\"); "
                             "press the real button instead")
        names = {b.value: b for b in gpio.buttons}
        button = request.get("button")
        name = names.get(button) if isinstance(button, str) else None
        if name is None:
            raise BadRequest(f"unknown button {request.get('button')!r} "
                             f"(this board has: {', '.join(names) or 'none'})")
        panel = gpio.button_panel
        hold = panel.config(name).hold
        seconds = request.get("seconds", hold + 0.2 if cmd == "hold" else min(SHORT_PRESS,
                                                                               hold / 2))
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not (
                0 < seconds <= MAX_HOLD):
            raise BadRequest(f"`seconds`: expected a number in (0, {MAX_HOLD:g}], "
                             f"found {seconds!r}")
        async with self._press_locks[name]:
            before = panel.posted(name)
            try:
                gpio.drive(name, True)
                await asyncio.sleep(seconds)
            finally:
                gpio.drive(name, False)  # never leave a mock button pressed (client gone)
            # Reply once the event is on the runner's queue and the release has settled.
            posted = await asyncio.to_thread(panel.wait_posted, name, before + 1, 5.0)
        return {"ok": True, "button": name.value, "seconds": seconds,
                "long": seconds >= hold, "posted": posted}


async def _send(writer: asyncio.StreamWriter, reply: Reply) -> None:
    writer.write(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
    await writer.drain()


def _bind(path: Path) -> socket.socket:
    """A listening unix socket at `path`, mode 0660, never visible there with wider modes."""
    parent = path.parent
    if not parent.is_dir():
        parent.mkdir(parents=True, mode=DIR_MODE)
        os.chmod(parent, DIR_MODE)  # mkdir's mode is filtered by the umask
    _clear_stale(path)
    # Bind under a temporary name, chmod, then rename: the final path never has umask modes.
    tmp = parent / f".{path.name}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(tmp))
        os.chmod(tmp, SOCKET_MODE)
        os.rename(tmp, path)
        sock.listen(MAX_CLIENTS)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise ControlError(f"cannot create control socket {path}: {exc.strerror or exc}") from exc
    return sock


def _clear_stale(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"control socket path {path} exists and is not a socket; "
                           "move it away or set control.socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a socket left by a daemon that died: nobody listens
        return
    except OSError as exc:
        raise ControlError(f"control socket {path}: {exc.strerror or exc}") from exc
    finally:
        probe.close()
    raise ControlError(f"control socket {path} is in use: another appliance daemon is running")
