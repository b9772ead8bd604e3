"""The pure session machine: transition(state, event) -> (state, effects), table-driven."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from appliance.session.model import (
    CONNECTION_FAULTS,
    JOINED_ROOM_STATES,
    ON_AIR_TRACK_STATES,
    ButtonName,
    ButtonPressed,
    CancelRetry,
    Connect,
    ConnectFailed,
    ConnectionQualityChanged,
    ConnectRequested,
    DegradationChanged,
    Disconnect,
    Effect,
    Event,
    Fault,
    Intent,
    LocalTrackMuted,
    MediaStalled,
    MuteRequestedByServer,
    NetworkChanged,
    ParticipantJoined,
    ParticipantLeft,
    PublishTracks,
    Quality,
    RetryScheduled,
    RetryTimerFired,
    RoomConnected,
    RoomDisconnected,
    RoomReconnected,
    RoomReconnecting,
    RoomState,
    ScheduleRetry,
    SetCameraEnabled,
    SetMicrophoneMuted,
    Shutdown,
    State,
    StopRequested,
    TickElapsed,
    TokenRefreshed,
    TrackKind,
    TrackState,
    TrackStateChanged,
)

Step = tuple[State, list[Effect]]
Handler = Callable[[State, Any], Step]

D, C, OK, R, X = (RoomState.DISCONNECTED, RoomState.CONNECTING, RoomState.CONNECTED,
                  RoomState.RECONNECTING, RoomState.DISCONNECTING)

# SDK mute echoes of our own commands arrive within milliseconds; a contrary report inside this
# window is a stale echo (e.g. a quick double press), not the server's wish.
MUTE_ECHO_WINDOW = 0.5

# Room-state changes the machine may make. DISCONNECTING -> CONNECTING is the forced rejoin
# (leave long press, media stall): the old room is gone and the new join starts at once.
ALLOWED_EDGES = frozenset({
    (D, C), (C, OK), (C, D), (C, X), (OK, R), (R, OK), (OK, D), (R, D),
    (OK, X), (R, X), (X, D), (X, C),
})


def _replace(state: State, **changes: Any) -> State:
    return dataclasses.replace(state, **changes)


def noop(state: State, event: Event) -> Step:
    return state, []


def _connect(state: State, *, fresh: bool = False) -> Step:
    state = _replace(state, room=C, retry_pending=False, next_retry_at=None)
    return state, [CancelRetry(), Connect(state.attempt, fresh_token=fresh or state.auth_lane)]


def _drop_room(state: State, reason: str) -> State:
    """The room object is gone: nothing is published, nobody is with us."""
    camera = TrackState.ACQUIRED if state.camera in ON_AIR_TRACK_STATES else state.camera
    mic = TrackState.ACQUIRED if state.microphone in ON_AIR_TRACK_STATES else state.microphone
    return _replace(state, room=D, remotes=frozenset(), quality=Quality.UNKNOWN, camera=camera,
                    microphone=mic, connected_at=None, last_disconnect_reason=reason)


def _leave(state: State, reason: str) -> Step:
    """Ask the adapter to leave whatever room exists or is being joined."""
    return _replace(state, room=X, retry_pending=False, next_retry_at=None), [
        CancelRetry(), Disconnect(reason)]


# --- room lifecycle ---------------------------------------------------------------------------

def on_connect_requested(state: State, ev: ConnectRequested) -> Step:
    state = _replace(state, intent=Intent.IN_ROOM)
    if state.stopping or state.room is not D:
        return state, []
    return _connect(state)


def on_connected(state: State, ev: RoomConnected) -> Step:
    state = _replace(state, room=OK, link_fault=Fault.NONE, connected_at=ev.at,
                     remotes=ev.remotes, auth_lane=False, quality=Quality.UNKNOWN,
                     extras=(("room_sid", ev.room_sid),) if ev.room_sid else ())
    if state.stopping or state.intent is Intent.LEFT:
        return _leave(state, "shutdown" if state.stopping else "leave button")
    return state, [PublishTracks(camera=not state.camera_privacy)]


def _retry_or_rest(state: State, *, auth: bool) -> Step:
    if state.stopping:
        return state, [Shutdown()]
    if state.intent is Intent.LEFT:
        return state, []
    return _replace(state, retry_pending=True, auth_lane=auth), [
        ScheduleRetry(state.attempt, auth=auth)]


def on_connect_failed(state: State, ev: ConnectFailed) -> Step:
    fault = Fault.AUTH_REJECTED if ev.auth else ev.fault
    state = _replace(_drop_room(state, ev.reason), link_fault=fault, attempt=state.attempt + 1)
    return _retry_or_rest(state, auth=ev.auth)


def on_disconnected(state: State, ev: RoomDisconnected) -> Step:
    """The SDK gave up (or the server sent us away): retry with backoff while in-room."""
    stable = (state.connected_at is not None
              and ev.at - state.connected_at >= state.stable_after)
    attempt = (0 if stable else state.attempt) + 1
    state = _replace(_drop_room(state, ev.reason or "disconnected"), attempt=attempt,
                     link_fault=Fault.SERVER_UNREACHABLE)
    return _retry_or_rest(state, auth=False)


def on_left(state: State, ev: RoomDisconnected | ConnectFailed) -> Step:
    """The disconnect we asked for completed (or the join we abandoned failed)."""
    state = _drop_room(state, getattr(ev, "reason", "") or "left")
    if state.stopping:
        return state, [Shutdown()]
    if state.intent is Intent.IN_ROOM:
        return _connect(state, fresh=True)  # forced rejoin: a fresh token and a fresh Room
    return state, []


def on_reconnecting(state: State, ev: RoomReconnecting) -> Step:
    return _replace(state, room=R), []


def on_reconnected(state: State, ev: RoomReconnected) -> Step:
    effects: list[Effect] = []
    if state.microphone is TrackState.PUBLISHED and state.mic_muted != state.mic_mute_wanted:
        effects.append(SetMicrophoneMuted(state.mic_mute_wanted))
    return _replace(state, room=OK), effects


def on_stop(state: State, ev: StopRequested) -> Step:
    if state.stopping:
        return state, []
    state = _replace(state, stopping=True)
    if state.room is D:
        return _replace(state, retry_pending=False, next_retry_at=None), [
            CancelRetry(), Shutdown()]
    if state.room is X:
        return state, []
    return _leave(state, "shutdown")


# --- timers and the network -------------------------------------------------------------------

def on_retry_scheduled(state: State, ev: RetryScheduled) -> Step:
    return (_replace(state, next_retry_at=ev.due), []) if state.retry_pending else (state, [])


def on_retry_fired(state: State, ev: RetryTimerFired) -> Step:
    if not state.retry_pending or state.stopping or state.intent is Intent.LEFT:
        return state, []  # a timer that lost a race with a cancel
    return _connect(state)


def on_network(state: State, ev: NetworkChanged) -> Step:
    state = _replace(state, network_up=ev.up)
    if ev.up and state.room is D and state.retry_pending and not state.stopping:
        return _connect(state)  # a link or route appeared: retry now, not after the backoff
    return state, []


def on_tick(state: State, ev: TickElapsed) -> Step:
    if (state.connected_at is not None and state.attempt
            and ev.at - state.connected_at >= state.stable_after):
        return _replace(state, attempt=0, auth_lane=False), []
    return state, []


def on_media_stalled(state: State, ev: MediaStalled) -> Step:
    live = (state.mic_live if ev.kind is TrackKind.MICROPHONE else state.video_live)
    if state.stopping or state.intent is Intent.LEFT or not live:
        return state, []
    state = _replace(state, last_disconnect_reason=f"{ev.kind.value} media stalled")
    return _leave(state, f"{ev.kind.value} media stalled for {ev.seconds:.0f} s")


# --- participants, quality, tracks ------------------------------------------------------------

def on_joined(state: State, ev: ParticipantJoined) -> Step:
    return _replace(state, remotes=state.remotes | {ev.identity}), []


def on_participant_left(state: State, ev: ParticipantLeft) -> Step:
    return _replace(state, remotes=state.remotes - {ev.identity}), []


def on_quality(state: State, ev: ConnectionQualityChanged) -> Step:
    return _replace(state, quality=ev.quality), []


def on_degradation(state: State, ev: DegradationChanged) -> Step:
    return _replace(state, degradation_rung=ev.rung, degradation_label=ev.label), []


def on_track(state: State, ev: TrackStateChanged) -> Step:
    if ev.state in ON_AIR_TRACK_STATES and state.room not in JOINED_ROOM_STATES:
        return state, []  # a publish that finished after its room died: not on air
    before = state.track(ev.kind)
    state = state.with_track(ev.kind, ev.state)
    effects: list[Effect] = []
    if (ev.state is TrackState.ACQUIRED and before is TrackState.PUBLISHING and state.room is OK
            and not state.stopping and state.intent is Intent.IN_ROOM):
        # The publish failed while the room is up: a fresh join beats a kiosk nobody sees.
        return _leave(_replace(state, last_disconnect_reason="publish failed"),
                      f"{ev.kind.value} publish failed: {ev.reason}")
    if ev.state is TrackState.PUBLISHED:
        if ev.kind is TrackKind.MICROPHONE and state.mic_muted != state.mic_mute_wanted:
            state = _replace(state, mic_commanded_at=ev.at)
            effects.append(SetMicrophoneMuted(state.mic_mute_wanted))
        if ev.kind is TrackKind.CAMERA and state.camera_privacy:
            effects.append(SetCameraEnabled(False))
    elif (ev.state is TrackState.ACQUIRED and before not in ON_AIR_TRACK_STATES
          and state.room is OK and not state.stopping
          and (ev.kind is TrackKind.MICROPHONE or not state.camera_privacy)):
        effects.append(PublishTracks(camera=not state.camera_privacy))  # device came (back)
    return state, effects


def _observed_mute(state: State, kind: TrackKind, muted: bool, at: float, echo: bool) -> Step:
    if kind is TrackKind.CAMERA:
        if muted and not state.camera_privacy:  # honour a server mute as privacy
            return _replace(state, camera_privacy=True), [SetCameraEnabled(False)]
        return state, []  # we never unmute a camera someone else muted
    state = _replace(state, mic_muted=muted)
    if muted == state.mic_mute_wanted:
        return state, []
    last = state.mic_commanded_at
    if echo and last is not None and at - last < MUTE_ECHO_WINDOW:
        return state, []  # our own earlier command echoing back
    if muted:
        return _replace(state, mic_mute_wanted=True), []  # honour the server's mute
    # Only a person at the kiosk may unmute it: refuse a remote unmute.
    return _replace(state, mic_commanded_at=at), [SetMicrophoneMuted(True)]


def on_local_muted(state: State, ev: LocalTrackMuted) -> Step:
    return _observed_mute(state, ev.kind, ev.muted, ev.at, echo=True)


def on_server_mute(state: State, ev: MuteRequestedByServer) -> Step:
    return _observed_mute(state, ev.kind, ev.muted, ev.at, echo=False)


# --- buttons ----------------------------------------------------------------------------------

def on_button(state: State, ev: ButtonPressed) -> Step:
    if state.stopping:
        return state, []
    if ev.button is ButtonName.MUTE and not ev.long:
        wanted = not state.mic_mute_wanted
        return _replace(state, mic_mute_wanted=wanted, mic_commanded_at=ev.at), [
            SetMicrophoneMuted(wanted)]
    if ev.button is ButtonName.MUTE:
        privacy = not state.camera_privacy
        effects: list[Effect] = [SetCameraEnabled(not privacy)]
        if not privacy and state.room is OK:
            effects.append(PublishTracks(camera=True))
        return _replace(state, camera_privacy=privacy), effects
    if ev.long:  # leave long: forced fresh rejoin
        state = _replace(state, intent=Intent.IN_ROOM, attempt=0, auth_lane=False)
        if state.room is D:
            return _connect(state, fresh=True)
        if state.room is X:
            return state, []
        return _leave(state, "forced rejoin (leave held)")
    if state.intent is Intent.IN_ROOM:
        state = _replace(state, intent=Intent.LEFT)
        if state.room is D:
            return _replace(state, retry_pending=False, next_retry_at=None, attempt=0), [
                CancelRetry()]
        if state.room is X:
            return state, []
        return _leave(state, "leave button")
    state = _replace(state, intent=Intent.IN_ROOM, attempt=0, auth_lane=False)
    return _connect(state) if state.room is D else (state, [])


# --- the table --------------------------------------------------------------------------------

def _every(handler: Handler) -> dict[RoomState, Handler | None]:
    return dict.fromkeys(RoomState, handler)


# None marks a pair that should not happen: the runner logs it and keeps the state as it was.
TABLE: Mapping[type[Event], Mapping[RoomState, Handler | None]] = {
    #                        DISCONNECTED   CONNECTING     CONNECTED     RECONNECTING  DISCONNECTING
    ConnectRequested:        _every(on_connect_requested),
    RoomConnected:           {D: None,      C: on_connected, OK: None,   R: None,      X: noop},
    ConnectFailed:           {D: None,      C: on_connect_failed, OK: None, R: None,   X: on_left},
    RoomReconnecting:        {D: None,      C: noop,       OK: on_reconnecting, R: noop, X: noop},
    RoomReconnected:         {D: None,      C: None,       OK: noop,  R: on_reconnected, X: noop},
    RoomDisconnected:        {D: noop,      C: on_disconnected, OK: on_disconnected,
                              R: on_disconnected,                                      X: on_left},
    ParticipantJoined:       {D: noop,      C: on_joined,  OK: on_joined,  R: on_joined,  X: noop},
    ParticipantLeft:         {D: noop, C: on_participant_left, OK: on_participant_left,
                              R: on_participant_left,                                  X: noop},
    ConnectionQualityChanged: {D: noop,     C: on_quality, OK: on_quality, R: on_quality, X: noop},
    TokenRefreshed:          _every(noop),  # the adapter hands the token to the token source
    NetworkChanged:          _every(on_network),
    MediaStalled:            {D: noop,      C: noop,  OK: on_media_stalled, R: noop,      X: noop},
    RetryScheduled:          {D: on_retry_scheduled, C: noop, OK: noop,   R: noop,        X: noop},
    RetryTimerFired:         {D: on_retry_fired, C: noop, OK: noop,       R: noop,        X: noop},
    TickElapsed:             _every(on_tick),
    StopRequested:           _every(on_stop),
    ButtonPressed:           _every(on_button),
    TrackStateChanged:       _every(on_track),
    LocalTrackMuted:         _every(on_local_muted),
    MuteRequestedByServer:   _every(on_server_mute),
    DegradationChanged:      _every(on_degradation),
}


def expected(state: State, event: Event) -> bool:
    """False when (state, event) is a pair the table marks as should-not-happen."""
    row = TABLE.get(type(event))
    return row is not None and row.get(state.room) is not None


def _derive(state: State, at: float) -> State:
    """Recompute what is derived from the rest: the overall fault and time outside the room."""
    lost = TrackState.LOST in (state.camera, state.microphone)
    if state.room in JOINED_ROOM_STATES:
        fault = Fault.DEVICE_FAULT if lost else Fault.NONE
    elif not state.network_up:
        fault = Fault.NO_NETWORK
    elif state.link_fault in CONNECTION_FAULTS:
        fault = state.link_fault
    else:
        fault = Fault.DEVICE_FAULT if lost else Fault.NONE
    outside = state.outside_since
    if state.room is OK or state.intent is Intent.LEFT or state.stopping:
        outside = None
    elif outside is None:
        outside = at
    if fault is state.fault and outside == state.outside_since:
        return state
    return _replace(state, fault=fault, outside_since=outside)


def transition(state: State, event: Event) -> Step:
    """Apply one event. Unexpected pairs return the state unchanged and no effects."""
    row = TABLE.get(type(event))
    handler = None if row is None else row.get(state.room)
    if handler is None:
        return state, []
    new, effects = handler(state, event)
    return _derive(new, event.at), effects
