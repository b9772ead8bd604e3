"""The session's state: room, intent, fault and track enums, the observed `State`, status line."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from appliance.config import ReconnectConfig
from appliance.session.degradation import Ladder, Quality, build_rungs
from appliance.session.stall import StallWatch


class RoomState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTING = "disconnecting"


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
    IDENTITY_CONFLICT = "identity in use by another participant"
    REMOVED = "removed by an operator"


# Faults about reaching the room; DEVICE_FAULT is derived from the track states instead.
CONNECTION_FAULTS = frozenset(
    {Fault.NO_NETWORK, Fault.SERVER_UNREACHABLE, Fault.AUTH_REJECTED, Fault.CONFIG_FAULT,
     Fault.IDENTITY_CONFLICT, Fault.REMOVED}
)


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


# Published to the room (or on its way): a room loss sends these back to ACQUIRED.
ON_AIR_TRACK_STATES = frozenset({TrackState.PUBLISHING, TrackState.PUBLISHED})


# State: what the SDK, the server and the devices CONFIRMED, plus the kiosk's wishes. The machine
# is its only writer; indicators, STATUS=, the control socket and tests only read it.
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
    mic_muted: bool = False  # observed: LiveKit's flag on the published microphone
    camera_muted: bool = False  # observed: LiveKit's flag on the published camera
    mic_mute_wanted: bool = False  # the person's wish (or a server mute we honoured)
    camera_privacy: bool = False  # a person's hold: camera stopped and unpublished
    camera_remote_muted: bool = False  # a server muted our camera; a person's hold undoes it
    # Our own mute commands whose SDK echo is still due, oldest first: a report that matches the
    # head is ours; any other report came from the server. Cleared when a publication goes.
    echoes: tuple[tuple[TrackKind, bool], ...] = ()
    remote_unmutes_refused: int = 0
    ladder: Ladder = field(default_factory=lambda: Ladder(build_rungs(1280, 720)))
    stall: StallWatch = field(default_factory=StallWatch)
    stalled: frozenset[TrackKind] = frozenset()  # published, unmuted, but media not progressing
    attempt: int = 0  # consecutive failed joins; reset after `stable_after` in the room
    auth_lane: bool = False  # the last failure was an auth rejection: slow backoff
    retry_pending: bool = False  # a ScheduleRetry is armed and not yet fired or cancelled
    next_retry_at: float | None = None
    probe_pending: bool = False  # a ScheduleProbe is armed, or its probe is under way
    probes: int = 0  # probes sent (a jitter input)
    probe_join: bool = False  # the join under way was started by a probe's OK
    probe_joins_failed: int = 0  # such joins that failed since the last success: spread more
    connected_at: float | None = None
    outside_since: float | None = None  # since when out of the room while intent is in-room
    network_up: bool = True
    stopping: bool = False
    policy: ReconnectConfig = field(default_factory=ReconnectConfig)
    allow_remote_unmute: bool = False  # remote.allow_unmute (per-device file only)
    identify_until: float | None = None  # an operator's identify request shows until then
    left_remotely_by: str = ""  # the operator whose `leave` holds the kiosk out
    last_remote: str = ""  # the last remote request and its outcome, for the status
    crashes: int = 0  # unclean exits of the daemon since boot (appliance.crashes)
    joined_since_start: bool = False  # this process has been in the room at least once
    last_disconnect_reason: str = ""
    room_sid: str = ""

    def track(self, kind: TrackKind) -> TrackState:
        return self.camera if kind is TrackKind.CAMERA else self.microphone

    def with_track(self, kind: TrackKind, value: TrackState) -> State:
        if kind is TrackKind.CAMERA:
            return dataclasses.replace(self, camera=value)
        return dataclasses.replace(self, microphone=value)

    def muted(self, kind: TrackKind) -> bool:
        return self.camera_muted if kind is TrackKind.CAMERA else self.mic_muted

    @property
    def in_room(self) -> bool:
        return self.room is RoomState.CONNECTED

    @property
    def alone(self) -> bool:
        return not self.remotes

    @property
    def degradation_rung(self) -> int:
        return self.ladder.index

    @property
    def degradation_label(self) -> str:
        return "" if self.ladder.index == 0 else self.ladder.rung.label

    @property
    def video_live(self) -> bool:
        """The camera LED's truth (see appliance.session.truth)."""
        from appliance.session.truth import on_air

        return on_air(self, TrackKind.CAMERA)

    @property
    def mic_live(self) -> bool:
        """The mute LED's truth, inverted (see appliance.session.truth)."""
        from appliance.session.truth import on_air

        return on_air(self, TrackKind.MICROPHONE)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready snapshot for the control socket and tests."""
        return {
            "identity": self.identity,
            "room_name": self.room_name,
            "room": self.room.value,
            "room_sid": self.room_sid,
            "intent": self.intent.value,
            "fault": self.fault.value,
            "quality": self.quality.value,
            "remotes": sorted(self.remotes),
            "tracks": {"camera": self.camera.value, "microphone": self.microphone.value},
            "mic_muted": self.mic_muted,
            "mic_mute_wanted": self.mic_mute_wanted,
            "camera_muted": self.camera_muted,
            "camera_privacy": self.camera_privacy,
            "camera_remote_muted": self.camera_remote_muted,
            "remote_unmutes_refused": self.remote_unmutes_refused,
            "video_live": self.video_live,
            "mic_live": self.mic_live,
            "stalled": sorted(k.value for k in self.stalled),
            "degradation": {"rung": self.degradation_rung, "label": self.degradation_label},
            "attempt": self.attempt,
            "retry_pending": self.retry_pending,
            "next_retry_at": self.next_retry_at,
            "stopping": self.stopping,
            "last_disconnect_reason": self.last_disconnect_reason,
            "crashes_since_boot": self.crashes,
            "identify": self.identify_until is not None,
            "left_remotely_by": self.left_remotely_by,
            "last_remote": self.last_remote,
            "status": status_line(self),
        }


def initial_state(identity: str, room_name: str, policy: ReconnectConfig, *,
                  camera_size: tuple[int, int] = (1280, 720),
                  ladder_timing: tuple[float, float] = (10.0, 30.0), crashes: int = 0,
                  allow_remote_unmute: bool = False) -> State:
    """The state a session starts in, with the configured policies filled in."""
    from appliance.session.degradation import LadderPolicy

    down, up = ladder_timing
    return State(identity=identity, room_name=room_name, policy=policy, crashes=crashes,
                 allow_remote_unmute=allow_remote_unmute,
                 ladder=Ladder(build_rungs(*camera_size), LadderPolicy(down, up)))


def _media_words(state: State) -> tuple[str, str]:
    """How the status line names the microphone and the camera (observed, like the LEDs)."""
    if state.mic_live:
        mic = "mic live"
    elif TrackKind.MICROPHONE in state.stalled:
        mic = "mic stalled"
    elif state.microphone is TrackState.PUBLISHED and not (state.mic_muted
                                                           or state.mic_mute_wanted):
        mic = "mic starting"  # sending, not yet seen flowing
    elif state.mic_muted or state.mic_mute_wanted:
        mic = "mic muted"
    else:
        mic = f"mic {state.microphone.value}"
    if state.camera_privacy:
        cam = "camera private"
    elif state.video_live:
        cam = "camera live"
    elif TrackKind.CAMERA in state.stalled:
        cam = "camera stalled"
    elif state.camera_remote_muted:
        cam = "camera muted by the server"
    elif state.camera_muted or state.ladder.rung.size is None:
        cam = "camera paused"
    else:
        cam = f"camera {state.camera.value}"
    return mic, cam


def status_line(state: State, now: float | None = None) -> str:
    """One human line for systemd's STATUS= and `appliance status`; names the identity."""
    line = _status(state, now)
    if state.crashes:
        line += f" [{state.crashes} crash{'es' if state.crashes != 1 else ''} since boot]"
    return line


def _status(state: State, now: float | None) -> str:
    who = state.identity or "kiosk"
    if state.stopping:
        return f"{who}: stopping"
    if state.room is RoomState.CONNECTED:
        n = len(state.remotes)
        others = "alone" if n == 0 else f"with {n} other{'s' if n != 1 else ''}"
        mic, cam = _media_words(state)
        line = (f"{who}: in room {state.room_name} {others}, quality {state.quality.value}, "
                f"{mic}, {cam}")
        if state.degradation_label:
            line += f", {state.degradation_label}"
        if state.fault is Fault.DEVICE_FAULT:
            line += ", device fault"
        return line
    if state.intent is Intent.LEFT and state.room is RoomState.DISCONNECTED:
        by = f" (asked by {state.left_remotely_by})" if state.left_remotely_by else ""
        return f"{who}: left room {state.room_name}{by} (press leave to rejoin)"
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
