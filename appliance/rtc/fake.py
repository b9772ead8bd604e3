"""Recording fakes of RoomLink, MediaLayer and the token source for tests without the SDK."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from appliance.errors import TokenError
from appliance.session.link import JoinFailed
from appliance.session.model import (
    Event,
    LocalTrackMuted,
    ProbeVerdict,
    RoomDisconnected,
    RoomReconnected,
    RoomReconnecting,
    TrackKind,
    TrackState,
    TrackStateChanged,
)
from appliance.session.stall import Progress


@dataclass
class FakeTrack:
    """A local track; `on_flip` is how the FakeLink hears a mute change to echo it back."""

    name: str
    muted: bool = False
    on_flip: Callable[[FakeTrack], None] | None = None
    ended: bool = False  # its device is gone: no media flows any more

    def mute(self) -> None:
        self._set(True)

    def unmute(self) -> None:
        self._set(False)

    def _set(self, muted: bool) -> None:
        if muted != self.muted:
            self.muted = muted
            if self.on_flip is not None:
                self.on_flip(self)


class FakeLink:
    """Joins succeed unless an outcome is queued (`fail_next`); `gate` holds a join open.

    Like the SDK it echoes every mute flip of a published track as LocalTrackMuted, and
    `server_mute` mutes a published track the way a server's MutePublishedTrack does.
    """

    def __init__(self, post: Callable[[Event], None],
                 clock: Callable[[], float] = lambda: asyncio.get_running_loop().time()) -> None:
        self.post = post
        self.clock = clock
        self.calls: list[tuple[Any, ...]] = []
        self.outcomes: deque[JoinFailed | None] = deque()
        self.remotes: frozenset[str] = frozenset()
        self.gate: asyncio.Event | None = None
        self.connected = False
        self.resuming = False
        self.in_flight = 0
        self.max_in_flight = 0
        self.published: dict[TrackKind, Any] = {}
        self.stuck: set[TrackKind] = set()  # counters that stop growing (a black hole)
        self._flowing: dict[TrackKind, Progress] = {}
        self.probe_verdict: ProbeVerdict | None = None  # None: follow the queued outcomes
        self.attributes: dict[str, str] = {}
        self.attribute_updates = 0
        self.rpc_methods: dict[str, Callable[[str, str], Awaitable[str]]] = {}
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
        self._drop()

    async def publish(self, tracks: Mapping[TrackKind, Any], *, camera: bool) -> None:
        self.calls.append(("publish", tuple(sorted(k.value for k in tracks)), camera))
        for kind, track in tracks.items():
            if (kind is TrackKind.CAMERA and not camera) or self.published.get(kind) is track:
                continue
            self.post(TrackStateChanged(self.clock(), kind, TrackState.PUBLISHING))
            self.published[kind] = track
            track.on_flip = self._echo(kind)
            self.post(TrackStateChanged(self.clock(), kind, TrackState.PUBLISHED,
                                        muted=bool(track.muted)))

    def _echo(self, kind: TrackKind) -> Callable[[FakeTrack], None]:
        def echo(track: FakeTrack) -> None:
            # Like the SDK's FFI events: delivered by the loop later, never inside the call.
            if self.published.get(kind) is track:
                event = LocalTrackMuted(self.clock(), kind, track.muted)
                asyncio.get_running_loop().call_soon(self.post, event)
        return echo

    def sdk_resuming(self) -> None:
        """The SDK lost signalling and is resuming (media does not reach the room meanwhile)."""
        if self.connected:
            self.resuming = True
            self.post(RoomReconnecting(self.clock()))

    def sdk_resumed(self) -> None:
        if self.connected and self.resuming:
            self.resuming = False
            self.post(RoomReconnected(self.clock()))

    def sdk_gave_up(self, reason: str = "SIGNAL_CLOSE") -> None:
        """The SDK gave up on the room (or the server sent us away): the room is gone."""
        if self.connected:
            self._drop()
            self.post(RoomDisconnected(self.clock(), reason))

    def _drop(self) -> None:
        self.connected = self.resuming = False
        for track in self.published.values():
            track.on_flip = None
        self.published.clear()

    def on_air(self, kind: TrackKind) -> bool:
        """What the room really receives from us: the published, unmuted track."""
        track = self.published.get(kind)
        return (self.connected and not self.resuming and track is not None and not track.muted
                and not track.ended)

    def server_mute(self, kind: TrackKind, muted: bool) -> bool:
        """The server asks the SDK to (un)mute our publication; False if none is published."""
        track = self.published.get(kind)
        if track is None:
            return False
        track._set(muted)
        return True

    async def unpublish(self, kind: TrackKind) -> None:
        self.calls.append(("unpublish", kind.value))
        track = self.published.pop(kind, None)
        if track is not None:
            track.on_flip = None
            self.post(TrackStateChanged(self.clock(), kind, TrackState.ACQUIRED, "unpublished"))

    async def progress(self) -> Mapping[TrackKind, Progress]:
        """Media flows for every track on air, except the kinds a test made `stuck`."""
        for kind in self.published:
            if self.on_air(kind) and kind not in self.stuck:
                before = self._flowing.get(kind, Progress())
                self._flowing[kind] = Progress(before.sent + 1000, before.acked + 10)
        return {k: v for k, v in self._flowing.items() if k in self.published}

    async def set_attributes(self, attributes: Mapping[str, str]) -> None:
        if not self.connected:
            raise RuntimeError("not in a room")
        self.attributes.update(attributes)
        self.attribute_updates += 1

    async def call_rpc(self, method: str, caller: str, payload: str = "") -> str:
        """What a remote participant's perform_rpc would reach (RemoteRefused propagates)."""
        return await self.rpc_methods[method](caller, payload)

    async def probe(self, url: str, token: str) -> ProbeVerdict:
        """OK unless a join failure is queued (then what that failure implies)."""
        self.calls.append(("probe", url, token))
        if self.probe_verdict is not None:
            return self.probe_verdict
        nxt = self.outcomes[0] if self.outcomes else None
        if nxt is None:
            return ProbeVerdict.OK
        return ProbeVerdict.AUTH if nxt.auth else ProbeVerdict.UNREACHABLE

    async def aclose(self) -> None:
        self.closed += 1
        await self.disconnect()


class FakeMedia:
    """Two fake tracks that are ACQUIRED at start; records mute/camera/mode calls.

    `lose(kind)` and `replug(kind)` make a device vanish and come back with a fresh track.
    """

    def __init__(self, *, camera: bool = True, microphone: bool = True) -> None:
        self.tracks: dict[TrackKind, FakeTrack] = {}
        self.calls: list[tuple[str, Any]] = []
        self.wanted_muted = {TrackKind.CAMERA: False, TrackKind.MICROPHONE: False}
        self.video_size: tuple[int, int] | None = None
        self.video_paused = False  # the session chose the audio-only rung
        self.camera_enabled = True
        self._want = {TrackKind.CAMERA: camera, TrackKind.MICROPHONE: microphone}
        self._post: Callable[[Event], None] | None = None
        self.closed = 0

    async def start(self, post: Callable[[Event], None]) -> None:
        self._post = post
        for kind, wanted in self._want.items():
            if wanted:
                self._acquire(kind)

    def _acquire(self, kind: TrackKind) -> None:
        self.tracks[kind] = FakeTrack(kind.value, muted=self.wanted_muted[kind])
        self._emit(kind, TrackState.ACQUIRED)

    def _emit(self, kind: TrackKind, state: TrackState, reason: str = "") -> None:
        if self._post is not None:
            now = asyncio.get_running_loop().time()
            self._post(TrackStateChanged(now, kind, state, reason))

    def lose(self, kind: TrackKind) -> None:
        """The device vanished: its track is gone until `replug`."""
        track = self.tracks.pop(kind, None)
        if track is not None:
            track.ended = True
            self._emit(kind, TrackState.LOST, "unplugged")

    def replug(self, kind: TrackKind) -> None:
        if kind not in self.tracks and (kind is TrackKind.MICROPHONE or self.camera_enabled):
            self._acquire(kind)

    def local_tracks(self) -> Mapping[TrackKind, Any]:
        return dict(self.tracks)

    async def set_track_muted(self, kind: TrackKind, muted: bool) -> bool:
        self.calls.append((f"{kind.value}_muted", muted))
        self.wanted_muted[kind] = muted
        track = self.tracks.get(kind)
        if track is None or track.muted == muted:
            return False
        track._set(muted)
        return True

    async def set_video_mode(self, size: tuple[int, int] | None) -> None:
        self.calls.append(("video_mode", size))
        self.video_size = size
        self.video_paused = size is None

    async def set_camera_enabled(self, enabled: bool) -> None:
        self.calls.append(("camera_enabled", enabled))
        self.camera_enabled = enabled
        if enabled and TrackKind.CAMERA not in self.tracks:
            self._acquire(TrackKind.CAMERA)
        elif not enabled and (track := self.tracks.pop(TrackKind.CAMERA, None)) is not None:
            track.ended = True
            self._emit(TrackKind.CAMERA, TrackState.STOPPED, "disabled")

    async def aclose(self) -> None:
        self.closed += 1


class FakeTokens:
    """Hands out numbered tokens; `fail` makes the next gets raise."""

    def __init__(self, url: str = "ws://fake") -> None:
        self.url = url
        self.fetches: list[bool] = []
        self.failures: deque[Exception] = deque()
        self.closed = 0

    async def get(self, *, fresh: bool = False, probe: bool = False) -> tuple[str, str]:
        self.fetches.append(fresh)
        if self.failures:
            raise self.failures.popleft()
        return self.url, f"token-{len(self.fetches)}"

    def fail_next(self, exc: Exception | None = None) -> None:
        self.failures.append(exc or TokenError("fake: endpoint down"))

    async def aclose(self) -> None:
        self.closed += 1
