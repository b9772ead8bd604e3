"""Hypothesis drives the machine against a simulated world and checks the session invariants."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from appliance.session.machine import ALLOWED_EDGES, expected, transition
from appliance.session.model import (
    ButtonName,
    ButtonPressed,
    Connect,
    ConnectFailed,
    ConnectionQualityChanged,
    ConnectRequested,
    Disconnect,
    Effect,
    Event,
    Intent,
    JoinFailure,
    LocalTrackMuted,
    MediaProgressSampled,
    NetworkChanged,
    ParticipantJoined,
    ParticipantLeft,
    ProbeAnswered,
    ProbeVerdict,
    Progress,
    Quality,
    RetryTimerFired,
    RoomConnected,
    RoomDisconnected,
    RoomReconnected,
    RoomReconnecting,
    RoomState,
    ScheduleProbe,
    ScheduleRetry,
    Shutdown,
    State,
    StopRequested,
    TickElapsed,
    TrackKind,
    TrackState,
    TrackStateChanged,
)

kinds = st.sampled_from(TrackKind)


class SessionWorld(RuleBasedStateMachine):
    """The world: a link with at most what the machine asked for, and a retry timer."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.state = State(identity="k", room_name="lobby")
        self.connect_pending = False
        self.room_up = False
        self.disconnect_pending = False
        self.timer_armed = False
        self.probe_armed = False
        self.shut_down = False
        self.step(ConnectRequested(self.now))

    # --- plumbing -----------------------------------------------------------------------------

    def step(self, event: Event) -> list[Effect]:
        before = self.state
        new, effects = transition(before, event)
        if not expected(before, event):
            assert (new, effects) == (before, [])
        if new.room is not before.room:
            assert (before.room, new.room) in ALLOWED_EDGES, (before.room, new.room, event)
        for effect in effects:
            if isinstance(effect, Connect):
                assert not self.connect_pending, "two connects in flight"
                assert not self.room_up and not self.disconnect_pending, "connect over a room"
                assert new.intent is Intent.IN_ROOM and not new.stopping
                self.connect_pending = True
            elif isinstance(effect, Disconnect):
                self.connect_pending = False
                self.room_up = False
                self.disconnect_pending = True
            elif isinstance(effect, ScheduleRetry):
                self.timer_armed = True
            elif isinstance(effect, ScheduleProbe):
                assert new.retry_pending, "probing while not waiting to retry"
                self.probe_armed = True
            elif isinstance(effect, Shutdown):
                assert new.stopping
                self.shut_down = True
        self.state = new
        return effects

    def tick(self, dt: float) -> None:
        self.now += dt

    # --- the link answering -------------------------------------------------------------------

    @precondition(lambda self: self.connect_pending)
    @rule(ok=st.booleans(), auth=st.booleans(), dt=st.floats(0, 5),
          remotes=st.frozensets(st.sampled_from(["a", "b", "c"])))
    def connect_finishes(self, ok: bool, auth: bool, dt: float, remotes: frozenset[str]) -> None:
        self.tick(dt)
        self.connect_pending = False
        if ok:
            self.room_up = True
            self.step(RoomConnected(self.now, remotes))
        else:
            self.step(ConnectFailed(self.now, "no", JoinFailure.AUTH if auth
                                    else JoinFailure.UNREACHABLE))

    @precondition(lambda self: self.disconnect_pending)
    @rule(dt=st.floats(0, 2))
    def disconnect_finishes(self, dt: float) -> None:
        self.tick(dt)
        self.disconnect_pending = False
        self.step(RoomDisconnected(self.now, "CLIENT_INITIATED", client_initiated=True))

    @precondition(lambda self: self.room_up)
    @rule(outcome=st.sampled_from(["reconnecting", "reconnected", "gone"]), dt=st.floats(0, 30))
    def sdk_does_something(self, outcome: str, dt: float) -> None:
        self.tick(dt)
        if outcome == "reconnecting":
            self.step(RoomReconnecting(self.now))
        elif outcome == "reconnected":
            self.step(RoomReconnected(self.now))
        else:
            self.room_up = False
            self.step(RoomDisconnected(self.now, "SIGNAL_CLOSE"))

    @precondition(lambda self: self.room_up)
    @rule(who=st.sampled_from(["a", "b"]), joined=st.booleans())
    def participants(self, who: str, joined: bool) -> None:
        self.step(ParticipantJoined(self.now, who) if joined else ParticipantLeft(self.now, who))

    @precondition(lambda self: self.room_up)
    @rule(kind=kinds, state=st.sampled_from([TrackState.PUBLISHING, TrackState.PUBLISHED]))
    def publish_progress(self, kind: TrackKind, state: TrackState) -> None:
        self.step(TrackStateChanged(self.now, kind, state))

    @precondition(lambda self: self.timer_armed)
    @rule(dt=st.floats(0, 300))
    def timer_fires(self, dt: float) -> None:
        self.tick(dt)
        self.timer_armed = False
        self.step(RetryTimerFired(self.now))

    @precondition(lambda self: self.probe_armed)
    @rule(verdict=st.sampled_from(ProbeVerdict), dt=st.floats(0, 3))
    def probe_answers(self, verdict: ProbeVerdict, dt: float) -> None:
        self.tick(dt)
        self.probe_armed = False
        self.step(ProbeAnswered(self.now, verdict))

    # --- the rest of the world ----------------------------------------------------------------

    @rule(button=st.sampled_from(ButtonName), long=st.booleans(), dt=st.floats(0, 10))
    def press(self, button: ButtonName, long: bool, dt: float) -> None:
        self.tick(dt)
        self.step(ButtonPressed(self.now, button, long))

    @rule(kind=kinds, state=st.sampled_from([TrackState.ACQUIRED, TrackState.LOST,
                                             TrackState.STOPPED, TrackState.ACQUIRING]))
    def device(self, kind: TrackKind, state: TrackState) -> None:
        self.step(TrackStateChanged(self.now, kind, state))

    @rule(kind=kinds, muted=st.booleans(), dt=st.floats(0, 2))
    def mute_report(self, kind: TrackKind, muted: bool, dt: float) -> None:
        self.tick(dt)
        self.step(LocalTrackMuted(self.now, kind, muted))

    @rule(up=st.booleans())
    def network(self, up: bool) -> None:
        self.step(NetworkChanged(self.now, up))

    @rule(q=st.sampled_from(Quality))
    def quality(self, q: Quality) -> None:
        self.step(ConnectionQualityChanged(self.now, q))

    @rule(sent=st.integers(0, 3), dt=st.floats(0, 15))
    def media_progress(self, sent: int, dt: float) -> None:
        self.tick(dt)
        samples = tuple((k, Progress(sent, sent)) for k in TrackKind)
        self.step(MediaProgressSampled(self.now, samples))

    @rule(dt=st.floats(0, 120))
    def tick_elapsed(self, dt: float) -> None:
        self.tick(dt)
        self.step(TickElapsed(self.now))

    @rule()
    def join_requested(self) -> None:
        self.step(ConnectRequested(self.now))

    @rule()
    def stop(self) -> None:
        self.step(StopRequested(self.now))

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def out_of_room_in_room_intent_means_a_retry_is_armed(self) -> None:
        s = self.state
        if s.room is RoomState.DISCONNECTED and s.intent is Intent.IN_ROOM and not s.stopping:
            assert s.retry_pending and s.next_retry_at is not None

    @invariant()
    def connecting_means_a_connect_is_in_flight(self) -> None:
        if self.state.room is RoomState.CONNECTING:
            assert self.connect_pending

    @invariant()
    def left_or_stopping_never_connects(self) -> None:
        s = self.state
        if s.intent is Intent.LEFT or s.stopping:
            assert s.room is not RoomState.CONNECTING or self.disconnect_pending or (
                not self.connect_pending)

    @invariant()
    def live_flags_are_truthful(self) -> None:
        s = self.state
        if s.video_live:
            assert s.room is RoomState.CONNECTED and not s.camera_privacy and not s.camera_muted
            assert s.ladder.rung.size is not None
        if s.mic_live:
            assert s.room is RoomState.CONNECTED
            assert s.microphone is TrackState.PUBLISHED and not s.mic_muted
        if s.room in (RoomState.DISCONNECTED, RoomState.CONNECTING):
            assert not s.remotes

    @invariant()
    def shut_down_is_final(self) -> None:
        if self.shut_down:
            assert self.state.stopping and self.state.room is RoomState.DISCONNECTED


TestSession = SessionWorld.TestCase
TestSession.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
