"""The pure machine: every (room state x event) pair, button semantics, mute rules, retries."""

from __future__ import annotations

import dataclasses
import statistics

import pytest

from appliance.config import ReconnectConfig
from appliance.indicators import shown_quality
from appliance.session import machine, remote_actions, retries
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
    Disconnect,
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
    ProbeVerdict,
    Progress,
    PublishTracks,
    Quality,
    RemoteAction,
    RemoteActionRequested,
    RetryTimerFired,
    RoomConnected,
    RoomDisconnected,
    RoomReconnected,
    RoomReconnecting,
    RoomState,
    ScheduleProbe,
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
    status_line,
)
from appliance.session.stall import StallWatch
from appliance.session.truth import PROGRESS_GRACE

D, C, OK, R, X = (RoomState.DISCONNECTED, RoomState.CONNECTING, RoomState.CONNECTED,
                  RoomState.RECONNECTING, RoomState.DISCONNECTING)
T = 100.0


def flowing(at: float) -> StallWatch:
    """Both tracks proven flowing, last growth at `at`."""
    watch = StallWatch()
    for kind in TrackKind:
        watch = watch.arm(kind, at - 2).observe(kind, at - 1, Progress(1, 1), True)
        watch = watch.observe(kind, at, Progress(2, 2), True)
    return watch


def in_state(room: RoomState, **changes: object) -> State:
    """A plausible State for each room state (tracks published while the room is up)."""
    base = State(identity="kiosk-1", room_name="lobby", room=room,
                 camera=TrackState.ACQUIRED, microphone=TrackState.ACQUIRED)
    if room in (OK, R):
        base = dataclasses.replace(base, camera=TrackState.PUBLISHED,
                                   microphone=TrackState.PUBLISHED, connected_at=T - 10,
                                   remotes=frozenset({"op"}), stall=flowing(T - 0.5))
    if room is D:
        base = dataclasses.replace(base, retry_pending=True, attempt=2)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


SAMPLES: dict[type[Event], Event] = {
    ButtonPressed: ButtonPressed(T, ButtonName.MUTE),
    TrackStateChanged: TrackStateChanged(T, TrackKind.CAMERA, TrackState.LOST, "unplugged"),
    LocalTrackMuted: LocalTrackMuted(T, TrackKind.MICROPHONE, True),
    MuteApplied: MuteApplied(T, TrackKind.MICROPHONE, True, changed=True),
    ConnectionQualityChanged: ConnectionQualityChanged(T, Quality.POOR),
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
    MediaProgressSampled: MediaProgressSampled(T, ((TrackKind.MICROPHONE, Progress(10, 1)),)),
    RetryTimerFired: RetryTimerFired(T),
    ProbeAnswered: ProbeAnswered(T, ProbeVerdict.OK),
    RemoteActionRequested: RemoteActionRequested(T, RemoteAction.IDENTIFY, "operator-1", 5),
    TickElapsed: TickElapsed(T),
    StopRequested: StopRequested(T),
}

# (event, state) -> (room after, effect types in order). Only the room-shaping events are
# listed; the rest keep the room state (checked below for every pair).
EXPECTED: dict[tuple[type[Event], RoomState], tuple[RoomState, tuple[type, ...]]] = {
    (ConnectRequested, D): (C, (CancelRetry, Connect)),
    (RoomConnected, C): (OK, (PublishTracks,)),
    (ConnectFailed, C): (D, (ScheduleRetry, ScheduleProbe)),
    (ConnectFailed, X): (C, (CancelRetry, Connect)),
    (RoomReconnecting, OK): (R, ()),
    (RoomReconnected, R): (OK, ()),
    (RoomDisconnected, C): (D, (ScheduleRetry, ScheduleProbe)),
    (RoomDisconnected, OK): (D, (ScheduleRetry, ScheduleProbe)),
    (RoomDisconnected, R): (D, (ScheduleRetry, ScheduleProbe)),
    (RoomDisconnected, X): (C, (CancelRetry, Connect)),
    (RoomDisconnected, D): (D, ()),
    (NetworkChanged, D): (C, (CancelRetry, Connect)),
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
    s, _ = transition(State(policy=ReconnectConfig(probe_interval=0)), ConnectRequested(0.0))
    s, fx = transition(s, ConnectFailed(1.0, "503"))
    assert s.fault is Fault.SERVER_UNREACHABLE and s.retry_pending and not s.probe_pending
    assert fx == [ScheduleRetry(s.next_retry_at)]  # type: ignore[arg-type]
    assert s.next_retry_at is not None and 1.0 < s.next_retry_at <= 1.0 + s.policy.backoff_initial
    s, fx = transition(s, RetryTimerFired(2.0))
    assert fx == [CancelRetry(), Connect(1)]
    s, fx = transition(s, ConnectFailed(3.0, "401", JoinFailure.AUTH))
    assert s.fault is Fault.AUTH_REJECTED and s.auth_lane
    assert s.next_retry_at is not None and s.next_retry_at <= 3.0 + s.policy.auth_backoff_max
    s, fx = transition(s, RetryTimerFired(4.0))
    assert fx == [CancelRetry(), Connect(2, fresh_token=True)]  # a rejected token is not reused
    s, _ = transition(s, RoomConnected(5.0))
    assert s.fault is Fault.NONE and s.attempt == 2
    s, _ = transition(s, TickElapsed(5.0 + s.policy.stable_after))
    assert s.attempt == 0  # a stable minute resets the backoff


def test_join_failure_causes_map_to_faults() -> None:
    start, _ = transition(State(), ConnectRequested(0.0))
    assert transition(start, ConnectFailed(1.0, "x", JoinFailure.CONFIG))[0].fault is (
        Fault.CONFIG_FAULT)
    offline = dataclasses.replace(start, network_up=False)
    assert transition(offline, ConnectFailed(1.0, "x"))[0].fault is Fault.NO_NETWORK
    assert transition(start, ConnectFailed(1.0, "x", JoinFailure.CRASHED))[0].fault is (
        Fault.SERVER_UNREACHABLE)


def test_retry_jitter_is_pure_and_spreads_a_fleet() -> None:
    assert retries.jitter("k", 3, 1.5) == retries.jitter("k", 3, 1.5)
    draws = {retries.jitter(f"kiosk-{i}", 1, 10.0) for i in range(200)}
    assert len(draws) == 200 and all(0.0 <= d < 1.0 for d in draws)
    assert min(draws) < 0.1 and max(draws) > 0.9


def test_disconnect_after_a_stable_period_restarts_the_backoff() -> None:
    s = in_state(OK, attempt=5, connected_at=0.0)
    s, _ = transition(s, RoomDisconnected(61.0, "SERVER_SHUTDOWN"))
    assert s.attempt == 1
    s = in_state(OK, attempt=5, connected_at=50.0)
    s, _ = transition(s, RoomDisconnected(61.0, "SERVER_SHUTDOWN"))
    assert s.attempt == 6


def test_stale_retry_timer_is_ignored_after_cancel() -> None:
    s = in_state(D, retry_pending=False)
    new, fx = transition(s, RetryTimerFired(T))
    assert new.room is D and fx == []


def test_network_up_retries_at_once_but_only_when_waiting() -> None:
    s, fx = transition(in_state(D, network_up=False), NetworkChanged(T, up=True))
    assert s.room is C and Connect(2) in fx
    s, fx = transition(in_state(D, network_up=True), NetworkChanged(T, up=False))
    assert s.fault is Fault.NO_NETWORK and fx == []


MIC, CAM = TrackKind.MICROPHONE, TrackKind.CAMERA


def test_mute_button_short_toggles_wanted_and_long_toggles_privacy() -> None:
    s, fx = transition(in_state(OK), ButtonPressed(T, ButtonName.MUTE))
    assert s.mic_mute_wanted and fx == [SetTrackMuted(MIC, True)]
    assert s.mic_live  # a wish is not a fact: live until LiveKit reports the mute
    s, _ = transition(s, MuteApplied(T, MIC, True, changed=True))
    s, _ = transition(s, LocalTrackMuted(T, MIC, True))
    assert s.mic_muted and s.echoes == () and not s.mic_live
    s, fx = transition(s, ButtonPressed(T + 1, ButtonName.MUTE))
    assert not s.mic_mute_wanted and fx == [SetTrackMuted(MIC, False)]
    s, fx = transition(s, ButtonPressed(T + 2, ButtonName.MUTE, long=True))
    assert s.camera_privacy and fx == [SetCameraEnabled(False)] and not s.video_live
    s, fx = transition(s, ButtonPressed(T + 3, ButtonName.MUTE, long=True))
    assert not s.camera_privacy and fx == [SetCameraEnabled(True), PublishTracks(camera=True)]


def test_mute_led_truth_follows_the_sdk_not_the_wish() -> None:
    s, _ = transition(in_state(OK), ButtonPressed(T, ButtonName.MUTE))
    s, _ = transition(s, ButtonPressed(T + 0.1, ButtonName.MUTE))
    assert not s.mic_mute_wanted and s.mic_live  # never muted in LiveKit yet: still live


def test_mute_pressed_while_reconnecting_applies_when_published_again() -> None:
    s, fx = transition(in_state(D), ButtonPressed(T, ButtonName.MUTE))
    assert s.mic_mute_wanted and not s.mic_muted and fx == [SetTrackMuted(MIC, True)]
    s, _ = transition(dataclasses.replace(s, room=C), RoomConnected(T + 5))
    s, fx = transition(s, TrackStateChanged(T + 6, MIC, TrackState.PUBLISHED, muted=False))
    assert fx == [SetTrackMuted(MIC, True)] and not s.mic_live  # not proven flowing yet
    s, fx = transition(s, TrackStateChanged(T + 6, MIC, TrackState.PUBLISHED, muted=True))
    assert fx == [] and s.mic_muted


def test_server_mute_is_honoured_and_remote_unmute_refused() -> None:
    s, fx = transition(in_state(OK), LocalTrackMuted(T, MIC, True))  # nothing of ours pending
    assert s.mic_mute_wanted and s.mic_muted and fx == [SetTrackMuted(MIC, True)]
    s, fx = transition(s, LocalTrackMuted(T + 5, MIC, False))
    assert s.mic_mute_wanted and fx == [SetTrackMuted(MIC, True)]
    assert s.remote_unmutes_refused == 1 and s.mic_mute_wanted
    s, fx = transition(s, MuteApplied(T + 5, MIC, True, changed=True))
    s, fx = transition(s, LocalTrackMuted(T + 5.01, MIC, True))
    assert s.mic_muted and fx == [] and s.echoes == ()


def test_own_echoes_are_recognised_by_construction_not_by_time() -> None:
    s, _ = transition(in_state(OK), ButtonPressed(T, ButtonName.MUTE))
    s, _ = transition(s, MuteApplied(T, MIC, True, changed=True))
    s, _ = transition(s, ButtonPressed(T + 0.2, ButtonName.MUTE))  # quick double press
    s, _ = transition(s, MuteApplied(T + 0.2, MIC, False, changed=True))
    # The echoes arrive late (seconds, not milliseconds): still ours, in order.
    s, fx = transition(s, LocalTrackMuted(T + 9, MIC, True))
    assert not s.mic_mute_wanted and fx == [] and s.mic_muted
    s, fx = transition(s, LocalTrackMuted(T + 9.5, MIC, False))
    assert not s.mic_mute_wanted and fx == [] and not s.mic_muted and s.echoes == ()


def test_poor_quality_pauses_the_camera_without_touching_privacy() -> None:
    s = in_state(OK)
    s, _ = transition(s, ConnectionQualityChanged(T, Quality.POOR))
    rungs = len(s.ladder.rungs)
    now, effects = T, []
    for step in range(rungs * 20):
        now += 1.0
        flowing = tuple((k, Progress(1000 * (step + 1), step + 1)) for k in TrackKind)
        s, fx = transition(s, MediaProgressSampled(now, flowing))  # media keeps flowing
        effects += fx
        s, fx = transition(s, TickElapsed(now))
        effects += fx
        if s.ladder.rung.size is None:
            break
    assert s.ladder.rung.size is None and SetVideoMode(None) in effects
    assert SetTrackMuted(CAM, True) in effects and not s.video_live
    s, _ = transition(s, MuteApplied(now, CAM, True, changed=True))
    s, fx = transition(s, LocalTrackMuted(now, CAM, True))  # the SDK's echo of our mute
    assert fx == [] and not s.camera_privacy and not s.camera_remote_muted
    s, _ = transition(s, ConnectionQualityChanged(now, Quality.GOOD))
    later = now + s.ladder.policy.up_after
    s, _ = transition(s, MediaProgressSampled(later, ((MIC, Progress(10**6, 10**3)),)))
    s, fx = transition(s, TickElapsed(later))
    assert s.ladder.rung.size is not None
    assert fx == [SetVideoMode(s.ladder.rung.size), SetTrackMuted(CAM, False)]
    s, _ = transition(s, MuteApplied(now, CAM, False, changed=True))
    s, _ = transition(s, LocalTrackMuted(now, CAM, False))
    assert not s.video_live  # unmuted, not yet seen flowing
    for i in (1, 2):
        samples = ((CAM, Progress(10**7 * i, 10**4 * i)), (MIC, Progress(10**8 * i, 10**5 * i)))
        s, _ = transition(s, MediaProgressSampled(now + i, samples))
    assert s.video_live and not s.camera_privacy


def test_server_camera_mute_is_not_privacy_and_a_hold_undoes_it() -> None:
    s, fx = transition(in_state(OK), LocalTrackMuted(T, CAM, True))
    assert s.camera_remote_muted and not s.camera_privacy and not s.video_live
    s, fx = transition(s, LocalTrackMuted(T + 1, CAM, False))  # a remote unmute: refused
    assert fx == [SetTrackMuted(CAM, True)] and s.remote_unmutes_refused == 1
    s, fx = transition(s, ButtonPressed(T + 2, ButtonName.MUTE, long=True))
    assert not s.camera_remote_muted and not s.camera_privacy
    assert fx == [SetTrackMuted(CAM, False)]


def test_camera_published_muted_at_the_audio_only_rung_is_not_live() -> None:
    s = in_state(OK, camera=TrackState.ACQUIRED)
    s = dataclasses.replace(s, ladder=dataclasses.replace(s.ladder,
                                                          index=len(s.ladder.rungs) - 1))
    s, fx = transition(s, TrackStateChanged(T, CAM, TrackState.PUBLISHED, muted=False))
    assert fx == [SetTrackMuted(CAM, True)] and not s.video_live


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


def _samples(at: float, mic: int, acked: int = 0) -> MediaProgressSampled:
    """The microphone's counters as given; the camera's growing all along."""
    camera = Progress(int(at * 1000), int(at * 10))
    return MediaProgressSampled(at, ((MIC, Progress(mic, acked)), (CAM, camera)))


def test_stalled_media_is_not_live_and_later_forces_a_rejoin() -> None:
    s = in_state(OK)
    s, _ = transition(s, _samples(T, 100, 1))
    s, _ = transition(s, _samples(T + 1, 200, 2))
    assert s.mic_live
    s, fx = transition(s, _samples(T + 1 + PROGRESS_GRACE, 200, 2))
    assert not s.mic_live and fx == [] and s.room is OK
    assert MIC in s.stalled and "mic stalled" in status_line(s)
    s, fx = transition(s, _samples(T + 1 + s.policy.media_stall_timeout, 200, 2))
    assert s.room is X and s.last_disconnect_reason == "microphone media stalled"
    assert Disconnect in [type(e) for e in fx]


def _both(at: float, count: int) -> MediaProgressSampled:
    """Both tracks' counters (sent and acknowledged) at `count`."""
    return MediaProgressSampled(at, ((MIC, Progress(count, count)), (CAM, Progress(count, count))))


def test_a_media_black_hole_shows_lost_quality_before_the_rejoin() -> None:
    """Everything sent stops getting through: the quality LED says LOST at PROGRESS_GRACE,
    though the server's last report said EXCELLENT, and goes back when media flows again."""
    s = in_state(OK, quality=Quality.EXCELLENT)
    s, _ = transition(s, _both(T, 100))
    s, _ = transition(s, _both(T + 1, 200))
    assert shown_quality(s) is Quality.EXCELLENT
    assert s.policy.media_stall_timeout > PROGRESS_GRACE + 1  # a window before the rejoin
    s, fx = transition(s, _both(T + 1 + PROGRESS_GRACE, 200))
    assert s.room is OK and fx == [] and s.stalled == frozenset(TrackKind)
    assert shown_quality(s) is Quality.LOST and s.quality is Quality.EXCELLENT
    s, _ = transition(s, _both(T + 2 + PROGRESS_GRACE, 300))
    assert not s.stalled and shown_quality(s) is Quality.EXCELLENT


def test_stall_watch_ignores_muted_tracks() -> None:
    s = in_state(OK, mic_muted=True, mic_mute_wanted=True)
    for t in range(30):
        s, fx = transition(s, _samples(T + t, 100, 1))
        assert fx == [] and MIC not in s.stalled


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


def test_mic_not_live_while_reconnecting() -> None:
    s, _ = transition(in_state(OK), RoomReconnecting(T))
    assert s.room is R and not s.mic_live and not s.video_live


def test_status_lines() -> None:
    s = in_state(OK, quality=Quality.GOOD, remotes=frozenset({"a", "b"}))
    assert status_line(s) == ("kiosk-1: in room lobby with 2 others, quality good, mic live, "
                              "camera live")
    s = in_state(D, next_retry_at=T + 12, link_fault=Fault.SERVER_UNREACHABLE)
    s = machine._derive(s, T)
    assert status_line(s, T) == ("kiosk-1: reconnecting (attempt 2, next in 12 s): "
                                 "server unreachable")
    assert s.as_dict()["status"].startswith("kiosk-1: reconnecting")


def test_a_duplicate_identity_is_a_distinct_fault_in_the_slow_lane() -> None:
    s, fx = transition(in_state(OK, attempt=0), RoomDisconnected(T, "DUPLICATE_IDENTITY"))
    assert s.fault is Fault.IDENTITY_CONFLICT and s.auth_lane and s.retry_pending
    # the slow lane starts where the normal one tops out: no ping-pong at backoff_initial pace
    assert s.next_retry_at is not None and s.next_retry_at - T <= s.policy.auth_backoff_max
    assert "identity in use" in status_line(s, T)
    s, fx = transition(s, ButtonPressed(T + 1, ButtonName.LEAVE))  # a technician stops it
    assert s.intent is Intent.LEFT and fx == [CancelRetry()]


def test_removed_by_an_operator_stays_out_then_returns_or_on_a_press() -> None:
    s, fx = transition(in_state(OK), RoomDisconnected(T, "PARTICIPANT_REMOVED"))
    assert s.fault is Fault.REMOVED and s.room is D
    assert fx == [ScheduleRetry(T + s.policy.removed_stay_out)]
    later, fx = transition(s, RetryTimerFired(T + s.policy.removed_stay_out))
    assert later.room is C and Connect(0, fresh_token=True) in fx  # never the old token
    now, fx = transition(s, ButtonPressed(T + 5, ButtonName.LEAVE))
    assert now.room is C and Connect(0, fresh_token=True) in fx


def test_a_deleted_room_is_rejoined_as_after_any_drop() -> None:
    s, fx = transition(in_state(OK, attempt=0), RoomDisconnected(T, "ROOM_DELETED"))
    assert s.fault is Fault.SERVER_UNREACHABLE and not s.auth_lane and s.probe_pending
    assert [type(e) for e in fx] == [ScheduleRetry, ScheduleProbe]


def test_while_probing_blind_retries_are_only_a_slow_safety_net() -> None:
    s, fx = transition(in_state(OK, attempt=0), RoomDisconnected(T, "SIGNAL_CLOSE"))
    probe = fx[1]
    assert isinstance(probe, ScheduleProbe) and T < probe.due <= T + 1.6 * 1.25
    assert s.next_retry_at is not None and s.next_retry_at - T <= s.policy.auth_backoff_max
    draws = [transition(in_state(OK, identity=f"k{i}", attempt=0),
                        RoomDisconnected(T, "SIGNAL_CLOSE"))[0].next_retry_at for i in range(200)]
    assert statistics.median([d - T for d in draws if d is not None]) > s.policy.backoff_max


def _out_and_probing() -> State:
    s, _ = transition(in_state(OK, attempt=0), RoomDisconnected(T, "SIGNAL_CLOSE"))
    assert s.probe_pending and s.retry_pending
    return s


def test_a_probe_that_says_yes_joins_at_once() -> None:
    s, fx = transition(_out_and_probing(), ProbeAnswered(T + 1, ProbeVerdict.OK))
    assert s.room is C and s.probe_join and fx == [CancelRetry(), Connect(1)]


def test_probes_continue_while_the_server_is_down_and_name_the_fault() -> None:
    s = _out_and_probing()
    s, fx = transition(s, ProbeAnswered(T + 1, ProbeVerdict.UNREACHABLE))
    assert s.probe_pending and [type(e) for e in fx] == [ScheduleProbe]
    s, fx = transition(s, ProbeAnswered(T + 2, ProbeVerdict.AUTH))
    assert s.fault is Fault.AUTH_REJECTED and [type(e) for e in fx] == [ScheduleProbe]
    s, fx = transition(s, ProbeAnswered(T + 3, ProbeVerdict.CONFIG))
    assert s.fault is Fault.CONFIG_FAULT and not s.probe_pending and fx == []


def test_joins_a_yes_let_through_that_fail_are_spread_like_a_backoff() -> None:
    s, _ = transition(_out_and_probing(), ProbeAnswered(T + 1, ProbeVerdict.OK))
    s, _ = transition(s, ConnectFailed(T + 1.3, "503 busy"))
    assert s.probe_joins_failed == 1 and s.probe_pending
    s, fx = transition(s, ProbeAnswered(T + 2, ProbeVerdict.OK))
    assert s.room is D and not s.probe_pending  # no join at once: the retry was brought forward
    assert all(isinstance(e, ScheduleRetry) for e in fx)
    s, _ = transition(s, RetryTimerFired(T + 3))
    s, _ = transition(s, RoomConnected(T + 3.3))
    assert s.probe_joins_failed == 0


def test_a_stale_probe_answer_is_ignored() -> None:
    s, _ = transition(_out_and_probing(), RetryTimerFired(T + 1))  # the retry won the race
    assert s.room is C and not s.probe_pending
    new, fx = transition(s, ProbeAnswered(T + 1.1, ProbeVerdict.OK))
    assert (new, fx) == (s, [])


def test_no_probing_after_a_duplicate_identity_or_a_removal() -> None:
    for reason in ("DUPLICATE_IDENTITY", "PARTICIPANT_REMOVED"):
        s, fx = transition(in_state(OK), RoomDisconnected(T, reason))
        assert not s.probe_pending and not any(isinstance(e, ScheduleProbe) for e in fx)



def _remote(action: RemoteAction, at: float = T, seconds: float = 0.0) -> RemoteActionRequested:
    return RemoteActionRequested(at, action, "operator-1", seconds)


def test_nothing_remote_turns_a_microphone_or_camera_on() -> None:
    s = in_state(OK, mic_mute_wanted=True, mic_muted=True, camera_remote_muted=True,
                 camera_muted=True)
    for action in (RemoteAction.UNMUTE, RemoteAction.CAMERA_ON):
        s, fx = transition(s, _remote(action))
        assert fx == [] and s.mic_mute_wanted and s.camera_remote_muted
        assert "only a person at the kiosk" in s.last_remote
    assert s.remote_unmutes_refused == 2
    assert remote_actions.remote_refusal(s, RemoteAction.UNMUTE) is not None


def test_the_device_file_may_allow_remote_unmute_but_never_lifts_privacy() -> None:
    s = in_state(OK, mic_mute_wanted=True, camera_privacy=True, allow_remote_unmute=True)
    s, fx = transition(s, _remote(RemoteAction.UNMUTE))
    assert not s.mic_mute_wanted and fx == [SetTrackMuted(MIC, False)]
    s, fx = transition(s, _remote(RemoteAction.CAMERA_ON))
    assert s.camera_privacy and fx == [SetTrackMuted(CAM, False)]  # unpublished anyway


def test_remote_mute_and_camera_off_are_honoured() -> None:
    s, fx = transition(in_state(OK), _remote(RemoteAction.MUTE))
    assert s.mic_mute_wanted and fx == [SetTrackMuted(MIC, True)]
    s, fx = transition(s, _remote(RemoteAction.CAMERA_OFF))
    assert s.camera_remote_muted and not s.camera_privacy and fx == [SetTrackMuted(CAM, True)]
    assert s.last_remote == "camera-off by operator-1"


def test_identify_shows_for_its_time_then_ends() -> None:
    s, _ = transition(in_state(OK), _remote(RemoteAction.IDENTIFY, seconds=5))
    assert s.identify_until == T + 5
    s, _ = transition(s, TickElapsed(T + 4))
    assert s.identify_until is not None
    s, _ = transition(s, TickElapsed(T + 5))
    assert s.identify_until is None


def test_remote_leave_is_told_apart_and_a_person_brings_it_back() -> None:
    s, _ = transition(in_state(OK), _remote(RemoteAction.LEAVE))
    assert s.intent is Intent.LEFT and s.left_remotely_by == "operator-1" and s.room is X
    s, _ = transition(s, RoomDisconnected(T + 1, "CLIENT_INITIATED", client_initiated=True))
    assert "asked by operator-1" in status_line(s)
    s, _ = transition(s, ButtonPressed(T + 2, ButtonName.LEAVE))
    assert s.intent is Intent.IN_ROOM and not s.left_remotely_by and s.room is C


def test_remote_rejoin_and_restart() -> None:
    s, fx = transition(in_state(OK), _remote(RemoteAction.REJOIN))
    assert s.room is X and s.intent is Intent.IN_ROOM
    s, _ = transition(s, RoomDisconnected(T + 1, "CLIENT_INITIATED", client_initiated=True))
    assert s.room is C
    s, fx = transition(in_state(OK), _remote(RemoteAction.RESTART))
    assert s.stopping and Disconnect in [type(e) for e in fx]
