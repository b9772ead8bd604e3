"""Events: the facts adapters post (what a device, the SDK or a person did); the machine decides."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from appliance.session.degradation import Quality
from appliance.session.stall import Progress
from appliance.session.state import TrackKind, TrackState


# Every event carries `at`, monotonic seconds, so the machine never reads a clock.
@dataclass(frozen=True)
class Event:
    at: float


class ButtonName(enum.Enum):
    MUTE = "mute"
    LEAVE = "leave"


@dataclass(frozen=True)
class ButtonPressed(Event):
    button: ButtonName
    long: bool = False


@dataclass(frozen=True)
class TrackStateChanged(Event):
    """A device or publication fact. With PUBLISHED, `muted` is the new publication's flag."""

    kind: TrackKind
    state: TrackState
    reason: str = ""
    muted: bool = False


@dataclass(frozen=True)
class LocalTrackMuted(Event):
    """The SDK reports our publication muted/unmuted: the echo of our command or a server's."""

    kind: TrackKind
    muted: bool


@dataclass(frozen=True)
class MuteApplied(Event):
    """A SetTrackMuted was executed: the SDK track's flag now reads `muted`; `changed`: the
    call flipped it, so the SDK's echo of it will follow."""

    kind: TrackKind
    muted: bool
    changed: bool


@dataclass(frozen=True)
class ConnectionQualityChanged(Event):
    quality: Quality


class JoinFailure(enum.Enum):
    """Why a join did not complete, as the adapter saw it (the machine picks the fault)."""

    UNREACHABLE = "unreachable"  # refused, reset, timed out, DNS: the server or the path
    AUTH = "auth"  # 401/403 from the server or the token endpoint: the slow lane
    CONFIG = "config"  # our own configuration cannot produce a token
    CRASHED = "crashed"  # the join code raised something unexpected


@dataclass(frozen=True)
class ConnectRequested(Event):
    """Start of day (or a control-socket join): intent becomes in-room, connect if idle."""


@dataclass(frozen=True)
class RoomConnected(Event):
    remotes: frozenset[str] = frozenset()
    room_sid: str = ""


@dataclass(frozen=True)
class ConnectFailed(Event):
    reason: str
    cause: JoinFailure = JoinFailure.UNREACHABLE


@dataclass(frozen=True)
class RoomReconnecting(Event):
    pass


@dataclass(frozen=True)
class RoomReconnected(Event):
    pass


@dataclass(frozen=True)
class RoomDisconnected(Event):
    reason: str = ""  # DisconnectReason name as the SDK reported it
    client_initiated: bool = False


@dataclass(frozen=True)
class ParticipantJoined(Event):
    identity: str


@dataclass(frozen=True)
class ParticipantLeft(Event):
    identity: str


@dataclass(frozen=True)
class TokenRefreshed(Event):
    expires_at: float | None = None  # wall-clock expiry of the new token, if known


@dataclass(frozen=True)
class NetworkChanged(Event):
    up: bool  # True: a link came up or a default route appeared


@dataclass(frozen=True)
class MediaProgressSampled(Event):
    """Outbound media counters read from the SDK's stats while in the room."""

    samples: tuple[tuple[TrackKind, Progress], ...]


@dataclass(frozen=True)
class RetryTimerFired(Event):
    pass


class ProbeVerdict(enum.Enum):
    """What the server said to a cheap `/rtc/validate` probe while the kiosk is out of the room."""

    OK = "ok"  # a join would be accepted now
    AUTH = "auth"  # 401/403: the token (or the token service) is still refused
    BUSY = "busy"  # 503/429: up, but not admitting now
    UNREACHABLE = "unreachable"  # no answer: down, or the path to it
    CONFIG = "config"  # our own configuration cannot produce a token: stop probing


@dataclass(frozen=True)
class ProbeAnswered(Event):
    verdict: ProbeVerdict


class RemoteAction(enum.Enum):
    """What an operator may ask of a kiosk from afar (RPC `kiosk.<value>`)."""

    IDENTIFY = "identify"  # a distinctive pattern on the status and quality LEDs for N s
    MUTE = "mute"
    CAMERA_OFF = "camera-off"
    REJOIN = "rejoin"  # leave and join afresh (new token, new Room)
    RESTART = "restart"  # leave and exit cleanly; systemd starts the daemon again
    LEAVE = "leave"  # leave and stay out until a person presses leave
    UNMUTE = "unmute"  # refused unless remote.allow_unmute (privacy: a person turns it on)
    CAMERA_ON = "camera-on"  # refused likewise


@dataclass(frozen=True)
class RemoteActionRequested(Event):
    """An operator's request; `caller` is the identity the server stamped on it."""

    action: RemoteAction
    caller: str
    seconds: float = 0.0


@dataclass(frozen=True)
class TickElapsed(Event):
    pass


@dataclass(frozen=True)
class StopRequested(Event):
    reason: str = "signal"


EVENT_TYPES: tuple[type[Event], ...] = (
    ButtonPressed, TrackStateChanged, LocalTrackMuted, MuteApplied, ConnectionQualityChanged,
    ConnectRequested, RoomConnected, ConnectFailed, RoomReconnecting, RoomReconnected,
    RoomDisconnected, ParticipantJoined, ParticipantLeft, TokenRefreshed, NetworkChanged,
    MediaProgressSampled, RetryTimerFired, ProbeAnswered, RemoteActionRequested, TickElapsed,
    StopRequested,
)
