"""Shared fixtures: the LiveKit test double, real SDK clients, the e2e gate, GPIO mock pins."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gpio_support import Recorder
from gpiozero.pins.mock import MockFactory, MockPWMPin

NETNS_REASON = (
    "e2e: needs a private network namespace with a non-loopback interface, because libwebrtc "
    "ignores loopback interfaces; run `scripts/netns-run .venv/bin/pytest ...`"
)


def netns_ready() -> bool:
    """True inside scripts/netns-run's namespace with a non-loopback interface up."""
    if os.environ.get("APPLIANCE_NETNS") != "1":
        return False
    for iface in Path("/sys/class/net").iterdir():
        if iface.name == "lo":
            continue
        with contextlib.suppress(OSError):
            if (iface / "operstate").read_text().strip() in ("up", "unknown"):
                return True
    return False


requires_netns = pytest.mark.skipif(not netns_ready(), reason=NETNS_REASON)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Every e2e test skips (with the reason) outside the namespace: never fail, never pass.
    if netns_ready():
        return
    skip = pytest.mark.skip(reason=NETNS_REASON)
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


# ----- the double ---------------------------------------------------------------------------

DEVSERVER_OPTIONS: dict[str, Any] = dict(departure_timeout=5.0, ping_interval=2, ping_timeout=6)


@pytest.fixture
async def devserver() -> AsyncIterator[Any]:
    """A started DevServer on a free loopback port (device key 'kiosk-1' = 'device-key-1')."""
    from appliance.devserver import DevServer

    async with DevServer(port=0, device_keys={"kiosk-1": "device-key-1"},
                         **DEVSERVER_OPTIONS) as srv:
        yield srv


@pytest.fixture
async def devserver_factory() -> AsyncIterator[Callable[..., Any]]:
    """Start DevServers with custom options: `srv = await devserver_factory(ping_timeout=3)`."""
    from appliance.devserver import DevServer

    started: list[Any] = []

    async def start(**options: Any) -> Any:
        srv = DevServer(port=0, **{**DEVSERVER_OPTIONS, **options})
        await srv.start()
        started.append(srv)
        return srv

    yield start
    for srv in reversed(started):
        await srv.aclose()


# ----- real SDK clients ---------------------------------------------------------------------


@dataclass
class EventLog:
    """Records a room's SDK events; `await log.wait(name)` returns the next unseen one."""

    names: list[str] = field(default_factory=list)
    args: list[tuple[Any, ...]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _cursor: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, *args: Any) -> None:
        self.names.append(name)
        self.args.append(args)
        self.changed.set()

    async def wait(self, name: str, timeout: float = 15.0,  # noqa: ASYNC109
                   match: Callable[..., bool] | None = None) -> tuple[Any, ...]:
        """Wait for an event `name` after the last one returned (optionally matching args)."""
        deadline = time.monotonic() + timeout
        while True:
            start = self._cursor.get(name, 0)
            for i in range(start, len(self.names)):
                if self.names[i] == name and (match is None or match(*self.args[i])):
                    self._cursor[name] = i + 1
                    return self.args[i]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {name!r} event within {timeout} s; saw {self.names}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


ROOM_EVENTS = (
    "participant_connected", "participant_disconnected", "track_published",
    "track_unpublished", "track_subscribed", "track_unsubscribed", "track_muted",
    "track_unmuted", "local_track_published", "local_track_unpublished",
    "connection_quality_changed", "connection_state_changed", "disconnected", "reconnecting",
    "reconnected", "token_refreshed",
)


class SdkClients:
    """Connect real `livekit.rtc.Room`s to a server; everything is closed at teardown."""

    def __init__(self) -> None:
        self.rooms: list[Any] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def connect(self, url: str, token: str, *, single_pc: bool = True,
                      **options: Any) -> tuple[Any, EventLog]:
        from livekit import rtc

        room = rtc.Room()
        log = EventLog()
        for name in ROOM_EVENTS:
            room.on(name, lambda *a, _n=name: log.add(_n, *a))
        self.rooms.append(room)
        await room.connect(url, token, rtc.RoomOptions(single_peer_connection=single_pc,
                                                       **options))
        return room, log

    async def publish_tone(self, room: Any, hz: float = 440.0) -> Any:
        """Publish a microphone track playing a sine tone; returns the LocalTrackPublication."""
        from livekit import rtc

        from appliance.devserver.sdkfeed import feed_tone

        source = rtc.AudioSource(48000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        self.tasks.append(asyncio.create_task(feed_tone(source, hz), name=f"tone-{hz}"))
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        return await room.local_participant.publish_track(track, options)

    async def publish_pattern(self, room: Any, width: int = 640, height: int = 480,
                              fps: int = 30, simulcast: bool = True) -> Any:
        """Publish a camera track of stamped frames; returns the LocalTrackPublication."""
        from livekit import rtc

        from appliance.devserver.sdkfeed import feed_pattern

        source = rtc.VideoSource(width, height)
        track = rtc.LocalVideoTrack.create_video_track("cam", source)
        task = asyncio.create_task(feed_pattern(source, width, height, fps), name="pattern")
        self.tasks.append(task)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA,
                                          simulcast=simulcast)
        return await room.local_participant.publish_track(track, options)

    @staticmethod
    async def tone_hz(track: Any, seconds: float = 1.0) -> float | None:
        """Dominant frequency of `seconds` of a subscribed audio track (via rtc.AudioStream)."""
        import numpy as np
        from livekit import rtc

        from appliance.devserver.stats import dominant_frequency

        stream = rtc.AudioStream(track, sample_rate=48000, num_channels=1)
        chunks: list[Any] = []
        try:
            async for event in stream:
                chunks.append(np.frombuffer(event.frame.data, dtype=np.int16))
                # Skip the first half second: the jitter buffer plays silence until media lands.
                if sum(map(len, chunks)) >= int(48000 * (0.5 + seconds)):
                    break
        finally:
            await stream.aclose()
        return dominant_frequency(np.concatenate(chunks)[-int(48000 * seconds) :], 48000)

    @staticmethod
    async def video_frames(track: Any, count: int) -> list[tuple[int, int]]:
        """Sizes of the next `count` frames of a subscribed video track (via rtc.VideoStream)."""
        from livekit import rtc

        stream = rtc.VideoStream(track)
        sizes: list[tuple[int, int]] = []
        try:
            async for event in stream:
                sizes.append((event.frame.width, event.frame.height))
                if len(sizes) >= count:
                    break
        finally:
            await stream.aclose()
        return sizes

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for room in self.rooms:
            try:
                await asyncio.wait_for(room.disconnect(), 10)
            except Exception as exc:  # teardown of a room a test already broke: log, go on
                logging.getLogger(__name__).warning("room teardown: %r", exc)


@pytest.fixture
async def sdk() -> AsyncIterator[SdkClients]:
    """Real SDK clients: `room, events = await sdk.connect(srv.url, token)`; closed after."""
    clients = SdkClients()
    yield clients
    await clients.aclose()


# ----- GPIO (tests/devices, tests/control) ---------------------------------------------------


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """gpiozero's own mock pins, with PWM so pulsing LEDs work; closed after the test."""
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
