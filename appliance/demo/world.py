"""The demo's process tree: the test double, the fleet service and a simulated kiosk."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import http.cookiejar
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.control import MAX_HOLD, ControlError
from appliance.control.command import request as control_request
from appliance.demo.hostsocket import FD_ENV, PORT_ENV
from appliance.demo.view import SpeakerMeter
from appliance.errors import ApplianceError
from appliance.listeners import loopback_listener

log = logging.getLogger(__name__)

ALSA_BASE = Path("/usr/share/alsa/alsa.conf")
SPEAKER_PCM = "demo_speaker"
ROOM = "demo"
KIOSK = "kiosk-demo"
FAR_END = "far-end"
OPERATOR = "demo"  # the console's demo operator; its password is made afresh for every run
START_TIMEOUT = 30.0
STOP_TIMEOUT = 6.0  # the daemon promises exit within 5 s of SIGTERM


class DemoError(ApplianceError, RuntimeError):
    """The demo could not start or drive one of its processes."""


def _die_with_parent() -> None:
    """Child side of fork: get SIGTERM when the demo dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


@dataclass(frozen=True)
class Layout:
    """Where the demo keeps its files (one private temporary folder)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "kiosk.toml"

    @property
    def device_key(self) -> Path:
        return self.root / "device_key"

    @property
    def socket(self) -> Path:
        return self.root / "control.sock"

    @property
    def speaker(self) -> Path:
        return self.root / "speaker.fifo"

    @property
    def alsa_conf(self) -> Path:
        return self.root / "asound.conf"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def fleet_db(self) -> str:
        return f"sqlite:///{self.root / 'fleet.db'}"


def _host_console() -> tuple[int, int] | None:
    """(fd, port) of the host-side console socket `scripts/demo` opened, if there is one."""
    try:
        fd, port = int(os.environ[FD_ENV]), int(os.environ[PORT_ENV])
        with socket.socket(fileno=os.dup(fd)) as sock:
            if sock.type != socket.SOCK_STREAM:
                return None
    except (KeyError, ValueError, OSError):
        return None
    return fd, port


class DemoWorld:
    """Starts the double (with its far end), the fleet service and the kiosk; stops all on exit.

    The kiosk is enrolled in the fleet service (SQLite in the demo's folder) and gets its tokens
    from the service's token endpoint; the double sends its webhooks to the service, and the
    service reads presence from the double's RoomService, as with a real LiveKit server.
    """

    def __init__(self, *, camera_size: tuple[int, int] = (640, 480), fps: int = 15) -> None:
        self.layout = Layout(Path(tempfile.mkdtemp(prefix="appliance-demo-")))
        # Bound here and handed to the double and the service (`--listen-fd`): a port picked
        # here and bound there could be taken in between by any outgoing connection.
        self._listeners = {name: loopback_listener() for name in ("double", "control", "fleet")}
        self.port, self.control_port, self.fleet_port = (
            sock.getsockname()[1] for sock in self._listeners.values())
        self.operator_password = secrets.token_urlsafe(9)
        self._host_console = _host_console()
        self._fleet_http: urllib.request.OpenerDirector | None = None  # logged in as OPERATOR
        self._operator_set = False  # no login attempts (audit rows) before the operator exists
        self.camera_size = camera_size
        self.fps = fps
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._closed = False
        self.speaker: SpeakerMeter | None = None
        self.phase = "not started"  # what start() is doing, for the panel
        self._log_read = 0  # bytes of the kiosk's log already handed out by kiosk_log()

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}/control"

    @property
    def fleet_url(self) -> str:
        return f"http://127.0.0.1:{self.fleet_port}"

    @property
    def console_url(self) -> str:
        """Where a browser finds the console: the host's loopback when scripts/demo opened it."""
        if self._host_console is not None:
            return f"http://127.0.0.1:{self._host_console[1]}/"
        return f"{self.fleet_url}/"

    @property
    def console_line(self) -> str:
        return self.console_text()

    def console_text(self, *, password: bool = True) -> str:
        """The console's address and login; without `password` (pictures) it is not shown."""
        if not password:
            return f"{self.console_url}  operator {OPERATOR!r}, password (new each run)"
        where = ("" if self._host_console is not None or os.environ.get("APPLIANCE_NETNS") != "1"
                 else " (inside the demo's network namespace)")
        return (f"{self.console_url}{where}  operator {OPERATOR!r}, "
                f"password {self.operator_password!r}")

    async def __aenter__(self) -> DemoWorld:
        return self  # start() is separate, so the panel can show the start-up itself

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the double, the fleet service, the far end and the kiosk.

        `aclose` stops whatever was started.
        """
        from appliance.devserver.auth import DEV_API_KEY, DEV_API_SECRET

        self.layout.logs.mkdir(parents=True)
        self.phase = "starting the LiveKit test double and the fleet service"
        double, control = self._listeners.pop("double"), self._listeners.pop("control")
        with double, control:  # the double holds them once started; closed here either way
            await self._spawn(
                "devserver", "devserver", "--listen-fd", str(double.fileno()),
                "--control-fd", str(control.fileno()), "--webhook", f"{self.fleet_url}/webhook",
                pass_fds=(double.fileno(), control.fileno()),
            )
        # While the double loads: the registry, as an operator sets it up (`appliance fleet`).
        await self._fleet_cli("enrol", KIOSK, "--room", ROOM, "--name", "Demo kiosk",
                              "--key-file", str(self.layout.device_key))
        # The console's operator is added while the service starts (the schema exists by now).
        operator = asyncio.create_task(self._fleet_cli("operator", OPERATOR))
        try:
            with self._listeners.pop("fleet") as fleet:
                fds = (fleet.fileno(),) + (() if self._host_console is None
                                           else (self._host_console[0],))
                serve = [arg for fd in fds for arg in ("--listen-fd", str(fd))]
                await self._spawn("fleet", "fleet", "--db", self.layout.fleet_db, "serve",
                                  *serve, "--poll-interval", "2",
                                  env={"LIVEKIT_URL": f"ws://127.0.0.1:{self.port}",
                                       "LIVEKIT_API_KEY": DEV_API_KEY,
                                       "LIVEKIT_API_SECRET": DEV_API_SECRET}, pass_fds=fds)
            await self._until(self._server_ready, "the test double to answer")
            self.phase = "adding the far-end participant (1 kHz tone, test pattern)"
            await self.fault("far-end", room=ROOM, identity=FAR_END, tone_hz=1000.0, video=True)
            self.phase = "waiting for the fleet service"
            await self._until(self._fleet_ready, "the fleet service to answer")
            await operator
        finally:
            operator.cancel()
            await asyncio.gather(operator, return_exceptions=True)
        self._operator_set = True
        self._write_kiosk_config()
        self.speaker = SpeakerMeter.open(self.layout.speaker)  # reader first: see SpeakerMeter
        self.phase = "starting the kiosk (loading the LiveKit SDK takes a few seconds)"
        await self._spawn("kiosk", "run", "--config", str(self.layout.config),
                          "--device-file", str(self.layout.root / "device.toml"))
        await self._until(self._kiosk_ready, "the kiosk's control socket")
        self.phase = "ready"

    def _write_kiosk_config(self) -> None:
        (self.layout.root / "device.toml").write_text(f'[livekit]\nidentity = "{KIOSK}"\n')
        width, height = self.camera_size
        self.layout.config.write_text(
            "# Written by `appliance demo`: simulated hardware against the local test double.\n"
            "[livekit]\n"
            f'url = "ws://127.0.0.1:{self.port}"\n'
            f'room = "{ROOM}"\n'
            'name = "Demo kiosk"\n'
            f'token_url = "{self.fleet_url}/token"\n'
            f'device_key_file = "{self.layout.device_key}"\n'
            "[camera]\n"
            f'backend = "test"\nwidth = {width}\nheight = {height}\nfps = {self.fps}\n'
            '[microphone]\nbackend = "test"\n'
            f'[speaker]\nbackend = "alsa"\ndevice = "{SPEAKER_PCM}"\n'
            '[gpio]\npin_factory = "mock"\n'
            "[reconnect]\nbackoff_max = 10.0\n"
            f'[control]\nsocket = "{self.layout.socket}"\n'
        )
        self.layout.config.chmod(0o600)
        # The speaker goes through real ALSA: the `file` plugin over `null` writes what the kiosk
        # plays into a FIFO, and the panel meters it. The system alsa.conf stays included.
        self.layout.alsa_conf.write_text(
            f"<{ALSA_BASE}>\n"
            f'pcm.{SPEAKER_PCM} {{ type file slave.pcm "null" file "{self.layout.speaker}" '
            'format "raw" }\n'
        )

    async def _spawn(self, name: str, *args: str, env: dict[str, str] | None = None,
                     pass_fds: tuple[int, ...] = ()) -> None:
        self._procs[name] = await self._exec(name, args, env or {}, pass_fds)

    async def _exec(self, name: str, args: tuple[str, ...], env: dict[str, str],
                    pass_fds: tuple[int, ...] = ()) -> asyncio.subprocess.Process:
        log_file = (self.layout.logs / f"{name}.log").open("ab")
        try:
            return await asyncio.create_subprocess_exec(
                sys.executable, "-m", "appliance", *args,
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                env={**os.environ, "ALSA_CONFIG_PATH": str(self.layout.alsa_conf), **env},
                preexec_fn=_die_with_parent, pass_fds=pass_fds,
            )
        finally:
            log_file.close()

    async def _fleet_cli(self, *args: str) -> None:
        """One `appliance fleet` command on the demo's registry, run to its end."""
        proc = await self._exec("fleet-setup", ("fleet", "--db", self.layout.fleet_db, *args),
                                {"FLEET_OPERATOR_PASSWORD": self.operator_password})
        if await proc.wait() != 0:
            raise DemoError(f"`appliance fleet {args[0]}` exited with status {proc.returncode}; "
                            f"its log:\n{self.log_tail('fleet-setup')}")

    async def _until(self, probe: Any, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        delay = 0.05
        while True:
            for name, proc in self._procs.items():
                if proc.returncode is not None:
                    raise DemoError(f"{name} exited with status {proc.returncode} while waiting "
                                    f"for {what}; its log:\n{self.log_tail(name)}")
            if await probe():
                return
            if loop.time() > deadline:
                raise DemoError(f"timed out after {START_TIMEOUT:g} s waiting for {what}")
            # Polling a process we do not own the internals of: a short, growing back-off.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _server_ready(self) -> bool:
        try:
            await self.server_state()
        except DemoError:
            return False
        return True

    async def _fleet_ready(self) -> bool:
        def call() -> bool:
            try:
                with urllib.request.urlopen(f"{self.fleet_url}/healthz", timeout=5.0) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        return await asyncio.to_thread(call)

    async def _kiosk_ready(self) -> bool:
        try:
            await self.kiosk_status()
        except DemoError:
            return False
        return True

    def kiosk_log(self) -> list[str]:
        """The complete lines the kiosk logged since the last call."""
        try:
            with (self.layout.logs / "kiosk.log").open("rb") as f:
                f.seek(self._log_read)
                data = f.read()
        except OSError:
            return []
        whole = data[:data.rfind(b"\n") + 1]  # a line still being written waits for next time
        self._log_read += len(whole)
        return whole.decode(errors="replace").splitlines()

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.layout.logs / f"{name}.log"
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # --- talking to the two processes ---------------------------------------------------------

    async def kiosk_status(self) -> dict[str, Any]:
        return await self._control({"cmd": "status"})

    async def press(self, button: str) -> None:
        """A short press."""
        await self._control({"cmd": "press", "button": button})

    async def hold(self, button: str, seconds: float | None = None) -> tuple[float, bool]:
        """Hold `button` down; returns (seconds held, whether the kiosk counted a long press).

        Without `seconds` the kiosk holds it just past its own `gpio.mute_hold` /
        `gpio.leave_hold`, whatever the configuration says.
        """
        payload: dict[str, Any] = {"cmd": "hold", "button": button}
        if seconds is not None:
            payload["seconds"] = seconds
        # The reply comes once the button is released (the kiosk caps a hold at MAX_HOLD).
        reply = await self._control(payload, wait=(seconds or MAX_HOLD) + 5.0)
        return float(reply.get("seconds", seconds or 0.0)), bool(reply.get("long"))

    async def simulate_camera(self, present: bool) -> None:
        await self._control({"cmd": "simulate", "device": "camera", "present": present})

    async def _control(self, payload: dict[str, Any], wait: float = 5.0) -> dict[str, Any]:
        try:
            reply = await asyncio.to_thread(control_request, self.layout.socket, payload, wait)
        except ControlError as exc:
            raise DemoError(f"kiosk control socket: {exc}") from None
        if not reply.get("ok"):
            raise DemoError(f"kiosk refused {payload.get('cmd')}: {reply.get('error')}")
        return reply

    async def server_state(self) -> dict[str, Any]:
        return await self._http("GET", "/state")

    async def fault(self, name: str, **body: Any) -> Any:
        return (await self._http("POST", f"/{name}", body)).get("result")

    async def _http(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.control_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})

        def call() -> dict[str, Any]:
            try:
                with urllib.request.urlopen(req, timeout=5.0) as resp:
                    out: dict[str, Any] = json.loads(resp.read())
                    return out
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")
                raise DemoError(f"test double refused {method} {path}: {detail}") from None
            except (OSError, ValueError) as exc:
                raise DemoError(f"test double unreachable ({method} {path}): {exc}") from None

        return await asyncio.to_thread(call)

    async def fleet_device(self) -> dict[str, Any]:
        """The demo kiosk's registry row, read through the console's API as the demo operator."""
        if not self._operator_set:
            raise DemoError("the fleet service is not set up yet")
        rows = await asyncio.to_thread(self._fleet_devices)
        for row in rows:
            if row.get("identity") == KIOSK:
                return row
        raise DemoError(f"{KIOSK} is not enrolled in the fleet service")

    def _fleet_devices(self) -> list[dict[str, Any]]:
        for attempt in (1, 2):
            if self._fleet_http is None:
                self._fleet_http = self._fleet_login()
            try:
                with self._fleet_http.open(f"{self.fleet_url}/api/devices", timeout=5.0) as r:
                    rows: list[dict[str, Any]] = json.loads(r.read())
                    return rows
            except urllib.error.HTTPError as exc:
                if exc.code != 401 or attempt == 2:
                    raise DemoError(f"fleet service: GET /api/devices: {exc.code}") from None
                self._fleet_http = None  # the session ended: log in again
            except (OSError, ValueError) as exc:
                raise DemoError(f"fleet service unreachable: {exc}") from None
        raise AssertionError("unreachable")

    def _fleet_login(self) -> urllib.request.OpenerDirector:
        """Log in as a browser does: the login form's CSRF token, then the session cookie."""
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        try:
            with opener.open(f"{self.fleet_url}/login", timeout=5.0) as r:
                page = r.read().decode()
            found = re.search(r'name="csrf" value="([^"]+)"', page)
            if found is None:
                raise DemoError("fleet service: the login page has no CSRF token")
            form = urllib.parse.urlencode({"name": OPERATOR, "password": self.operator_password,
                                           "csrf": found.group(1)}).encode()
            with opener.open(f"{self.fleet_url}/login", data=form, timeout=5.0) as r:
                if "failed" in r.url:
                    raise DemoError("fleet service refused the demo operator's login")
        except (OSError, ValueError) as exc:
            raise DemoError(f"fleet service unreachable: {exc}") from None
        return opener

    def speaker_level(self) -> float:
        """dBFS of what the kiosk played in the last 100 ms (-inf: silence or no speaker yet)."""
        return self.speaker.read() if self.speaker is not None else -math.inf

    def processes(self) -> dict[str, int | None]:
        """Child pid -> exit status (None while running), for the panel and the tests."""
        return {f"{n}[{p.pid}]": p.returncode for n, p in self._procs.items()}

    async def aclose(self) -> None:
        """Kiosk first (so it leaves the room and turns its LEDs off), then the double."""
        if self._closed:
            return
        self._closed = True
        for sock in self._listeners.values():  # never handed over: start() did not get there
            sock.close()
        for name in ("kiosk", "devserver", "fleet"):
            proc = self._procs.get(name)
            if proc is None or proc.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                log.warning("%s did not stop within %g s: killing it", name, STOP_TIMEOUT)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self.speaker is not None:
            self.speaker.close()
        if os.environ.get("APPLIANCE_DEMO_KEEP") != "1":
            shutil.rmtree(self.layout.root, ignore_errors=True)
