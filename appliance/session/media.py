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

    Contract (the media layer reports device facts and executes; it decides nothing):
    - `start(post)` acquires devices (or learns they are absent) and returns; from then on it
      posts `TrackStateChanged` (ACQUIRING, ACQUIRED, STOPPING, STOPPED, LOST) through `post`,
      which is thread-safe. The room link posts PUBLISHING/PUBLISHED for the tracks it publishes.
    - `local_tracks()` returns the tracks that exist right now (ACQUIRED ones); the session
      publishes them on every (re)join. Return a new track object after a device was re-acquired.
    - `set_track_muted(kind, muted)` calls the track's `mute()/unmute()` (so LiveKit reports it),
      remembers the wish for tracks opened later (they start muted) and, for the microphone,
      stops feeding audio; returns whether the SDK track's mute flag flipped.
    - `set_camera_enabled(False)` stops the camera (privacy); the session unpublishes the camera
      track BEFORE calling it and republishes after enabling.
    - `set_video_mode(size)` captures at `size`, or pauses capture with None (audio only).
    - `aclose()` releases every device; safe to call twice.
    """

    async def start(self, post: Post) -> None: ...

    def local_tracks(self) -> Mapping[TrackKind, rtc.LocalTrack]: ...

    async def set_track_muted(self, kind: TrackKind, muted: bool) -> bool: ...

    async def set_camera_enabled(self, enabled: bool) -> None: ...

    async def set_video_mode(self, size: tuple[int, int] | None) -> None: ...

    async def aclose(self) -> None: ...


class NullMedia:
    """No camera, no microphone: lets `appliance run` join and hold a room before media exists."""

    def __init__(self) -> None:
        self.muted: dict[TrackKind, bool] = {}
        self.camera_enabled = True
        self.video_size: tuple[int, int] | None = None
        self.closed = False

    async def start(self, post: Post) -> None:
        return None

    def local_tracks(self) -> Mapping[TrackKind, rtc.LocalTrack]:
        return {}

    async def set_track_muted(self, kind: TrackKind, muted: bool) -> bool:
        self.muted[kind] = muted
        return False  # no track, so nothing in LiveKit flipped

    async def set_camera_enabled(self, enabled: bool) -> None:
        self.camera_enabled = enabled

    async def set_video_mode(self, size: tuple[int, int] | None) -> None:
        self.video_size = size

    async def aclose(self) -> None:
        self.closed = True
