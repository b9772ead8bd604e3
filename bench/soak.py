"""Chaos soak: the whole kiosk against the double, faults for minutes, LEDs checked against the
double's own view of the kiosk every 0.5 s.

Run inside the test namespace (libwebrtc sends no media over loopback-only hosts):
    scripts/netns-run .venv/bin/python bench/soak.py --minutes 10 --seed 1 --json soak.json

One process holds an in-process DevServer (on a fixed port, so it can be killed and restarted)
and the daemon's own kiosk (`build_kiosk`, devices on: gpiozero mock pins, the test camera, a
test microphone that can be made to fail, the control socket). Faults are drawn in seeded
rounds: every round is a shuffle of all kinds, so a short run covers the first kinds of the
first round and a long one covers every kind several times.

What is measured
- LED truth. Every SAMPLE_PERIOD the mute LED pin (lit = muted) and the camera LED pin (lit =
  live) are compared with the double: is the kiosk's audio (video) track published there,
  unmuted, and did its packet counter grow since the previous sample? An LED claiming "live"
  while the double receives nothing is a *truth violation* once the disagreement has lasted
  longer than its detection window: MEDIA_WINDOW when the double still has the track unmuted
  but its packets stopped (truth.PROGRESS_GRACE + the 1 s stats interval + one sample period),
  SIGNAL_WINDOW otherwise (a mute, an unpublish, the participant gone: 1 s for the news to
  travel plus one sample period). The reverse ("muted"/dark while the double receives unmuted
  media) is counted separately: it is the LEDs being cautious, e.g. while the SDK resumes.
  The quality LED is judged one way only: green (excellent or good) while the double has a
  kiosk track unmuted and receives none of them is a violation past MEDIA_WINDOW; amber or red
  while media arrives is the server's grade, not a lie. The status LED's pattern saying "in
  the room" (alone or with others) while the double does not list the kiosk is a violation
  past SIGNAL_WINDOW.
- Recovery, per fault: from the fault's end (the server back, the replug, the second press)
  to the first sample where the double receives both tracks unmuted again and both LEDs say
  live (resolution: one sample period). A fault whose
  kiosk is not back within its deadline is *unrecovered*.
- Crashes: the kiosk task ending, exceptions logged with a traceback, unhandled task or thread
  exceptions; the runner's count of unexpected events. fd, thread and RSS growth of the whole
  process (kiosk and double) from the first time in the room to the end. Any log line (any
  logger, INFO and above, plus the appliance's DEBUG) holding the API secret or a JWT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import json
import logging
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit.protocol import models

from appliance.config import (
    CameraConfig,
    Config,
    ControlConfig,
    GpioConfig,
    LiveKitConfig,
    MicrophoneConfig,
    ReconnectConfig,
    SpeakerConfig,
)
from appliance.control import command as control_cli
from appliance.devserver import DevServer
from appliance.devserver.hub import find_track
from appliance.indicators import STATUS_PATTERNS, LedName, StatusKind
from appliance.kiosk import Kiosk, build_kiosk
from appliance.media.audio import MicrophoneFaults, ToneCapture
from appliance.media.manager import MediaManager, MediaOverrides
from appliance.session.model import ButtonName, Intent, RoomState, State, StopRequested
from appliance.session.truth import PROGRESS_GRACE
from appliance.systemd import Notifier

log = logging.getLogger("soak")

IDENTITY, ROOM = "kiosk-1", "lobby"
API_KEY, API_SECRET = "soak-key", "soak-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
MUTE_LED, CAMERA_LED = 23, 24  # hardware/default.toml
QUALITY_RED, QUALITY_GREEN = 5, 6  # the RGB quality LED's red and green legs
IN_ROOM_PATTERNS = (STATUS_PATTERNS[StatusKind.ALONE], STATUS_PATTERNS[StatusKind.WITH_OTHERS])
MUTE_HOLD, LEAVE_HOLD = 0.5, 1.0
SAMPLE_PERIOD = 0.5
STATS_INTERVAL = 1.0  # the runner samples the SDK's outbound counters every second
MEDIA_WINDOW = PROGRESS_GRACE + STATS_INTERVAL + SAMPLE_PERIOD
SIGNAL_WINDOW = 1.0 + SAMPLE_PERIOD
# Deadlines are generous on purpose (a loaded 2-core machine): a fault is unrecovered only when
# the kiosk is not back on air this long after the fault ended (plus the kind's own extra).
RECOVERY_DEADLINE = 90.0
BASELINE_DEADLINE = 120.0
REMOVED_STAY_OUT = 5.0
DEVSERVER_OPTIONS: dict[str, Any] = dict(departure_timeout=5.0, ping_interval=2, ping_timeout=6)
# The short seconds reconnect policy of the e2e tests; removal stays out 5 s, not 300.
POLICY = ReconnectConfig(backoff_initial=0.3, backoff_max=3.0, auth_backoff_max=4.0,
                         stable_after=60.0, media_stall_timeout=4.0,
                         removed_stay_out=REMOVED_STAY_OUT)
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


# ---------------------------------------------------------------------------------------------
# Captured logs: secrets and tracebacks


class Capture(logging.Handler):
    """Every log record of the process: scanned for secrets, tracebacks kept."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.secrets = secrets
        self.lines = 0
        self.leaks: list[str] = []
        self.tracebacks: list[str] = []
        self.errors: dict[str, int] = {}
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a broken log call must not take the soak down
            text = f"{record.name}: {record.msg!r}"
        self.lines += 1
        if any(s and s in text for s in self.secrets) or JWT.search(text):
            self.leaks.append(text[:300])
        if record.levelno >= logging.ERROR:
            self.errors[record.name] = self.errors.get(record.name, 0) + 1
        if record.exc_info and record.exc_info[0] is not None:
            self.tracebacks.append(text[-2000:])


# ---------------------------------------------------------------------------------------------
# The double's view and LED sampling


@dataclass
class TrackView:
    present: bool = False
    muted: bool = False
    sid: str = ""
    packets: int = 0

    def state(self, prev: TrackView) -> str:
        """receiving | stalled (published, unmuted, no new packets) | muted | absent."""
        if not self.present:
            return "absent"
        if self.muted:
            return "muted"
        before = prev.packets if prev.sid == self.sid else 0
        return "receiving" if self.packets > before else "stalled"


def double_has(srv: DevServer | None, identity: str) -> bool:
    """The double lists `identity` as a participant of the soak's room."""
    hub = getattr(srv, "_hub", None)
    room = hub.rooms.get(ROOM) if hub is not None else None
    return room is not None and identity in room.participants


def double_view(srv: DevServer | None, kind: str) -> TrackView:
    hub = getattr(srv, "_hub", None)  # None: stopped, or between a kill and the restart
    if hub is None:
        return TrackView()
    track = find_track(hub, ROOM, IDENTITY, kind)
    if track is None:
        return TrackView()
    return TrackView(True, track.muted, track.sid, track.stats.packets)


@dataclass
class Episode:
    """One run of consecutive disagreeing samples of one LED in one direction."""

    led: str
    direction: str  # "false_live" (a violation beyond its window) | "false_dead"
    start: float
    fault: str
    led_said: str
    double_saw: list[str] = field(default_factory=list)
    kiosk: list[str] = field(default_factory=list)
    end: float = 0.0
    window: float = SIGNAL_WINDOW
    beyond: int = 0  # samples past the window

    def as_dict(self, t0: float) -> dict[str, Any]:
        return {"led": self.led, "direction": self.direction, "fault": self.fault,
                "at": round(self.start - t0, 1), "lasted": round(self.end - self.start, 2),
                "window": self.window, "samples_beyond_window": self.beyond,
                "led_said": self.led_said, "double_saw": sorted(set(self.double_saw)),
                "kiosk": sorted(set(self.kiosk))[:6]}


def kiosk_summary(s: State) -> str:
    return (f"room={s.room.value} intent={s.intent.value} mic={s.microphone.value}"
            f"{'(muted)' if s.mic_muted else ''} cam={s.camera.value}"
            f"{'(muted)' if s.camera_muted else ''} stalled={sorted(k.value for k in s.stalled)}"
            f" rung={s.ladder.index} privacy={s.camera_privacy} mute_wanted={s.mic_mute_wanted}"
            f" fault={s.fault.value}")


class LedJudge:
    """Per LED and direction: the current disagreement episode and the totals."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.samples = 0
        self.open: dict[tuple[str, str], Episode] = {}
        self.episodes: list[Episode] = []
        self.beyond = {"false_live": 0, "false_dead": 0}
        self.within = {"false_live": 0, "false_dead": 0}

    def judge(self, now: float, led: str, led_live: bool, seen: str, fault: str,
              kiosk: str, *, cautious_too: bool = True) -> None:
        """`cautious_too=False`: only a live claim is judged (the quality LED may show poor or
        lost while media still arrives: that is the server's grade, not a lie)."""
        wrong = {"false_live": led_live and seen != "receiving",
                 "false_dead": cautious_too and not led_live and seen == "receiving"}
        for direction, disagrees in wrong.items():
            key = (led, direction)
            ep = self.open.get(key)
            if not disagrees:
                if ep is not None:
                    del self.open[key]
                    if ep.beyond:
                        self.episodes.append(ep)
                continue
            if ep is None:
                ep = Episode(led, direction, now, fault,
                             "live" if led_live else ("muted" if led == "mute" else "off"))
                self.open[key] = ep
            ep.end = now
            ep.double_saw.append(seen)
            ep.kiosk.append(kiosk)
            if seen == "stalled":  # the double's counters stopped: the media window applies
                ep.window = max(ep.window, MEDIA_WINDOW)
            if now - ep.start > ep.window:
                ep.beyond += 1
                self.beyond[direction] += 1
            else:
                self.within[direction] += 1

    def close(self) -> None:
        for ep in self.open.values():
            if ep.beyond:
                self.episodes.append(ep)
        self.open.clear()


# ---------------------------------------------------------------------------------------------
# The soak


@dataclass
class FaultRecord:
    kind: str
    at: float
    ended: float = 0.0
    recovery: float | None = None
    note: str = ""


class Soak:
    def __init__(self, seed: int, minutes: float, workdir: Path, verbose: bool = False,
                 only: list[str] | None = None) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.minutes = minutes
        self.workdir = workdir
        self.verbose = verbose
        self.srv: DevServer | None = None
        self.port = 0
        self.kiosk: Kiosk | None = None
        self.kiosk_task: asyncio.Task[int] | None = None
        self.mic_faults = MicrophoneFaults()
        self.crashes: list[str] = []
        self.unhandled: list[str] = []
        self.unexpected_events = 0
        self.fault = "startup"
        self.faults: list[FaultRecord] = []
        self.t0 = time.monotonic()
        self.judge = LedJudge(self.t0)
        self.sampled = asyncio.Event()
        self.double_on_air = False
        self.prev = {"audio": TrackView(), "video": TrackView()}
        self.sample_gaps: list[float] = []
        self.resources: dict[str, dict[str, float]] = {}
        self.kinds: dict[str, Callable[[], Awaitable[float]]] = {
            "signalling_drop": self.f_signalling_drop,
            "server_down_short_503": lambda: self.f_server_down(8.0),
            "server_down_long_503": lambda: self.f_server_down(40.0),
            "auth_storm_401": self.f_auth_storm,
            "frozen_server": self.f_frozen,
            "server_killed_restarted": self.f_restart,
            "leave_disconnect": lambda: self.f_leave("DISCONNECT"),
            "leave_resume": lambda: self.f_leave("RESUME"),
            "leave_reconnect": lambda: self.f_leave("RECONNECT"),
            "leave_participant_removed": lambda: self.f_leave(
                "DISCONNECT", models.PARTICIPANT_REMOVED),
            "leave_room_deleted": lambda: self.f_leave("DISCONNECT", models.ROOM_DELETED),
            "duplicate_identity": self.f_duplicate,
            "media_black_hole": self.f_black_hole,
            "quality_poor": lambda: self.f_quality("POOR", 10.0),
            "quality_lost": lambda: self.f_quality("LOST", 6.0),
            "camera_unplug": self.f_camera_unplug,
            "microphone_io_error": self.f_mic_error,
            "gpio_bounce_storm": self.f_bounce_storm,
            "leave_rejoin_presses": self.f_leave_presses,
            "leave_long_press": self.f_leave_long,
            "mute_toggle": self.f_mute_toggle,
            "camera_privacy_long_press": self.f_privacy,
            "server_mute": self.f_server_mute,
            "token_refresh": self.f_token_refresh,
        }
        unknown = set(only or []) - set(self.kinds)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {list(self.kinds)}")
        self.only = only

    # ----- set-up ----------------------------------------------------------------------------

    def config(self) -> Config:
        assert self.srv is not None
        return Config(
            livekit=LiveKitConfig(url=self.srv.url, room=ROOM, identity=IDENTITY, name="Kiosk 1",
                                  api_key=API_KEY, api_secret=API_SECRET),
            camera=CameraConfig(backend="test", width=320, height=240, fps=15,
                                degrade_after=4.0, restore_after=6.0),
            microphone=MicrophoneConfig(backend="test"),
            speaker=SpeakerConfig(backend="none"),
            reconnect=POLICY,
            gpio=GpioConfig(profile="default", pin_factory="mock", mute_hold=MUTE_HOLD,
                            leave_hold=LEAVE_HOLD, bounce_time=0.02),
            control=ControlConfig(socket=self.workdir / "control.sock"))

    async def start_server(self) -> None:
        srv = DevServer(port=self.port, api_key=API_KEY, api_secret=API_SECRET,
                        **DEVSERVER_OPTIONS)
        await srv.start()
        self.port = srv.port
        self.srv = srv

    def start_kiosk(self, crashes: int = 0) -> None:
        cfg = self.config()
        hz = cfg.microphone.tone_hz
        media = MediaManager(cfg, MediaOverrides(
            microphone=lambda: ToneCapture(hz, faults=self.mic_faults)))
        self.kiosk = build_kiosk(cfg, media=media, notifier=Notifier({}), crashes=crashes)
        self.kiosk_task = asyncio.create_task(self.kiosk.run(), name="soak-kiosk")

    @property
    def runner_state(self) -> State:
        assert self.kiosk is not None
        return self.kiosk.runner.state

    async def watch_kiosk(self) -> None:
        """The kiosk task must never end on its own: if it does, count it and restart it, as
        systemd would (Restart=always)."""
        while True:
            assert self.kiosk_task is not None
            task = self.kiosk_task
            with contextlib.suppress(BaseException):
                await asyncio.shield(task)
            if task.cancelled():
                return
            exc = task.exception()
            what = (f"kiosk task raised {exc!r}: " + "".join(
                traceback.format_exception(exc))[-1500:]) if exc else (
                f"kiosk task returned {task.result()} without a stop request")
            self.crashes.append(f"{self.fault}: {what}")
            log.error("CRASH during %s: %s", self.fault, what)
            gc.collect()
            self.start_kiosk(crashes=len(self.crashes))

    # ----- sampling --------------------------------------------------------------------------

    def led(self, pin: int) -> bool:
        kiosk = self.kiosk
        if kiosk is None or kiosk.gpio is None:
            return False
        return float(kiosk.gpio.factory.pin(pin).state) > 0.5

    def status_in_room(self) -> bool:
        """The status LED's pattern claims the kiosk is in the room (alone or with others)."""
        kiosk = self.kiosk
        if kiosk is None or kiosk.gpio is None:
            return False
        return kiosk.gpio.leds.shown.get(LedName.STATUS) in IN_ROOM_PATTERNS

    def quality_green(self) -> bool:
        """The quality LED claims a working link (excellent or good: green without red)."""
        kiosk = self.kiosk
        if kiosk is None or kiosk.gpio is None:
            return False
        level = {pin: float(kiosk.gpio.factory.pin(pin).state)
                 for pin in (QUALITY_RED, QUALITY_GREEN)}
        return level[QUALITY_RED] < 0.05 and level[QUALITY_GREEN] > 0.05

    async def sampler(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(SAMPLE_PERIOD)  # the sampling cadence itself
            now = time.monotonic()
            self.sample_gaps.append(now - last)
            last = now
            views = {k: double_view(self.srv, k) for k in ("audio", "video")}
            seen = {k: views[k].state(self.prev[k]) for k in views}
            self.prev = views
            # Back on air: the double receives both tracks unmuted AND the kiosk says so (a
            # kiosk still resuming while its old media flows is not back yet).
            self.double_on_air = (seen["audio"] == "receiving" and seen["video"] == "receiving"
                                  and not self.led(MUTE_LED) and self.led(CAMERA_LED))
            if self.kiosk is not None and self.kiosk.gpio is not None and self.fault != "startup":
                summary = kiosk_summary(self.runner_state)
                self.judge.samples += 1
                self.judge.judge(now, "mute", not self.led(MUTE_LED), seen["audio"],
                                 self.fault, summary)
                self.judge.judge(now, "camera", self.led(CAMERA_LED), seen["video"],
                                 self.fault, summary)
                # Green quality while the kiosk publishes and none of its media arrives is a lie;
                # with nothing unmuted at the double there is nothing to judge it by.
                arriving = ("stalled" if "stalled" in seen.values()
                            and "receiving" not in seen.values() else "receiving")
                self.judge.judge(now, "quality", self.quality_green(), arriving, self.fault,
                                 summary, cautious_too=False)
                # "In the room" while the double does not list the kiosk is a lie; the double
                # keeping a departed session for its resume window is not the LED's to show.
                present = "receiving" if double_has(self.srv, IDENTITY) else "absent"
                self.judge.judge(now, "status", self.status_in_room(), present, self.fault,
                                 summary, cautious_too=False)
            self.sampled.set()
            self.sampled = asyncio.Event()

    async def wait_on_air(self, within: float) -> float | None:
        """Seconds until the double receives both tracks unmuted (None: not within)."""
        start = time.monotonic()
        deadline = start + within
        while not self.double_on_air:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 5.0)):
                    await self.sampled.wait()
        return time.monotonic() - start

    async def wait_kiosk(self, predicate: Callable[[State], bool], within: float) -> bool:
        assert self.kiosk is not None
        runner = self.kiosk.runner
        changed = asyncio.Event()
        remove = runner.add_listener(lambda _s: changed.set())
        try:
            async with asyncio.timeout(within):
                while not predicate(runner.state):
                    changed.clear()
                    await changed.wait()
            return True
        except TimeoutError:
            return False
        finally:
            remove()

    def resources_now(self) -> dict[str, float]:
        status = Path("/proc/self/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return {"fds": len(os.listdir("/proc/self/fd")),
                "threads": int(fields["Threads"].strip()),
                "python_threads": threading.active_count(),
                "rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1)}

    # ----- controls --------------------------------------------------------------------------

    async def press(self, button: ButtonName, seconds: float = 0.05) -> None:
        """A press through the daemon's control socket (the mock pin, the whole GPIO path)."""
        sock = self.config().control.socket
        reply = await asyncio.to_thread(control_cli.request, sock,
                                        {"cmd": "hold", "button": button.value,
                                         "seconds": seconds}, seconds + 15.0)
        if not (reply.get("ok") and reply.get("posted")):
            log.warning("press %s: %s", button.value, reply)

    async def restore_person_wishes(self) -> None:
        """Undo what presses left behind: microphone unmuted, no camera privacy, intent in."""
        for _ in range(3):
            s = self.runner_state
            if s.camera_privacy:
                await self.press(ButtonName.MUTE, MUTE_HOLD + 0.3)
                await self.wait_kiosk(lambda s: not s.camera_privacy, 10)
            elif s.mic_mute_wanted:
                await self.press(ButtonName.MUTE)
                await self.wait_kiosk(lambda s: not s.mic_mute_wanted, 10)
            elif s.intent is Intent.LEFT:
                await self.press(ButtonName.LEAVE)
                await self.wait_kiosk(lambda s: s.intent is Intent.IN_ROOM, 10)
            else:
                return

    # ----- faults: each returns the monotonic time the fault ended ---------------------------

    @property
    def server(self) -> DevServer:
        assert self.srv is not None
        return self.srv

    async def f_signalling_drop(self) -> float:
        await self.server.faults.close_sockets(IDENTITY)
        return time.monotonic()

    async def f_server_down(self, seconds: float) -> float:
        self.server.faults.reject(503, seconds)
        await self.server.faults.close_sockets(IDENTITY)
        await asyncio.sleep(seconds)  # the outage itself
        return time.monotonic()

    async def f_auth_storm(self) -> float:
        seconds = 10.0
        self.server.faults.reject(401, seconds)
        await self.server.faults.leave("RECONNECT", IDENTITY)  # make it rejoin into the storm
        await asyncio.sleep(seconds)
        return time.monotonic()

    async def f_frozen(self) -> float:
        seconds = 9.0
        self.server.faults.freeze(seconds)
        await asyncio.sleep(seconds)
        self.server.faults.thaw()
        return time.monotonic()

    async def f_restart(self) -> float:
        await self.server.aclose()
        self.srv = None
        await asyncio.sleep(3.0)  # the server is away
        await self.start_server()
        return time.monotonic()

    async def f_leave(self, action: str,
                      reason: models.DisconnectReason = models.UNKNOWN_REASON) -> float:
        await self.server.faults.leave(action, IDENTITY, reason)
        return time.monotonic()

    async def f_duplicate(self) -> float:
        from livekit import rtc

        intruder = rtc.Room()
        try:
            token = self.server.mint_token(IDENTITY, ROOM, name="intruder")
            await asyncio.wait_for(intruder.connect(self.server.url, token), 20)
            await asyncio.sleep(5.0)  # the second device stays this long
        except (TimeoutError, rtc.ConnectError) as exc:
            log.warning("duplicate identity: intruder could not join: %r", exc)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(intruder.disconnect(), 10)
        return time.monotonic()

    async def f_black_hole(self) -> float:
        self.server.faults.black_hole(True, IDENTITY)
        await asyncio.sleep(8.0)
        self.server.faults.black_hole(False, IDENTITY)
        return time.monotonic()

    async def f_quality(self, quality: str, seconds: float) -> float:
        await self.server.faults.connection_quality(IDENTITY, quality)
        await asyncio.sleep(seconds)
        await self.server.faults.connection_quality(IDENTITY, "EXCELLENT")
        return time.monotonic()

    async def f_camera_unplug(self) -> float:
        assert self.kiosk is not None
        media = self.kiosk.media
        assert isinstance(media, MediaManager)
        media.simulate_camera(False)
        await asyncio.sleep(4.0)
        media.simulate_camera(True)
        return time.monotonic()

    async def f_mic_error(self) -> float:
        self.mic_faults.fail_next_read(opens_failing=2)
        return time.monotonic()

    async def f_bounce_storm(self) -> float:
        assert self.kiosk is not None and self.kiosk.gpio is not None
        gpio = self.kiosk.gpio
        gaps = [self.rng.uniform(0.0005, 0.004) for _ in range(40)]

        def storm() -> None:
            for i, gap in enumerate(gaps):
                gpio.drive(ButtonName.MUTE, i % 2 == 0)
                time.sleep(gap)  # the bounce itself: contacts chattering for ~0.1 s
            gpio.drive(ButtonName.MUTE, False)

        panel = gpio.button_panel
        before, wished = panel.posted(ButtonName.MUTE), self.runner_state.mic_mute_wanted
        await asyncio.to_thread(storm)
        # Whatever presses the debouncer made of the chatter: wait until they are posted and
        # the machine has taken them (an odd count flips the wish), then undo them as a person.
        await asyncio.to_thread(panel.wait_posted, ButtonName.MUTE, before + 1, 3.0)
        presses = panel.posted(ButtonName.MUTE) - before
        want = wished != (presses % 2 == 1)
        await self.wait_kiosk(lambda s: s.mic_mute_wanted == want or s.camera_privacy, 10)
        await self.wait_kiosk(lambda s: s.mic_muted == s.mic_mute_wanted, 10)
        await self.restore_person_wishes()
        return time.monotonic()

    async def f_leave_presses(self) -> float:
        await self.press(ButtonName.LEAVE)
        await self.wait_kiosk(lambda s: s.room is RoomState.DISCONNECTED, 20)
        await asyncio.sleep(2.0)  # a person away from the room
        await self.press(ButtonName.LEAVE)
        return time.monotonic()

    async def f_leave_long(self) -> float:
        await self.press(ButtonName.LEAVE, LEAVE_HOLD + 0.3)
        return time.monotonic()

    async def f_mute_toggle(self) -> float:
        for _ in range(2):
            await self.press(ButtonName.MUTE)
            await self.wait_kiosk(lambda s: s.mic_muted, 10)
            await asyncio.sleep(1.5)  # muted for a while
            await self.press(ButtonName.MUTE)
            await self.wait_kiosk(lambda s: not s.mic_mute_wanted, 10)
        return time.monotonic()

    async def f_privacy(self) -> float:
        await self.press(ButtonName.MUTE, MUTE_HOLD + 0.3)
        await self.wait_kiosk(lambda s: s.camera_privacy, 10)
        await asyncio.sleep(3.0)
        await self.press(ButtonName.MUTE, MUTE_HOLD + 0.3)
        return time.monotonic()

    async def f_server_mute(self) -> float:
        await self.server.faults.mute(IDENTITY, "audio", True)
        await self.wait_kiosk(lambda s: s.mic_muted, 10)
        await asyncio.sleep(1.0)
        await self.restore_person_wishes()  # only a person unmutes
        return time.monotonic()

    async def f_token_refresh(self) -> float:
        await self.server.faults.refresh_token(IDENTITY)
        return time.monotonic()

    # ----- the run ---------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()

        def on_loop_error(_loop: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
            exc = ctx.get("exception")
            self.unhandled.append(f"{self.fault}: {ctx.get('message')} {exc!r}"[:1000])

        def on_thread_error(args: threading.ExceptHookArgs) -> None:
            name = args.thread.name if args.thread else "?"
            self.unhandled.append(f"{self.fault}: thread {name}: {args.exc_value!r}"[:1000])

        loop.set_exception_handler(on_loop_error)
        threading.excepthook = on_thread_error
        await self.start_server()
        self.start_kiosk()
        watcher = asyncio.create_task(self.watch_kiosk(), name="soak-watch")
        sampler = asyncio.create_task(self.sampler(), name="soak-sampler")
        started = time.monotonic()
        first = await self.wait_on_air(BASELINE_DEADLINE)
        if first is None:
            raise RuntimeError("the kiosk never got on air at the double")
        log.info("on air after %.1f s", first)
        self.resources["start"] = self.resources_now()
        peak = dict(self.resources["start"])
        end_at = started + self.minutes * 60
        order: list[str] = []
        while time.monotonic() < end_at:
            if not order:
                order = list(self.only or self.kinds)
                if not self.only:
                    self.rng.shuffle(order)
            kind = order.pop(0)
            self.fault = f"before {kind}"
            if await self.wait_on_air(BASELINE_DEADLINE) is None:
                self.faults.append(FaultRecord(kind, time.monotonic(), note="not on air before"))
                log.error("not on air before %s: skipped", kind)
                continue
            self.fault = kind
            record = FaultRecord(kind, time.monotonic())
            log.info("fault %s at %.0f s", kind, record.at - self.t0)
            try:
                record.ended = await self.kinds[kind]()
            except Exception as exc:  # a fault the soak could not inject: say so, go on
                record.ended = time.monotonic()
                record.note = f"injection failed: {exc!r}"
                log.exception("injecting %s failed", kind)
            extra = REMOVED_STAY_OUT if kind == "leave_participant_removed" else 0.0
            # Recovery is judged on samples taken after the fault ended.
            self.double_on_air = False
            record.recovery = await self.wait_on_air(RECOVERY_DEADLINE + extra)
            if record.recovery is not None:  # measured from the fault's end
                record.recovery = round(time.monotonic() - record.ended, 2)
            if record.recovery is None:  # what the kiosk and the double showed at the deadline
                record.note = (f"{kiosk_summary(self.runner_state)}; mute LED "
                               f"{'lit' if self.led(MUTE_LED) else 'dark'}, camera LED "
                               f"{'lit' if self.led(CAMERA_LED) else 'dark'}; double: "
                               f"audio {self.prev['audio']}, video {self.prev['video']}")
            self.faults.append(record)
            if self.verbose:
                print(f"{record.at - self.t0:7.1f} s  {kind:<28} recovery "
                      f"{record.recovery if record.recovery is not None else 'NEVER'}"
                      f" {record.note}", flush=True)
            await self.restore_person_wishes()
            self.fault = "between"
            now = self.resources_now()
            peak = {k: max(peak[k], v) for k, v in now.items()}
        self.fault = "end"
        await self.wait_on_air(BASELINE_DEADLINE)
        self.resources["end"] = self.resources_now()
        self.resources["peak"] = peak
        self.judge.close()
        assert self.kiosk is not None
        self.unexpected_events = self.kiosk.runner.unexpected
        sampler.cancel()
        watcher.cancel()
        await asyncio.gather(sampler, watcher, return_exceptions=True)
        await self.stop()
        return self.report(time.monotonic() - started)

    async def stop(self) -> None:
        kiosk, task = self.kiosk, self.kiosk_task
        if kiosk is not None and task is not None:
            kiosk.runner.post(StopRequested(kiosk.runner.clock(), "soak end"))
            try:
                async with asyncio.timeout(10):
                    await task
            except BaseException as exc:  # teardown: record, never hang
                self.crashes.append(f"stop: {exc!r}")
                task.cancel()
        gc.collect()
        if self.srv is not None:
            await self.srv.aclose()

    def report(self, seconds: float) -> dict[str, Any]:
        kinds: dict[str, Any] = {}
        for name in self.kinds:
            records = [r for r in self.faults if r.kind == name]
            if not records:
                continue
            times = sorted(r.recovery for r in records if r.recovery is not None)
            kinds[name] = {
                "count": len(records),
                "recovery_p50": round(statistics.median(times), 2) if times else None,
                "recovery_p95": round(_pct(times, 0.95), 2) if times else None,
                "recovery_max": round(times[-1], 2) if times else None,
                "unrecovered": sum(r.recovery is None for r in records),
                "notes": sorted({r.note for r in records if r.note}),
                "false_live_episodes": sum(e.direction == "false_live" and e.fault == name
                                           for e in self.judge.episodes),
            }
        start, end = self.resources.get("start", {}), self.resources.get("end", {})
        return {
            "seed": self.seed, "minutes": self.minutes, "seconds": round(seconds, 1),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "windows": {"media": MEDIA_WINDOW, "signal": SIGNAL_WINDOW,
                        "sample_period": SAMPLE_PERIOD},
            "faults": len(self.faults),
            "kinds": kinds,
            "unrecovered": sum(r.recovery is None for r in self.faults),
            "led": {"samples": self.judge.samples,
                    "truth_violations": self.judge.beyond["false_live"],
                    "cautious_beyond_window": self.judge.beyond["false_dead"],
                    "disagreements_within_window": self.judge.within,
                    "episodes": [e.as_dict(self.t0) for e in self.judge.episodes]},
            "sample_gap_max": round(max(self.sample_gaps, default=0.0), 2),
            "crashes": self.crashes,
            "unhandled": self.unhandled,
            "unexpected_events": self.unexpected_events,
            "resources": {**self.resources,
                          "growth": {k: round(end[k] - start[k], 1) for k in start if k in end}},
        }


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def table(result: dict[str, Any]) -> str:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    lines = [f"{'fault kind':<28} {'n':>3} {'p50 s':>6} {'p95 s':>6} {'max s':>6} "
             f"{'unrec':>5} {'LED viol':>8}"]
    for name, k in result["kinds"].items():
        lines.append(f"{name:<28} {k['count']:>3} {f(k['recovery_p50']):>6} "
                     f"{f(k['recovery_p95']):>6} {f(k['recovery_max']):>6} "
                     f"{k['unrecovered']:>5} {k['false_live_episodes']:>8}")
    led = result["led"]
    res = result["resources"]
    lines += [
        "",
        f"run: {result['seconds']:.0f} s, seed {result['seed']}, {result['faults']} faults, "
        f"{result['unrecovered']} unrecovered",
        f"LED samples: {led['samples']}; truth violations (live while the double receives "
        f"nothing, beyond the window): {led['truth_violations']} samples; cautious (dark while "
        f"the double receives, beyond the window): {led['cautious_beyond_window']} samples",
        f"windows: media {result['windows']['media']} s, signal {result['windows']['signal']} s;"
        f" longest gap between samples {result['sample_gap_max']} s",
        f"crashes: {len(result['crashes'])}; unhandled exceptions: {len(result['unhandled'])};"
        f" logged tracebacks: {len(result['tracebacks'])}; runner's unexpected events: "
        f"{result['unexpected_events']}",
        f"growth first-in-room -> end: {res.get('growth')} (peak {res.get('peak')})",
        f"log lines scanned: {result['log_lines']}; secret or token in a log line: "
        f"{len(result['secret_leaks'])}",
    ]
    for ep in led["episodes"]:
        lines.append(f"  episode: {ep}")
    return "\n".join(lines)


async def soak(minutes: float, seed: int, *, verbose: bool = False,
               only: list[str] | None = None) -> dict[str, Any]:
    """Run the soak in this event loop; returns the JSON-able result."""
    capture = Capture([API_SECRET])
    root = logging.getLogger()
    root.addHandler(capture)
    levels = {name: logging.getLogger(name).level for name in ("", "appliance")}
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    logging.getLogger("appliance").setLevel(logging.DEBUG)
    old_hook = threading.excepthook
    try:
        with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
            runner = Soak(seed, minutes, Path(tmp), verbose=verbose, only=only)
            try:
                result = await runner.run()
            finally:
                loop = asyncio.get_running_loop()
                loop.set_exception_handler(None)
        result.update(tracebacks=capture.tracebacks, error_lines_by_logger=capture.errors,
                      log_lines=capture.lines, secret_leaks=capture.leaks)
        return result
    finally:
        threading.excepthook = old_hook
        root.removeHandler(capture)
        root.setLevel(levels[""])
        logging.getLogger("appliance").setLevel(levels["appliance"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the result to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="one line per fault")
    parser.add_argument("--kinds", help="comma-separated fault kinds, in this order (default: "
                        "all, in seeded random rounds)")
    args = parser.parse_args()
    if os.environ.get("APPLIANCE_NETNS") != "1":
        print("run me inside scripts/netns-run (libwebrtc needs a non-loopback interface)")
        return 2
    # stderr shows errors only (every line, of every level, is still captured and scanned).
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    only = [k for k in args.kinds.split(",") if k] if args.kinds else None
    result = asyncio.run(soak(args.minutes, args.seed, verbose=args.verbose, only=only))
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    bad = (result["led"]["truth_violations"] or result["unrecovered"] or result["crashes"]
           or result["secret_leaks"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
