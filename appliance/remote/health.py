"""Health as participant attributes: a pure State -> {"kiosk.*": str} map and its publisher.

Keys are stable across versions (README "Remote operations"); values are short words. The
publisher coalesces changes and sends at most one update every MIN_INTERVAL seconds, so a burst
of state changes costs the server one attribute update, and the room always ends up with the
latest values.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from appliance.session.model import Intent, RoomState, State, TrackKind, TrackState

log = logging.getLogger(__name__)

MIN_INTERVAL = 0.25  # at most four attribute updates a second
SEND_TIMEOUT = 5.0
SOC_EVERY = 30.0  # SoC temperature / throttling sampling period on a Pi
THERMAL = Path("/sys/class/thermal/thermal_zone0/temp")
THROTTLED = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")


class AttributeSink(Protocol):
    async def set_attributes(self, attributes: Mapping[str, str]) -> None: ...


def _room_word(state: State) -> str:
    if state.stopping:
        return "stopping"
    if state.intent is Intent.LEFT:
        return "left-remotely" if state.left_remotely_by else "left"
    return {RoomState.CONNECTED: "in-room", RoomState.CONNECTING: "joining",
            RoomState.RECONNECTING: "reconnecting", RoomState.DISCONNECTING: "leaving",
            RoomState.DISCONNECTED: "out"}[state.room]


def _mic_word(state: State) -> str:
    if state.mic_live:
        return "live"
    if state.microphone is TrackState.LOST:
        return "lost"
    if TrackKind.MICROPHONE in state.stalled:
        return "stalled"
    if state.mic_muted or state.mic_mute_wanted:
        return "muted"
    return "off"


def _camera_word(state: State) -> str:
    if state.camera_privacy:
        return "private"
    if state.video_live:
        return "live"
    if state.camera is TrackState.LOST:
        return "lost"
    if TrackKind.CAMERA in state.stalled:
        return "stalled"
    if state.camera_remote_muted:
        return "muted"
    if state.ladder.rung.size is None:
        return "audio-only"
    return "off"


def health_attributes(state: State) -> dict[str, str]:
    """What the room may know of this kiosk's health, from the machine's observed state."""
    return {
        "kiosk.state": _room_word(state),
        "kiosk.fault": state.fault.value.replace(" ", "-"),
        "kiosk.mic": _mic_word(state),
        "kiosk.camera": _camera_word(state),
        "kiosk.camera_rung": state.ladder.rung.label,
        "kiosk.quality": state.quality.value,
        "kiosk.crashes": str(state.crashes),
        "kiosk.remote_unmutes_refused": str(state.remote_unmutes_refused),
    }


def soc_health(thermal: Path = THERMAL, throttled: Path = THROTTLED) -> dict[str, str]:
    """A Pi's SoC temperature (deg C) and firmware throttling flags; nothing elsewhere."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        out["kiosk.temp_c"] = f"{int(thermal.read_text().strip()) / 1000:.1f}"
    with contextlib.suppress(OSError, ValueError):
        out["kiosk.throttled"] = hex(int(throttled.read_text().strip(), 16))
    return out


def static_attributes(version: str, profile: str, started: float | None = None) -> dict[str, str]:
    """What does not change while the process runs (uptime = now - kiosk.started)."""
    when = datetime.datetime.fromtimestamp(started or time.time(), datetime.UTC)
    return {"kiosk.version": version, "kiosk.profile": profile,
            "kiosk.started": when.strftime("%Y-%m-%dT%H:%M:%SZ")}


class HealthPublisher:
    """A state listener: publishes changed `kiosk.*` attributes while the room is connected."""

    def __init__(self, sink: Callable[[], AttributeSink | None], static: Mapping[str, str], *,
                 clock: Callable[[], float] = time.monotonic,
                 soc: Callable[[], dict[str, str]] = soc_health) -> None:
        self._sink = sink
        self._static = dict(static)
        self._clock = clock
        self._soc = soc
        self._soc_values: dict[str, str] = {}
        self._soc_at = -SOC_EVERY
        self._published: dict[str, str] = {}
        self._wanted: dict[str, str] | None = None
        self._last_send = -MIN_INTERVAL
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.updates = 0

    def on_state(self, state: State) -> None:
        if state.room is not RoomState.CONNECTED:
            self._published = {}  # a new Room starts with no attributes: send them all again
            self._wanted = None
            return
        now = self._clock()
        if now - self._soc_at >= SOC_EVERY:
            self._soc_at, self._soc_values = now, self._soc()
        wanted = {**self._static, **self._soc_values, **health_attributes(state)}
        if wanted == self._published:
            self._wanted = None
            return
        self._wanted = wanted
        if self._timer is None and (self._task is None or self._task.done()):
            delay = max(0.0, self._last_send + MIN_INTERVAL - now)
            self._timer = asyncio.get_running_loop().call_later(delay, self._send_now)

    def _send_now(self) -> None:
        self._timer = None
        self._task = asyncio.get_running_loop().create_task(self._send(), name="health-send")

    async def _send(self) -> None:
        wanted, sink = self._wanted, self._sink()
        if wanted is None or sink is None:
            return
        changed = {k: v for k, v in wanted.items() if self._published.get(k) != v}
        self._last_send = self._clock()
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                await sink.set_attributes(changed)
        except (TimeoutError, RuntimeError, OSError) as exc:
            log.warning("publishing health attributes failed: %s", exc)
        else:
            self.updates += 1
            self._published.update(changed)
        if self._wanted is not None and self._wanted != self._published:
            delay = max(0.0, self._last_send + MIN_INTERVAL - self._clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._send_now)

    async def aclose(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
