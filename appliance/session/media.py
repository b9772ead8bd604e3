"""The seam between the session and the media layer: a Protocol plus a no-media stand-in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from appliance.session.model import Event, TrackKind

if TYPE_CHECKING:
    from livekit import rtc

Post = Callable[[Event], None]


@runtime_checkable
class MediaLayer(Protocol):
    """What the session needs from camera + microphone (+ speaker) code.

    Contract:
    - `start(post)` acquires devices (or learns they are absent) and returns; from then on it
      posts `TrackStateChanged` (UNINITIALIZED..ACQUIRED, STOPPING, STOPPED, LOST) and
      `DegradationChanged` through `post`, which is thread-safe. The session itself posts
      PUBLISHING/PUBLISHED when it publishes a track and ACQUIRED again when the room goes.
    - `local_tracks()` returns the tracks that exist right now (ACQUIRED ones); the session
      publishes them on every (re)join. Return a new track object after a device was re-acquired.
    - `set_microphone_muted` calls `LocalAudioTrack.mute()/unmute()` (so LiveKit reports it) and
      may also stop feeding frames; `set_camera_enabled(False)` stops the camera (privacy). The
      session unpublishes the camera track BEFORE calling it and republishes after enabling.
    - `aclose()` releases every device; safe to call twice.
    """

    async def start(self, post: Post) -> None: ...

    def local_tracks(self) -> Mapping[TrackKind, rtc.LocalTrack]: ...

    async def set_microphone_muted(self, muted: bool) -> None: ...

    async def set_camera_enabled(self, enabled: bool) -> None: ...

    async def aclose(self) -> None: ...


class NullMedia:
    """No camera, no microphone: lets `appliance run` join and hold a room before media exists."""

    def __init__(self) -> None:
        self.microphone_muted = False
        self.camera_enabled = True
        self.closed = False

    async def start(self, post: Post) -> None:
        return None

    def local_tracks(self) -> Mapping[TrackKind, rtc.LocalTrack]:
        return {}

    async def set_microphone_muted(self, muted: bool) -> None:
        self.microphone_muted = muted

    async def set_camera_enabled(self, enabled: bool) -> None:
        self.camera_enabled = enabled

    async def aclose(self) -> None:
        self.closed = True
