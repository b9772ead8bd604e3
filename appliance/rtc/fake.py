"""Recording fakes of RoomLink, MediaLayer and the token source for tests without the SDK."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from appliance.errors import TokenError
from appliance.session.link import JoinFailed, Progress
from appliance.session.model import Event, TrackKind, TrackState, TrackStateChanged


@dataclass
class FakeTrack:
    name: str
    muted: bool = False

    def mute(self) -> None:
        self.muted = True

    def unmute(self) -> None:
        self.muted = False


class FakeLink:
    """Joins succeed unless an outcome is queued (`fail_next`); `gate` holds a join open."""

    def __init__(self, post: Callable[[Event], None],
                 clock: Callable[[], float] = lambda: asyncio.get_running_loop().time()) -> None:
        self.post = post
        self.clock = clock
        self.calls: list[tuple[Any, ...]] = []
        self.outcomes: deque[JoinFailed | None] = deque()
        self.remotes: frozenset[str] = frozenset()
        self.gate: asyncio.Event | None = None
        self.connected = False
        self.in_flight = 0
        self.max_in_flight = 0
        self.published: dict[TrackKind, Any] = {}
        self.counters: dict[TrackKind, Progress] = {}
        self.closed = 0

    def fail_next(self, reason: str = "fake: unreachable", *, auth: bool = False,
                  times: int = 1) -> None:
        for _ in range(times):
            self.outcomes.append(JoinFailed(reason, auth=auth))

    async def connect(self, url: str, token: str) -> frozenset[str]:
        self.calls.append(("connect", url, token))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            outcome = self.outcomes.popleft() if self.outcomes else None
            if outcome is not None:
                raise outcome
            self.connected = True
            return self.remotes
        finally:
            self.in_flight -= 1

    async def disconnect(self) -> None:
        self.calls.append(("disconnect",))
        self.connected = False
        self.published.clear()

    async def publish(self, tracks: Mapping[TrackKind, Any], *, camera: bool) -> None:
        self.calls.append(("publish", tuple(sorted(k.value for k in tracks)), camera))
        for kind, track in tracks.items():
            if (kind is TrackKind.CAMERA and not camera) or self.published.get(kind) is track:
                continue
            self.post(TrackStateChanged(self.clock(), kind, TrackState.PUBLISHING))
            self.published[kind] = track
            self.post(TrackStateChanged(self.clock(), kind, TrackState.PUBLISHED))

    async def unpublish(self, kind: TrackKind) -> None:
        self.calls.append(("unpublish", kind.value))
        if self.published.pop(kind, None) is not None:
            self.post(TrackStateChanged(self.clock(), kind, TrackState.ACQUIRED, "unpublished"))

    async def progress(self) -> Mapping[TrackKind, Progress]:
        return dict(self.counters)

    async def aclose(self) -> None:
        self.closed += 1
        await self.disconnect()


class FakeMedia:
    """Two fake tracks that are ACQUIRED at start; records mute/camera calls."""

    def __init__(self, *, camera: bool = True, microphone: bool = True) -> None:
        self.tracks: dict[TrackKind, FakeTrack] = {}
        self.calls: list[tuple[str, bool]] = []
        self._want = {TrackKind.CAMERA: camera, TrackKind.MICROPHONE: microphone}
        self._post: Callable[[Event], None] | None = None
        self.closed = 0

    async def start(self, post: Callable[[Event], None]) -> None:
        self._post = post
        for kind, wanted in self._want.items():
            if wanted:
                self._acquire(kind)

    def _acquire(self, kind: TrackKind) -> None:
        self.tracks[kind] = FakeTrack(kind.value)
        if self._post is not None:
            now = asyncio.get_running_loop().time()
            self._post(TrackStateChanged(now, kind, TrackState.ACQUIRED))

    def local_tracks(self) -> Mapping[TrackKind, Any]:
        return dict(self.tracks)

    async def set_microphone_muted(self, muted: bool) -> None:
        self.calls.append(("mic_muted", muted))
        track = self.tracks.get(TrackKind.MICROPHONE)
        if track is not None:
            track.muted = muted

    async def set_camera_enabled(self, enabled: bool) -> None:
        self.calls.append(("camera_enabled", enabled))
        if enabled and TrackKind.CAMERA not in self.tracks:
            self._acquire(TrackKind.CAMERA)
        elif (not enabled and self.tracks.pop(TrackKind.CAMERA, None) is not None
              and self._post is not None):
            now = asyncio.get_running_loop().time()
            self._post(TrackStateChanged(now, TrackKind.CAMERA, TrackState.STOPPED))

    async def aclose(self) -> None:
        self.closed += 1


class FakeTokens:
    """Hands out numbered tokens; `fail` makes the next gets raise."""

    def __init__(self, url: str = "ws://fake") -> None:
        self.url = url
        self.fetches: list[bool] = []
        self.failures: deque[Exception] = deque()
        self.closed = 0

    async def get(self, *, fresh: bool = False) -> tuple[str, str]:
        self.fetches.append(fresh)
        if self.failures:
            raise self.failures.popleft()
        return self.url, f"token-{len(self.fetches)}"

    def fail_next(self, exc: Exception | None = None) -> None:
        self.failures.append(exc or TokenError("fake: endpoint down"))

    async def aclose(self) -> None:
        self.closed += 1
