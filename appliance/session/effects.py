"""Effects: the orders the machine gives and the runner executes."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.session.state import TrackKind


# STATUS and LEDs are not effects: they are derived from State.
@dataclass(frozen=True)
class Effect:
    pass


@dataclass(frozen=True)
class Connect(Effect):
    """Get a token (fresh if `fresh_token` or expiring within 5 min), build a new Room, join."""

    attempt: int
    fresh_token: bool = False


@dataclass(frozen=True)
class Disconnect(Effect):
    reason: str


@dataclass(frozen=True)
class ScheduleRetry(Effect):
    """Arm the retry timer to fire at monotonic time `due` (the machine chose the jitter)."""

    due: float


@dataclass(frozen=True)
class ScheduleProbe(Effect):
    """At monotonic time `due`, ask the server whether a join would succeed (ProbeAnswered)."""

    due: float


@dataclass(frozen=True)
class CancelRetry(Effect):
    """Disarm the retry timer and any probe still due."""


@dataclass(frozen=True)
class PublishTracks(Effect):
    """Publish every ACQUIRED local track the media layer has (camera unless privacy)."""

    camera: bool = True


@dataclass(frozen=True)
class SetTrackMuted(Effect):
    """Mute/unmute the local track in LiveKit (and stop feeding audio); answer MuteApplied."""

    kind: TrackKind
    muted: bool


@dataclass(frozen=True)
class SetCameraEnabled(Effect):
    """False: camera privacy: unpublish the camera track and stop the camera."""

    enabled: bool


@dataclass(frozen=True)
class SetVideoMode(Effect):
    """The degradation rung moved: capture at `size`, or pause capture (None, audio only)."""

    size: tuple[int, int] | None


@dataclass(frozen=True)
class Shutdown(Effect):
    """The room is left (or never was): release devices and end the runner."""
