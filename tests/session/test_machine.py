"""The pure machine: every (room state x event) pair, button semantics, mute rules, retries."""

from __future__ import annotations

import dataclasses

import pytest

from appliance.session import machine
from appliance.session.machine import ALLOWED_EDGES, TABLE, transition
from appliance.session.model import (
    EVENT_TYPES,
    ButtonName,
    ButtonPressed,
    CancelRetry,
    Connect,
    ConnectFailed,
    ConnectionQualityChanged,
    ConnectRequested,
    DegradationChanged,
    Disconnect,
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
    status_line,
)

D, C, OK, R, X = (RoomState.DISCONNECTED, RoomState.CONNECTING, RoomState.CONNECTED,
                  RoomState.RECONNECTING, RoomState.DISCONNECTING)
T = 100.0


def in_state(room: RoomState, **changes: object) -> State:
    """A plausible State for each room state (tracks published while the room is up)."""
    base = State(identity="kiosk-1", room_name="lobby", room=room,
                 camera=TrackState.ACQUIRED, microphone=TrackState.ACQUIRED)
    if room in (OK, R):
        base = dataclasses.replace(base, camera=TrackState.PUBLISHED,
                                   microphone=TrackState.PUBLISHED, connected_at=T - 10,
                                   remotes=frozenset({"op"}))
    if room is D:
        base = dataclasses.replace(base, retry_pending=True, attempt=2)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


SAMPLES: dict[type[Event], Event] = {
    ButtonPressed: ButtonPressed(T, ButtonName.MUTE),
    TrackStateChanged: TrackStateChanged(T, TrackKind.CAMERA, TrackState.LOST, "unplugged"),
    LocalTrackMuted: LocalTrackMuted(T, TrackKind.MICROPHONE, True),
    MuteRequestedByServer: MuteRequestedByServer(T, TrackKind.MICROPHONE, True),
    ConnectionQualityChanged: ConnectionQualityChanged(T, Quality.POOR),
    DegradationChanged: DegradationChanged(T, 2, "360p"),
    ConnectRequested: ConnectRequested(T),
    RoomConnected: RoomConnected(T, frozenset({"op"})),
    ConnectFailed: ConnectFailed(T, "503"),
    RoomReconnecting: RoomReconnecting(T),
    RoomReconnected: RoomReconnected(T),
    RoomDisconnected: RoomDisconnected(T, "SIGNAL_CLOSE"),
    ParticipantJoined: ParticipantJoined(T, "guest"),
    ParticipantLeft: ParticipantLeft(T, "op"),
    TokenRefreshed: TokenRefreshed(T),
    NetworkChanged: NetworkChanged(T, up=True),
    MediaStalled: MediaStalled(T, TrackKind.MICROPHONE, 12.0),
    RetryScheduled: RetryScheduled(T, due=T + 3),
    RetryTimerFired: RetryTimerFired(T),
    TickElapsed: TickElapsed(T),
    StopRequested: StopRequested(T),
}

# (event, state) -> (room after, effect types in order). Only the room-shaping events are
# listed; the rest keep the room state (checked below for every pair).
EXPECTED: dict[tuple[type[Event], RoomState], tuple[RoomState, tuple[type, ...]]] = {
    (ConnectRequested, D): (C, (CancelRetry, Connect)),
    (RoomConnected, C): (OK, (PublishTracks,)),
    (ConnectFailed, C): (D, (ScheduleRetry,)),
    (ConnectFailed, X): (C, (CancelRetry, Connect)),
    (RoomReconnecting, OK): (R, ()),
    (RoomReconnected, R): (OK, ()),
    (RoomDisconnected, C): (D, (ScheduleRetry,)),
    (RoomDisconnected, OK): (D, (ScheduleRetry,)),
    (RoomDisconnected, R): (D, (ScheduleRetry,)),
    (RoomDisconnected, X): (C, (CancelRetry, Connect)),
    (RoomDisconnected, D): (D, ()),
    (NetworkChanged, D): (C, (CancelRetry, Connect)),
    (MediaStalled, OK): (X, (CancelRetry, Disconnect)),
    (RetryTimerFired, D): (C, (CancelRetry, Connect)),
    (StopRequested, D): (D, (CancelRetry, Shutdown)),
    (StopRequested, C): (X, (CancelRetry, Disconnect)),
    (StopRequested, OK): (X, (CancelRetry, Disconnect)),
    (StopRequested, R): (X, (CancelRetry, Disconnect)),
    (StopRequested, X): (X, ()),
}
UNEXPECTED = {(RoomConnected, D), (RoomConnected, OK), (RoomConnected, R), (ConnectFailed, D),
              (ConnectFailed, OK), (ConnectFailed, R), (RoomReconnecting, D),
              (RoomReconnected, D), (RoomReconnected, C)}


def test_samples_cover_every_event_type() -> None:
    assert set(SAMPLES) == set(EVENT_TYPES) == set(TABLE)


@pytest.mark.parametrize("room", list(RoomState), ids=lambda r: r.value)
@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda e: e.__name__)
def test_every_pair_is_defined(room: RoomState, event_type: type[Event]) -> None:
    assert room in TABLE[event_type], "every (state, event) pair needs an entry"
    state, event = in_state(room), SAMPLES[event_type]
    new, effects = transition(state, event)
    if (event_type, room) in UNEXPECTED:
        assert not machine.expected(state, event)
        assert (new, effects) == (state, [])
        return
    assert machine.expected(state, event)
    assert new.room is room or (room, new.room) in ALLOWED_EDGES
    want_room, want_effects = EXPECTED.get((event_type, room), (room, None))
    assert new.room is want_room
    if want_effects is not None:
        assert tuple(type(e) for e in effects) == want_effects


def test_boot_join_publish_and_alone_vs_with_others() -> None:
    s, fx = transition(State(identity="k", room_name="lobby"), ConnectRequested(0.0))
    assert s.room is C and fx == [CancelRetry(), Connect(0)]
    s, fx = transition(s, RoomConnected(1.0, frozenset()))
    assert s.room is OK and s.alone and fx == [PublishTracks(camera=True)]
    s, _ = transition(s, ParticipantJoined(2.0, "op"))
    assert not s.alone and s.outside_since is None
    s, _ = transition(s, ParticipantLeft(3.0, "op"))
    assert s.alone


def test_failures_back_off_and_auth_goes_to_slow_lane() -> None:
    s, _ = transition(State(), ConnectRequested(0.0))
    s, fx = transition(s, ConnectFailed(1.0, "503"))
    assert fx == [ScheduleRetry(1, auth=False)] and s.fault is Fault.SERVER_UNREACHABLE
    s, fx = transition(s, RetryTimerFired(2.0))
    assert fx == [CancelRetry(), Connect(1)]
    s, fx = transition(s, ConnectFailed(3.0, "401", auth=True))
    assert fx == [ScheduleRetry(2, auth=True)] and s.fault is Fault.AUTH_REJECTED
    s, fx = transition(s, RetryTimerFired(4.0))
    assert fx == [CancelRetry(), Connect(2, fresh_token=True)]  # a rejected token is not reused
    s, _ = transition(s, RoomConnected(5.0))
    assert s.fault is Fault.NONE and s.attempt == 2
    s, _ = transition(s, TickElapsed(5.0 + s.stable_after))
    assert s.attempt == 0  # a stable minute resets the backoff


def test_disconnect_after_a_stable_period_restarts_the_backoff() -> None:
    s = in_state(OK, attempt=5, connected_at=0.0)
    s, fx = transition(s, RoomDisconnected(61.0, "SERVER_SHUTDOWN"))
    assert fx == [ScheduleRetry(1)]
    s = in_state(OK, attempt=5, connected_at=50.0)
    s, fx = transition(s, RoomDisconnected(61.0, "SERVER_SHUTDOWN"))
    assert fx == [ScheduleRetry(6)]


def test_stale_retry_timer_is_ignored_after_cancel() -> None:
    s = in_state(D, retry_pending=False)
    new, fx = transition(s, RetryTimerFired(T))
    assert new.room is D and fx == []


def test_network_up_retries_at_once_but_only_when_waiting() -> None:
    s, fx = transition(in_state(D, network_up=False), NetworkChanged(T, up=True))
    assert s.room is C and Connect(2) in fx
    s, fx = transition(in_state(D, network_up=True), NetworkChanged(T, up=False))
    assert s.fault is Fault.NO_NETWORK and fx == []


def test_mute_button_short_toggles_wanted_and_long_toggles_privacy() -> None:
    s, fx = transition(in_state(OK), ButtonPressed(T, ButtonName.MUTE))
    assert s.mic_mute_wanted and fx == [SetMicrophoneMuted(True)]
    s, fx = transition(s, ButtonPressed(T + 1, ButtonName.MUTE))
    assert not s.mic_mute_wanted and fx == [SetMicrophoneMuted(False)]
    s, fx = transition(s, ButtonPressed(T + 2, ButtonName.MUTE, long=True))
    assert s.camera_privacy and fx == [SetCameraEnabled(False)] and not s.video_live
    s, fx = transition(s, ButtonPressed(T + 3, ButtonName.MUTE, long=True))
    assert not s.camera_privacy and fx == [SetCameraEnabled(True), PublishTracks(camera=True)]


def test_mute_pressed_while_reconnecting_applies_when_published_again() -> None:
    s, fx = transition(in_state(D), ButtonPressed(T, ButtonName.MUTE))
    assert s.mic_mute_wanted and not s.mic_muted
    s, _ = transition(dataclasses.replace(s, room=C), RoomConnected(T + 5))
    s, fx = transition(s, TrackStateChanged(T + 6, TrackKind.MICROPHONE, TrackState.PUBLISHED))
    assert fx == [SetMicrophoneMuted(True)]


def test_server_mute_is_honoured_and_remote_unmute_refused() -> None:
    s, fx = transition(in_state(OK), MuteRequestedByServer(T, TrackKind.MICROPHONE, True))
    assert s.mic_mute_wanted and s.mic_muted and fx == []
    s, fx = transition(s, LocalTrackMuted(T + 5, TrackKind.MICROPHONE, False))
    assert s.mic_mute_wanted and fx == [SetMicrophoneMuted(True)]
    s, fx = transition(s, LocalTrackMuted(T + 5.01, TrackKind.MICROPHONE, True))
    assert s.mic_muted and fx == []


def test_own_stale_mute_echo_is_not_taken_for_a_server_mute() -> None:
    s, _ = transition(in_state(OK), ButtonPressed(T, ButtonName.MUTE))
    s, _ = transition(s, ButtonPressed(T + 0.2, ButtonName.MUTE))  # quick double press
    s, fx = transition(s, LocalTrackMuted(T + 0.25, TrackKind.MICROPHONE, True))
    assert not s.mic_mute_wanted and fx == []


def test_leave_short_and_long() -> None:
    s, fx = transition(in_state(OK), ButtonPressed(T, ButtonName.LEAVE))
    assert s.intent is Intent.LEFT and s.room is X and Disconnect("leave button") in fx
    s, fx = transition(s, RoomDisconnected(T + 1, "CLIENT_INITIATED", client_initiated=True))
    assert s.room is D and fx == [] and not s.retry_pending
    assert "left room" in status_line(s)
    s, fx = transition(s, NetworkChanged(T + 2, up=True))
    assert fx == []  # intent left: nothing reconnects
    s, fx = transition(s, ButtonPressed(T + 3, ButtonName.LEAVE))
    assert s.intent is Intent.IN_ROOM and s.room is C and Connect(0) in fx
    s, fx = transition(in_state(OK), ButtonPressed(T, ButtonName.LEAVE, long=True))
    assert s.room is X and s.intent is Intent.IN_ROOM
    s, fx = transition(s, RoomDisconnected(T + 1, "CLIENT_INITIATED", client_initiated=True))
    assert s.room is C and Connect(0, fresh_token=True) in fx


def test_stop_while_connecting_leaves_then_shuts_down() -> None:
    s, fx = transition(in_state(C), StopRequested(T))
    assert s.stopping and s.room is X
    s, fx = transition(s, ConnectFailed(T + 1, "cancelled"))
    assert fx == [Shutdown()] and s.room is D
    s, fx = transition(s, ButtonPressed(T + 2, ButtonName.LEAVE))
    assert fx == []


def test_stall_forces_rejoin_only_when_live() -> None:
    s, _ = transition(in_state(OK), MediaStalled(T, TrackKind.MICROPHONE, 11))
    assert s.room is X and s.last_disconnect_reason == "microphone media stalled"
    muted = in_state(OK, mic_muted=True, mic_mute_wanted=True)
    assert transition(muted, MediaStalled(T, TrackKind.MICROPHONE, 11))[1] == []


def test_room_loss_unpublishes_and_device_loss_is_a_fault() -> None:
    s, _ = transition(in_state(OK), RoomDisconnected(T, "SIGNAL_CLOSE"))
    assert s.camera is TrackState.ACQUIRED and s.microphone is TrackState.ACQUIRED
    s, _ = transition(in_state(OK), TrackStateChanged(T, TrackKind.CAMERA, TrackState.LOST))
    assert s.fault is Fault.DEVICE_FAULT and s.mic_live
    s, fx = transition(s, TrackStateChanged(T + 1, TrackKind.CAMERA, TrackState.ACQUIRED))
    assert fx == [PublishTracks(camera=True)] and s.fault is Fault.NONE


def test_publish_that_lands_after_the_room_died_is_not_on_air() -> None:
    s = in_state(D)
    new, _ = transition(s, TrackStateChanged(T, TrackKind.CAMERA, TrackState.PUBLISHED))
    assert new.camera is TrackState.ACQUIRED


def test_publish_failure_forces_a_rejoin() -> None:
    s = in_state(OK, camera=TrackState.PUBLISHING)
    s, fx = transition(s, TrackStateChanged(T, TrackKind.CAMERA, TrackState.ACQUIRED, "boom"))
    assert s.room is X and any(isinstance(e, Disconnect) for e in fx)


def test_status_lines() -> None:
    s = in_state(OK, quality=Quality.GOOD, remotes=frozenset({"a", "b"}))
    assert status_line(s) == ("kiosk-1: in room lobby with 2 others, quality good, mic live, "
                              "camera live")
    s = in_state(D, next_retry_at=T + 12, link_fault=Fault.SERVER_UNREACHABLE)
    s = machine._derive(s, T)
    assert status_line(s, T) == ("kiosk-1: reconnecting (attempt 2, next in 12 s): "
                                 "server unreachable")
    assert s.as_dict()["status"].startswith("kiosk-1: reconnecting")
