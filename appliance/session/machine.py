"""The pure session machine: transition(state, event) -> (state, effects), table-driven.

The machine is the only writer of the session's state: the room, each track, the degradation
rung, camera privacy, mute wishes and observed mutes, the stall watch and the retry schedule.
Handlers for retries and probes (`retries`), tracks and mutes (`mutes`) and operators' requests
(`remote_actions`) live beside it, with the moves they share (`steps`); all are pure functions,
reached only through the table and `transition` here.
"""

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
    ConnectFailed,
    ConnectionQualityChanged,
    ConnectRequested,
    Effect,
    Event,
    Fault,
    Intent,
    JoinFailure,
    LocalTrackMuted,
    MediaProgressSampled,
    MuteApplied,
    NetworkChanged,
    ParticipantJoined,
    ParticipantLeft,
    ProbeAnswered,
    PublishTracks,
    Quality,
    RemoteActionRequested,
    RetryTimerFired,
    RoomConnected,
    RoomDisconnected,
    RoomReconnected,
    RoomReconnecting,
    RoomState,
    ScheduleRetry,
    SetCameraEnabled,
    SetTrackMuted,
    SetVideoMode,
    Shutdown,
    State,
    StopRequested,
    TickElapsed,
    TokenRefreshed,
    TrackKind,
    TrackState,
    TrackStateChanged,
)
from appliance.session.mutes import (
    camera_mute_wanted,
    on_local_muted,
    on_mute_applied,
    on_track,
    reconcile_mutes,
)
from appliance.session.remote_actions import on_remote
from appliance.session.retries import (
    join_fault,
    on_network,
    on_probe_answered,
    on_retry_fired,
    retry_or_rest,
)
from appliance.session.steps import OK, C, D, R, Step, X, connect, leave, on_stop, replace
from appliance.session.truth import PROGRESS_GRACE, sending

Handler = Callable[[State, Any], Step]

# Room-state changes the machine may make. DISCONNECTING -> CONNECTING is the forced rejoin
# (leave long press, media stall): the old room is gone and the new join starts at once.
ALLOWED_EDGES = frozenset({
    (D, C), (C, OK), (C, D), (C, X), (OK, R), (R, OK), (OK, D), (R, D),
    (OK, X), (R, X), (X, D), (X, C),
})


def noop(state: State, event: Event) -> Step:
    return state, []


def _drop_room(state: State, reason: str) -> State:
    """The room object is gone: nothing is published, nobody is with us, no echo will come."""
    camera = TrackState.ACQUIRED if state.camera in ON_AIR_TRACK_STATES else state.camera
    mic = TrackState.ACQUIRED if state.microphone in ON_AIR_TRACK_STATES else state.microphone
    return replace(state, room=D, remotes=frozenset(), quality=Quality.UNKNOWN, camera=camera,
                   microphone=mic, connected_at=None, last_disconnect_reason=reason,
                   mic_muted=False, camera_muted=False, echoes=(), stall=state.stall.reset(),
                   stalled=frozenset(), room_sid="",
                   ladder=dataclasses.replace(state.ladder, quality=Quality.UNKNOWN))


# --- room lifecycle ---------------------------------------------------------------------------

def on_connect_requested(state: State, ev: ConnectRequested) -> Step:
    state = replace(state, intent=Intent.IN_ROOM)
    if state.stopping or state.room is not D:
        return state, []
    return connect(state)


def on_connected(state: State, ev: RoomConnected) -> Step:
    state = replace(state, room=OK, link_fault=Fault.NONE, connected_at=ev.at,
                    remotes=ev.remotes, auth_lane=False, quality=Quality.UNKNOWN,
                    room_sid=ev.room_sid, joined_since_start=True, probe_join=False,
                    probe_joins_failed=0)
    if state.stopping or state.intent is Intent.LEFT:
        return leave(state, "shutdown" if state.stopping else "leave button")
    return state, [PublishTracks(camera=not state.camera_privacy)]


def on_connect_failed(state: State, ev: ConnectFailed) -> Step:
    fault = join_fault(state, ev.cause)
    failed = state.probe_joins_failed + (1 if state.probe_join else 0)
    state = replace(_drop_room(state, ev.reason), link_fault=fault, attempt=state.attempt + 1,
                    probe_join=False, probe_joins_failed=failed)
    return retry_or_rest(state, ev.at, auth=ev.cause is JoinFailure.AUTH, probe=True)


# Why the server sent us away (LiveKit's DisconnectReason names) and what the kiosk does then.
REMOVED_BY_OPERATOR = "PARTICIPANT_REMOVED"  # stay out `removed_stay_out` s (or press leave)
DUPLICATE_IDENTITY = "DUPLICATE_IDENTITY"  # another participant took our identity: slow lane
# ROOM_DELETED and every other reason: rejoin after the normal backoff (a join recreates it).


def on_disconnected(state: State, ev: RoomDisconnected) -> Step:
    """The SDK gave up (or the server sent us away): retry while in-room, as the reason says."""
    stable = (state.connected_at is not None
              and ev.at - state.connected_at >= state.policy.stable_after)
    attempt = (0 if stable else state.attempt) + 1
    dropped = _drop_room(state, ev.reason or "disconnected")
    if ev.reason == REMOVED_BY_OPERATOR and not state.stopping and state.intent is Intent.IN_ROOM:
        due = ev.at + state.policy.removed_stay_out
        return replace(dropped, attempt=0, link_fault=Fault.REMOVED, retry_pending=True,
                       next_retry_at=due), [ScheduleRetry(due)]
    if ev.reason == DUPLICATE_IDENTITY:  # no probing: it would bring the ping-pong back
        return retry_or_rest(replace(dropped, attempt=attempt,
                                     link_fault=Fault.IDENTITY_CONFLICT), ev.at, auth=True)
    state = replace(dropped, attempt=attempt,
                    link_fault=join_fault(state, JoinFailure.UNREACHABLE))
    return retry_or_rest(state, ev.at, auth=False, probe=True)


def on_left(state: State, ev: RoomDisconnected | ConnectFailed) -> Step:
    """The disconnect we asked for completed (or the join we abandoned failed)."""
    state = _drop_room(state, getattr(ev, "reason", "") or "left")
    if state.stopping:
        return state, [Shutdown()]
    if state.intent is Intent.IN_ROOM:
        return connect(state, fresh=True)  # forced rejoin: a fresh token and a fresh Room
    return state, []


def on_reconnecting(state: State, ev: RoomReconnecting) -> Step:
    # The stall watch keeps its clock through a resume: an SDK that resumes into the same dead
    # media path must not earn the LEDs a fresh grace period.
    return replace(state, room=R), []


def on_reconnected(state: State, ev: RoomReconnected) -> Step:
    return reconcile_mutes(replace(state, room=OK))


# --- ticks and the media plane ---------------------------------------------------------------

def on_tick(state: State, ev: TickElapsed) -> Step:
    if (state.connected_at is not None and state.attempt
            and ev.at - state.connected_at >= state.policy.stable_after):
        state = replace(state, attempt=0, auth_lane=False)
    if state.identify_until is not None and ev.at >= state.identify_until:
        state = replace(state, identify_until=None)
    state, effects = _judge_media(state, ev.at)
    if effects:
        return state, effects
    return _move_ladder(state, state.ladder.tick(ev.at)[0])


def on_progress(state: State, ev: MediaProgressSampled) -> Step:
    """Outbound counters: a track that stops progressing is not live, later forces a rejoin."""
    samples = dict(ev.samples)
    watch = state.stall
    for kind in TrackKind:
        watch = watch.observe(kind, ev.at, samples.get(kind), sending(state, kind))
    return _judge_media(replace(state, stall=watch), ev.at)


def _judge_media(state: State, at: float) -> Step:
    """Which sending tracks have not progressed for PROGRESS_GRACE (not live), and whether one
    has been stuck for media_stall_timeout (rejoin). Judged on every sample and every tick, so
    stats that stop coming (a hung stats call) cannot keep an LED live."""
    stalled: set[TrackKind] = set()
    worst: tuple[float, TrackKind] | None = None
    for kind in TrackKind:
        seconds = state.stall.stalled_for(kind, at) if sending(state, kind) else 0.0
        if seconds >= PROGRESS_GRACE:
            stalled.add(kind)
        if seconds >= state.policy.media_stall_timeout and (worst is None or seconds > worst[0]):
            worst = (seconds, kind)
    if frozenset(stalled) != state.stalled:
        state = replace(state, stalled=frozenset(stalled))
    if worst is None or state.stopping or state.intent is Intent.LEFT or state.room is not OK:
        return state, []
    seconds, kind = worst
    state = replace(state, stall=state.stall.reset(),
                    last_disconnect_reason=f"{kind.value} media stalled")
    return leave(state, f"{kind.value} media stalled for {seconds:.0f} s with signalling up")


# --- participants, quality, the degradation ladder ----------------------------------------------

def on_joined(state: State, ev: ParticipantJoined) -> Step:
    return replace(state, remotes=state.remotes | {ev.identity}), []


def on_participant_left(state: State, ev: ParticipantLeft) -> Step:
    return replace(state, remotes=state.remotes - {ev.identity}), []


def on_quality(state: State, ev: ConnectionQualityChanged) -> Step:
    state = replace(state, quality=ev.quality)
    return _move_ladder(state, state.ladder.observe(ev.quality, ev.at)[0])


def _move_ladder(state: State, ladder: Any) -> Step:
    """Adopt the ladder's new value; a new rung switches the capture and the camera's mute."""
    if ladder == state.ladder:
        return state, []
    moved = ladder.index != state.ladder.index
    state = replace(state, ladder=ladder)
    if not moved:
        return state, []
    effects: list[Effect] = [SetVideoMode(ladder.rung.size)]
    state, more = reconcile_mutes(state)
    return state, effects + more


# --- buttons ----------------------------------------------------------------------------------

def on_button(state: State, ev: ButtonPressed) -> Step:
    if state.stopping:
        return state, []
    if ev.button is ButtonName.MUTE and not ev.long:
        # Always told to the media layer, published or not: a microphone opened later starts
        # muted and no captured audio is fed while the wish is "muted".
        wanted = not state.mic_mute_wanted
        return replace(state, mic_mute_wanted=wanted), [SetTrackMuted(TrackKind.MICROPHONE,
                                                                      wanted)]
    if ev.button is ButtonName.MUTE:
        if state.camera_remote_muted and not state.camera_privacy:
            # A person turns the camera back on after a server muted it: privacy stays off.
            state = replace(state, camera_remote_muted=False)
            return state, [SetTrackMuted(TrackKind.CAMERA, camera_mute_wanted(state))]
        privacy = not state.camera_privacy
        effects: list[Effect] = [SetCameraEnabled(not privacy)]
        if not privacy and state.room is OK:
            effects.append(PublishTracks(camera=True))
        return replace(state, camera_privacy=privacy, camera_remote_muted=False), effects
    if ev.long:  # leave long: forced fresh rejoin
        state = replace(state, intent=Intent.IN_ROOM, attempt=0, auth_lane=False)
        if state.room is D:
            return connect(state, fresh=True)
        if state.room is X:
            return state, []
        return leave(state, "forced rejoin (leave held)")
    if state.intent is Intent.IN_ROOM and state.room is D and state.link_fault is Fault.REMOVED:
        # Removed by an operator: a person at the kiosk may bring it back at once.
        return connect(replace(state, attempt=0, auth_lane=False), fresh=True)
    if state.intent is Intent.IN_ROOM:
        state = replace(state, intent=Intent.LEFT)
        if state.room is D:
            return replace(state, retry_pending=False, next_retry_at=None, attempt=0,
                           probe_pending=False), [CancelRetry()]
        if state.room is X:
            return state, []
        return leave(state, "leave button")
    state = replace(state, intent=Intent.IN_ROOM, attempt=0, auth_lane=False,
                    left_remotely_by="")
    return connect(state) if state.room is D else (state, [])


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
    MediaProgressSampled:    {D: noop,      C: noop,  OK: on_progress,    R: noop,        X: noop},
    RetryTimerFired:         {D: on_retry_fired, C: noop, OK: noop,       R: noop,        X: noop},
    ProbeAnswered:           {D: on_probe_answered, C: noop, OK: noop,    R: noop,        X: noop},
    TickElapsed:             _every(on_tick),
    StopRequested:           _every(on_stop),
    ButtonPressed:           _every(on_button),
    TrackStateChanged:       _every(on_track),
    LocalTrackMuted:         _every(on_local_muted),
    MuteApplied:             _every(on_mute_applied),
    RemoteActionRequested:   _every(on_remote),
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
    # A track starts owing proof of progress the moment it should be sending, and stops when
    # it should not (mute, pause, unpublish, room down): timing from there, by construction.
    watch = state.stall
    for kind in TrackKind:
        watched = watch.watching(kind)
        if sending(state, kind) and not watched:
            watch = watch.arm(kind, at)
        elif watched and not sending(state, kind) and state.room is not R:
            watch = watch.reset(kind)
    if fault is state.fault and outside == state.outside_since and watch is state.stall:
        return state
    return replace(state, fault=fault, outside_since=outside, stall=watch)


def transition(state: State, event: Event) -> Step:
    """Apply one event. Unexpected pairs return the state unchanged and no effects."""
    row = TABLE.get(type(event))
    handler = None if row is None else row.get(state.room)
    if handler is None:
        return state, []
    new, effects = handler(state, event)
    return _derive(new, event.at), effects
