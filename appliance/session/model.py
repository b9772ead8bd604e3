"""Session vocabulary: states, events (noun + past verb), effects and the observed State."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any


class RoomState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTING = "disconnecting"


# A room object exists (or is being built) in these; a Connect is never issued from them.
ACTIVE_ROOM_STATES = frozenset(
    {RoomState.CONNECTING, RoomState.CONNECTED, RoomState.RECONNECTING, RoomState.DISCONNECTING}
)
# Signalling is (or was just) up: participants and quality updates mean something.
JOINED_ROOM_STATES = frozenset({RoomState.CONNECTED, RoomState.RECONNECTING})


class Intent(enum.Enum):
    IN_ROOM = "in-room"
    LEFT = "left"  # a person pressed leave: no reconnect until they press it again


class Fault(enum.Enum):
    NONE = "none"
    NO_NETWORK = "no network"
    SERVER_UNREACHABLE = "server unreachable"
    AUTH_REJECTED = "auth rejected"
    DEVICE_FAULT = "device fault"
    CONFIG_FAULT = "config fault"


# Faults about reaching the room; DEVICE_FAULT is derived from the track states instead.
CONNECTION_FAULTS = frozenset(
    {Fault.NO_NETWORK, Fault.SERVER_UNREACHABLE, Fault.AUTH_REJECTED, Fault.CONFIG_FAULT}
)


class Quality(enum.Enum):
    UNKNOWN = "unknown"
    EXCELLENT = "excellent"
    GOOD = "good"
    POOR = "poor"
    LOST = "lost"


class TrackKind(enum.Enum):
    CAMERA = "camera"
    MICROPHONE = "microphone"


class TrackState(enum.Enum):
    UNINITIALIZED = "uninitialized"
    ACQUIRING = "acquiring"
    ACQUIRED = "acquired"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    STOPPING = "stopping"
    STOPPED = "stopped"
    LOST = "lost"  # the device vanished; the media layer re-acquires it by itself


# A local track object exists and can be (re)published.
PUBLISHABLE_TRACK_STATES = frozenset({TrackState.ACQUIRED})
# Published to the room (or on its way): a room loss sends these back to ACQUIRED.
ON_AIR_TRACK_STATES = frozenset({TrackState.PUBLISHING, TrackState.PUBLISHED})


class ButtonName(enum.Enum):
    MUTE = "mute"
    LEAVE = "leave"


# ---------------------------------------------------------------------------------------------
# Events: every one carries `at`, monotonic seconds, so the machine never reads a clock.


@dataclass(frozen=True)
class Event:
    at: float


@dataclass(frozen=True)
class ButtonPressed(Event):
    button: ButtonName
    long: bool = False


@dataclass(frozen=True)
class TrackStateChanged(Event):
    kind: TrackKind
    state: TrackState
    reason: str = ""


@dataclass(frozen=True)
class LocalTrackMuted(Event):
    """The SDK reports our own publication muted/unmuted (our echo or a server request)."""

    kind: TrackKind
    muted: bool


@dataclass(frozen=True)
class MuteRequestedByServer(Event):
    kind: TrackKind
    muted: bool


@dataclass(frozen=True)
class ConnectionQualityChanged(Event):
    quality: Quality


@dataclass(frozen=True)
class DegradationChanged(Event):
    rung: int
    label: str


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
    auth: bool = False  # 401/403 from the server or the token endpoint: the slow lane
    fault: Fault = Fault.SERVER_UNREACHABLE


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
class MediaStalled(Event):
    kind: TrackKind
    seconds: float  # how long outbound bytes stood still


@dataclass(frozen=True)
class RetryScheduled(Event):
    """The runner armed the retry timer (it applies the jitter): `due` is when it fires."""

    due: float


@dataclass(frozen=True)
class RetryTimerFired(Event):
    pass


@dataclass(frozen=True)
class TickElapsed(Event):
    pass


@dataclass(frozen=True)
class StopRequested(Event):
    reason: str = "signal"


EVENT_TYPES: tuple[type[Event], ...] = (
    ButtonPressed, TrackStateChanged, LocalTrackMuted, MuteRequestedByServer,
    ConnectionQualityChanged, DegradationChanged, ConnectRequested, RoomConnected, ConnectFailed,
    RoomReconnecting, RoomReconnected, RoomDisconnected, ParticipantJoined, ParticipantLeft,
    TokenRefreshed, NetworkChanged, MediaStalled, RetryScheduled, RetryTimerFired, TickElapsed,
    StopRequested,
)


# ---------------------------------------------------------------------------------------------
# Effects: what the runner must do. STATUS and LEDs are not effects: they are derived from State.


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
    """Arm the retry timer; the runner turns (attempt, auth) into a jittered delay."""

    attempt: int
    auth: bool = False


@dataclass(frozen=True)
class CancelRetry(Effect):
    pass


@dataclass(frozen=True)
class PublishTracks(Effect):
    """Publish every ACQUIRED local track the media layer has (camera unless privacy)."""

    camera: bool = True


@dataclass(frozen=True)
class SetMicrophoneMuted(Effect):
    muted: bool


@dataclass(frozen=True)
class SetCameraEnabled(Effect):
    """False: camera privacy: unpublish the camera track and stop the camera."""

    enabled: bool


@dataclass(frozen=True)
class Shutdown(Effect):
    """The room is left (or never was): release devices and end the runner."""


# ---------------------------------------------------------------------------------------------
# State: what the SDK, the server and the devices CONFIRMED, plus the kiosk's wishes.


@dataclass(frozen=True)
class State:
    identity: str = ""
    room_name: str = ""
    room: RoomState = RoomState.DISCONNECTED
    intent: Intent = Intent.IN_ROOM
    fault: Fault = Fault.NONE  # derived after every transition: connection fault, else device
    link_fault: Fault = Fault.NONE  # why the last connect failed; cleared on connect
    quality: Quality = Quality.UNKNOWN
    remotes: frozenset[str] = frozenset()
    camera: TrackState = TrackState.UNINITIALIZED
    microphone: TrackState = TrackState.UNINITIALIZED
    mic_muted: bool = False  # as LiveKit reports it
    mic_mute_wanted: bool = False  # the button's wish, applied whenever the track is published
    mic_commanded_at: float | None = None  # last SetMicrophoneMuted, to spot stale SDK echoes
    camera_privacy: bool = False  # wanted: camera stopped and unpublished
    degradation_rung: int = 0
    degradation_label: str = ""
    attempt: int = 0  # consecutive failed joins; reset after `stable_after` in the room
    auth_lane: bool = False  # the last failure was an auth rejection: slow backoff
    retry_pending: bool = False  # a ScheduleRetry is armed and not yet fired or cancelled
    next_retry_at: float | None = None
    connected_at: float | None = None
    outside_since: float | None = None  # since when out of the room while intent is in-room
    network_up: bool = True
    stopping: bool = False
    stable_after: float = 60.0  # copied from config: the machine needs it for backoff reset
    last_disconnect_reason: str = ""
    extras: tuple[tuple[str, str], ...] = field(default=())  # room sid etc., for the snapshot

    def track(self, kind: TrackKind) -> TrackState:
        return self.camera if kind is TrackKind.CAMERA else self.microphone

    def with_track(self, kind: TrackKind, value: TrackState) -> State:
        if kind is TrackKind.CAMERA:
            return dataclasses.replace(self, camera=value)
        return dataclasses.replace(self, microphone=value)

    @property
    def in_room(self) -> bool:
        return self.room is RoomState.CONNECTED

    @property
    def alone(self) -> bool:
        return not self.remotes

    @property
    def video_live(self) -> bool:
        """Video frames are going out: camera published, not in privacy, room up."""
        return self.in_room and self.camera is TrackState.PUBLISHED and not self.camera_privacy

    @property
    def mic_live(self) -> bool:
        """Audio is going out: the mic is published and LiveKit says it is not muted."""
        return self.in_room and self.microphone is TrackState.PUBLISHED and not self.mic_muted

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready snapshot for the control socket and tests."""
        return {
            "identity": self.identity,
            "room_name": self.room_name,
            "room": self.room.value,
            "intent": self.intent.value,
            "fault": self.fault.value,
            "quality": self.quality.value,
            "remotes": sorted(self.remotes),
            "tracks": {"camera": self.camera.value, "microphone": self.microphone.value},
            "mic_muted": self.mic_muted,
            "mic_mute_wanted": self.mic_mute_wanted,
            "camera_privacy": self.camera_privacy,
            "video_live": self.video_live,
            "mic_live": self.mic_live,
            "degradation": {"rung": self.degradation_rung, "label": self.degradation_label},
            "attempt": self.attempt,
            "retry_pending": self.retry_pending,
            "next_retry_at": self.next_retry_at,
            "stopping": self.stopping,
            "last_disconnect_reason": self.last_disconnect_reason,
            "status": status_line(self),
        }


Snapshot = dict[str, Any]


def status_line(state: State, now: float | None = None) -> str:
    """One human line for systemd's STATUS= and `appliance status`; names the identity."""
    who = state.identity or "kiosk"
    if state.stopping:
        return f"{who}: stopping"
    if state.room is RoomState.CONNECTED:
        n = len(state.remotes)
        others = "alone" if n == 0 else f"with {n} other{'s' if n != 1 else ''}"
        mic = "mic live" if state.mic_live else (
            "mic muted" if state.mic_muted or state.mic_mute_wanted else
            f"mic {state.microphone.value}")
        cam = ("camera private" if state.camera_privacy else
               "camera live" if state.video_live else f"camera {state.camera.value}")
        line = (f"{who}: in room {state.room_name} {others}, quality {state.quality.value}, "
                f"{mic}, {cam}")
        if state.degradation_label:
            line += f", {state.degradation_label}"
        if state.fault is Fault.DEVICE_FAULT:
            line += ", device fault"
        return line
    if state.intent is Intent.LEFT and state.room is RoomState.DISCONNECTED:
        return f"{who}: left room {state.room_name} (press leave to rejoin)"
    if state.room is RoomState.RECONNECTING:
        return f"{who}: reconnecting to {state.room_name} (SDK resuming)"
    if state.room is RoomState.CONNECTING:
        return f"{who}: joining {state.room_name} (attempt {state.attempt + 1})"
    if state.room is RoomState.DISCONNECTING:
        return f"{who}: leaving {state.room_name}"
    why = state.fault.value if state.fault is not Fault.NONE else "not connected"
    if state.next_retry_at is not None:
        when = (f", next in {max(0.0, state.next_retry_at - now):.0f} s" if now is not None
                else "")
        return f"{who}: reconnecting (attempt {state.attempt}{when}): {why}"
    return f"{who}: disconnected: {why}"
