"""The pure session machine: transition(state, event) -> (state, effects), table-driven.

The machine is the only writer of the session's state: the room, each track, the degradation
rung, camera privacy, mute wishes and observed mutes, the stall watch and the retry schedule.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from appliance.session.backoff import MIN_DELAY, retry_delay
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
    Disconnect,
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
    ProbeVerdict,
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
)
from appliance.session.truth import PROGRESS_GRACE, sending

Step = tuple[State, list[Effect]]
Handler = Callable[[State, Any], Step]

D, C, OK, R, X = (RoomState.DISCONNECTED, RoomState.CONNECTING, RoomState.CONNECTED,
                  RoomState.RECONNECTING, RoomState.DISCONNECTING)

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


def jitter(identity: str, attempt: int, at: float) -> float:
    """A uniform draw in [0, 1) that is a pure function of its inputs (full-jitter backoff).

    Kiosks differ by identity, so a fleet that failed at the same instant spreads out; tests and
    the herd simulation replay exactly.
    """
    digest = hashlib.blake2b(f"{identity}|{attempt}|{at:.6f}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _connect(state: State, *, fresh: bool = False, probed: bool = False) -> Step:
    state = _replace(state, room=C, retry_pending=False, next_retry_at=None,
                     probe_pending=False, probe_join=probed)
    return state, [CancelRetry(), Connect(state.attempt, fresh_token=fresh or state.auth_lane)]


def _probe_due(state: State, at: float) -> float:
    """Next probe: uniform in [0.4, 1.6] x the mean interval, a pure draw like the retry's."""
    draw = jitter(f"{state.identity}/probe", state.probes, at)
    return at + state.policy.probe_interval * (0.4 + 1.2 * draw)


def _probe_again(state: State, at: float) -> Step:
    """While waiting, probe again: the server's return is noticed within a second or two."""
    return _replace(state, probe_pending=True), [ScheduleProbe(_probe_due(state, at))]


def _drop_room(state: State, reason: str) -> State:
    """The room object is gone: nothing is published, nobody is with us, no echo will come."""
    camera = TrackState.ACQUIRED if state.camera in ON_AIR_TRACK_STATES else state.camera
    mic = TrackState.ACQUIRED if state.microphone in ON_AIR_TRACK_STATES else state.microphone
    return _replace(state, room=D, remotes=frozenset(), quality=Quality.UNKNOWN, camera=camera,
                    microphone=mic, connected_at=None, last_disconnect_reason=reason,
                    mic_muted=False, camera_muted=False, echoes=(), stall=state.stall.reset(),
                    stalled=frozenset(), room_sid="",
                    ladder=dataclasses.replace(state.ladder, quality=Quality.UNKNOWN))


def _leave(state: State, reason: str) -> Step:
    """Ask the adapter to leave whatever room exists or is being joined."""
    return _replace(state, room=X, retry_pending=False, next_retry_at=None,
                    probe_pending=False), [CancelRetry(), Disconnect(reason)]


# --- room lifecycle ---------------------------------------------------------------------------

def on_connect_requested(state: State, ev: ConnectRequested) -> Step:
    state = _replace(state, intent=Intent.IN_ROOM)
    if state.stopping or state.room is not D:
        return state, []
    return _connect(state)


def on_connected(state: State, ev: RoomConnected) -> Step:
    state = _replace(state, room=OK, link_fault=Fault.NONE, connected_at=ev.at,
                     remotes=ev.remotes, auth_lane=False, quality=Quality.UNKNOWN,
                     room_sid=ev.room_sid, joined_since_start=True, probe_join=False,
                     probe_joins_failed=0)
    if state.stopping or state.intent is Intent.LEFT:
        return _leave(state, "shutdown" if state.stopping else "leave button")
    return state, [PublishTracks(camera=not state.camera_privacy)]


def _retry_or_rest(state: State, at: float, *, auth: bool, probe: bool = False) -> Step:
    """Arm the next join: after the backoff, or, when probing, on the probe's OK.

    While probing, the blind retry is only a safety net (a validate path that never answers
    although joins would work): its delay is drawn up to the slow lane's cap, so a fleet's blind
    joins against a dead server stay far below its admission rate.
    """
    if state.stopping:
        return state, [Shutdown()]
    if state.intent is Intent.LEFT:
        return state, []
    probing = probe and state.policy.probe_interval > 0
    if probing:
        delay = _safety_net_delay(state, at)
    else:
        delay = retry_delay(state.policy, state.attempt, jitter(state.identity, state.attempt, at),
                            auth=auth)
    due = at + delay
    state = _replace(state, retry_pending=True, auth_lane=auth, next_retry_at=due,
                     probe_pending=probing)
    effects: list[Effect] = [ScheduleRetry(due)]
    if probing:
        effects.append(ScheduleProbe(_probe_due(state, at)))
    return state, effects


def _safety_net_delay(state: State, at: float) -> float:
    draw = jitter(f"{state.identity}/net", state.probes, at)
    return max(MIN_DELAY, draw * max(state.policy.auth_backoff_max, state.policy.backoff_max))


def _join_fault(state: State, cause: JoinFailure) -> Fault:
    if cause is JoinFailure.AUTH:
        return Fault.AUTH_REJECTED
    if cause is JoinFailure.CONFIG:
        return Fault.CONFIG_FAULT
    return Fault.SERVER_UNREACHABLE if state.network_up else Fault.NO_NETWORK


def on_connect_failed(state: State, ev: ConnectFailed) -> Step:
    fault = _join_fault(state, ev.cause)
    failed = state.probe_joins_failed + (1 if state.probe_join else 0)
    state = _replace(_drop_room(state, ev.reason), link_fault=fault, attempt=state.attempt + 1,
                     probe_join=False, probe_joins_failed=failed)
    return _retry_or_rest(state, ev.at, auth=ev.cause is JoinFailure.AUTH, probe=True)


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
        return _replace(dropped, attempt=0, link_fault=Fault.REMOVED, retry_pending=True,
                        next_retry_at=due), [ScheduleRetry(due)]
    if ev.reason == DUPLICATE_IDENTITY:  # no probing: it would bring the ping-pong back
        return _retry_or_rest(_replace(dropped, attempt=attempt,
                                       link_fault=Fault.IDENTITY_CONFLICT), ev.at, auth=True)
    state = _replace(dropped, attempt=attempt,
                     link_fault=_join_fault(state, JoinFailure.UNREACHABLE))
    return _retry_or_rest(state, ev.at, auth=False, probe=True)


def on_left(state: State, ev: RoomDisconnected | ConnectFailed) -> Step:
    """The disconnect we asked for completed (or the join we abandoned failed)."""
    state = _drop_room(state, getattr(ev, "reason", "") or "left")
    if state.stopping:
        return state, [Shutdown()]
    if state.intent is Intent.IN_ROOM:
        return _connect(state, fresh=True)  # forced rejoin: a fresh token and a fresh Room
    return state, []


def on_reconnecting(state: State, ev: RoomReconnecting) -> Step:
    # The stall watch keeps its clock through a resume: an SDK that resumes into the same dead
    # media path must not earn the LEDs a fresh grace period.
    return _replace(state, room=R), []


def on_reconnected(state: State, ev: RoomReconnected) -> Step:
    return _reconcile_mutes(_replace(state, room=OK))


def on_stop(state: State, ev: StopRequested) -> Step:
    if state.stopping:
        return state, []
    state = _replace(state, stopping=True)
    if state.room is D:
        return _replace(state, retry_pending=False, next_retry_at=None,
                        probe_pending=False), [CancelRetry(), Shutdown()]
    if state.room is X:
        return state, []
    return _leave(state, "shutdown")


# --- timers, the network and the media plane --------------------------------------------------

def on_retry_fired(state: State, ev: RetryTimerFired) -> Step:
    if not state.retry_pending or state.stopping or state.intent is Intent.LEFT:
        return state, []  # a timer that lost a race with a cancel
    # Sent away by an operator or displaced: a token still held may be one the operator meant
    # to end (a revoked kiosk), so the next join asks for a fresh one.
    return _connect(state, fresh=state.link_fault in (Fault.REMOVED, Fault.IDENTITY_CONFLICT))


def on_probe_answered(state: State, ev: ProbeAnswered) -> Step:
    """The server's answer to a probe: join now if it would be accepted, else probe again."""
    if not state.probe_pending:
        return state, []  # a probe that lost a race with a join or a cancel
    state = _replace(state, probe_pending=False, probes=state.probes + 1)
    if not state.retry_pending or state.stopping or state.intent is Intent.LEFT:
        return state, []
    if ev.verdict is ProbeVerdict.OK:
        if state.probe_joins_failed == 0:
            return _connect(state, probed=True)
        # Joins the probe let through were refused anyway (an overloaded server whose validate
        # still says yes): bring the retry forward, but spread like a backoff, and stop probing.
        delay = retry_delay(state.policy, state.probe_joins_failed,
                            jitter(state.identity, state.attempt, ev.at))
        due = ev.at + delay
        if state.next_retry_at is not None and due >= state.next_retry_at:
            return state, []
        return _replace(state, next_retry_at=due), [ScheduleRetry(due)]
    if ev.verdict is ProbeVerdict.CONFIG:
        return _replace(state, link_fault=Fault.CONFIG_FAULT), []
    if ev.verdict is ProbeVerdict.AUTH:
        state = _replace(state, link_fault=Fault.AUTH_REJECTED)
    else:
        state = _replace(state, link_fault=_join_fault(state, JoinFailure.UNREACHABLE))
    state, effects = _probe_again(state, ev.at)
    if ev.verdict is ProbeVerdict.BUSY:
        # The server is up and says "not now": a blind join would only add to its load, so the
        # safety-net retry moves out again; the next probe's OK brings the kiosk in.
        due = ev.at + _safety_net_delay(state, ev.at)
        if state.next_retry_at is None or due > state.next_retry_at:
            state = _replace(state, next_retry_at=due)
            effects.append(ScheduleRetry(due))
    return state, effects


def on_network(state: State, ev: NetworkChanged) -> Step:
    state = _replace(state, network_up=ev.up)
    if ev.up and state.room is D and state.retry_pending and not state.stopping:
        return _connect(state)  # a link or route appeared: retry now, not after the backoff
    return state, []


def on_tick(state: State, ev: TickElapsed) -> Step:
    if (state.connected_at is not None and state.attempt
            and ev.at - state.connected_at >= state.policy.stable_after):
        state = _replace(state, attempt=0, auth_lane=False)
    if state.identify_until is not None and ev.at >= state.identify_until:
        state = _replace(state, identify_until=None)
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
    return _judge_media(_replace(state, stall=watch), ev.at)


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
        state = _replace(state, stalled=frozenset(stalled))
    if worst is None or state.stopping or state.intent is Intent.LEFT or state.room is not OK:
        return state, []
    seconds, kind = worst
    state = _replace(state, stall=state.stall.reset(),
                     last_disconnect_reason=f"{kind.value} media stalled")
    return _leave(state, f"{kind.value} media stalled for {seconds:.0f} s with signalling up")


# --- participants, quality, the degradation ladder ----------------------------------------------

def on_joined(state: State, ev: ParticipantJoined) -> Step:
    return _replace(state, remotes=state.remotes | {ev.identity}), []


def on_participant_left(state: State, ev: ParticipantLeft) -> Step:
    return _replace(state, remotes=state.remotes - {ev.identity}), []


def on_quality(state: State, ev: ConnectionQualityChanged) -> Step:
    state = _replace(state, quality=ev.quality)
    return _move_ladder(state, state.ladder.observe(ev.quality, ev.at)[0])


def _camera_mute_wanted(state: State) -> bool:
    return state.camera_remote_muted or state.ladder.rung.size is None


def _move_ladder(state: State, ladder: Any) -> Step:
    """Adopt the ladder's new value; a new rung switches the capture and the camera's mute."""
    if ladder == state.ladder:
        return state, []
    moved = ladder.index != state.ladder.index
    state = _replace(state, ladder=ladder)
    if not moved:
        return state, []
    effects: list[Effect] = [SetVideoMode(ladder.rung.size)]
    state, more = _reconcile_mutes(state)
    return state, effects + more


# --- tracks and mutes -------------------------------------------------------------------------

def _reconcile_mutes(state: State) -> Step:
    """Command every published track whose observed mute differs from what we want."""
    if state.room is not OK or state.stopping:
        return state, []
    effects: list[Effect] = []
    wanted = {TrackKind.MICROPHONE: state.mic_mute_wanted,
              TrackKind.CAMERA: _camera_mute_wanted(state)}
    for kind, want in wanted.items():
        if state.track(kind) is not TrackState.PUBLISHED:
            continue
        due = [m for k, m in state.echoes if k is kind]
        believed = due[-1] if due else state.muted(kind)  # what the SDK will hold once echoed
        if believed != want:
            effects.append(SetTrackMuted(kind, want))
    return state, effects


def on_track(state: State, ev: TrackStateChanged) -> Step:
    if ev.state in ON_AIR_TRACK_STATES and state.room not in JOINED_ROOM_STATES:
        return state, []  # a publish that finished after its room died: not on air
    before = state.track(ev.kind)
    state = state.with_track(ev.kind, ev.state)
    if ev.state is not TrackState.PUBLISHED and before is TrackState.PUBLISHED:
        # The publication is gone: no echo of it will come, its counters mean nothing now.
        state = _replace(state, echoes=tuple(e for e in state.echoes if e[0] is not ev.kind),
                         stalled=state.stalled - {ev.kind}, **{_muted_field(ev.kind): False})
    if (ev.state is TrackState.ACQUIRED and before is TrackState.PUBLISHING and state.room is OK
            and not state.stopping and state.intent is Intent.IN_ROOM):
        # The publish failed while the room is up: a fresh join beats a kiosk nobody sees.
        return _leave(_replace(state, last_disconnect_reason="publish failed"),
                      f"{ev.kind.value} publish failed: {ev.reason}")
    if ev.state is TrackState.PUBLISHED:
        # The stall watch is not reset here: a publication the SDK redid (a rejoin of its own)
        # still owes proof that media flows since the last time it did.
        state = _replace(state, echoes=tuple(e for e in state.echoes if e[0] is not ev.kind),
                         **{_muted_field(ev.kind): ev.muted})
        if ev.kind is TrackKind.CAMERA and state.camera_privacy:
            return state, [SetCameraEnabled(False)]
        return _reconcile_mutes(state)
    if (ev.state is TrackState.ACQUIRED and before not in ON_AIR_TRACK_STATES
            and state.room is OK and not state.stopping
            and (ev.kind is TrackKind.MICROPHONE or not state.camera_privacy)):
        return state, [PublishTracks(camera=not state.camera_privacy)]  # device came (back)
    return state, []


def _muted_field(kind: TrackKind) -> str:
    return "camera_muted" if kind is TrackKind.CAMERA else "mic_muted"


def on_mute_applied(state: State, ev: MuteApplied) -> Step:
    """Our command ran: the SDK's track flag now reads `muted` (LiveKit's own flag, read back).

    If the call flipped it, the SDK will also echo the change; that echo is then ours.
    """
    if state.track(ev.kind) is not TrackState.PUBLISHED:
        return state, []
    state = _replace(state, **{_muted_field(ev.kind): ev.muted})
    if ev.changed:
        state = _replace(state, echoes=(*state.echoes, (ev.kind, ev.muted)))
    return state, []


def on_local_muted(state: State, ev: LocalTrackMuted) -> Step:
    """The SDK's mute report: the head echo if it matches (ours), else the server's doing."""
    if state.track(ev.kind) not in ON_AIR_TRACK_STATES:
        return state, []  # a report about a publication we no longer have
    state = _replace(state, **{_muted_field(ev.kind): ev.muted})
    mine = [i for i, (k, _) in enumerate(state.echoes) if k is ev.kind]
    if mine and state.echoes[mine[0]][1] == ev.muted:
        echoes = state.echoes[:mine[0]] + state.echoes[mine[0] + 1:]
        return _replace(state, echoes=echoes), []
    return _server_mute(state, ev.kind, ev.muted)


def _server_mute(state: State, kind: TrackKind, muted: bool) -> Step:
    """A mute we did not command. Honour a mute; refuse an unmute (only a person may unmute)."""
    if muted:  # the SDK track is muted already; the media layer learns the wish for new tracks
        field = "mic_mute_wanted" if kind is TrackKind.MICROPHONE else "camera_remote_muted"
        return _replace(state, **{field: True}), [SetTrackMuted(kind, True)]
    wanted = state.mic_mute_wanted if kind is TrackKind.MICROPHONE else _camera_mute_wanted(state)
    if not wanted:
        return state, []  # agrees with us: a late echo of an earlier unmute
    state = _replace(state, remote_unmutes_refused=state.remote_unmutes_refused + 1)
    return state, [SetTrackMuted(kind, True)]


# --- remote requests --------------------------------------------------------------------------

IDENTIFY_DEFAULT, IDENTIFY_MAX = 30.0, 600.0
TURNS_MEDIA_ON = frozenset({RemoteAction.UNMUTE, RemoteAction.CAMERA_ON})


def remote_refusal(state: State, action: RemoteAction) -> str | None:
    """Why `action` is refused (None: accepted); the RPC reply and the machine both use it."""
    if action in TURNS_MEDIA_ON and not state.allow_remote_unmute:
        return (f"refused: only a person at the kiosk may turn the "
                f"{'microphone' if action is RemoteAction.UNMUTE else 'camera'} on")
    if state.stopping:
        return "refused: the kiosk is stopping"
    return None


def on_remote(state: State, ev: RemoteActionRequested) -> Step:
    """An operator's request. Nothing remote turns a microphone or camera on (unless the
    per-device file allows it), and nothing remote ever lifts a person's camera privacy."""
    what = f"{ev.action.value} by {ev.caller}"
    refusal = remote_refusal(state, ev.action)
    if refusal is not None:
        refused = state.remote_unmutes_refused + (ev.action in TURNS_MEDIA_ON)
        return _replace(state, last_remote=f"{what}: {refusal}",
                        remote_unmutes_refused=refused), []
    state = _replace(state, last_remote=what)
    action = ev.action
    if action is RemoteAction.IDENTIFY:
        seconds = min(IDENTIFY_MAX, ev.seconds if ev.seconds > 0 else IDENTIFY_DEFAULT)
        return _replace(state, identify_until=ev.at + seconds), []
    if action is RemoteAction.MUTE:
        return _replace(state, mic_mute_wanted=True), [SetTrackMuted(TrackKind.MICROPHONE, True)]
    if action is RemoteAction.CAMERA_OFF:
        state = _replace(state, camera_remote_muted=True)
        return state, [SetTrackMuted(TrackKind.CAMERA, True)]
    if action is RemoteAction.UNMUTE:
        return _replace(state, mic_mute_wanted=False), [
            SetTrackMuted(TrackKind.MICROPHONE, False)]
    if action is RemoteAction.CAMERA_ON:
        state = _replace(state, camera_remote_muted=False)
        return state, [SetTrackMuted(TrackKind.CAMERA, _camera_mute_wanted(state))]
    if action is RemoteAction.RESTART:
        return on_stop(state, StopRequested(ev.at, f"restart requested by {ev.caller}"))
    if action is RemoteAction.REJOIN:
        if state.intent is Intent.LEFT or state.room is X:
            return state, []
        state = _replace(state, attempt=0, auth_lane=False)
        if state.room is D:
            return _connect(state, fresh=True)
        return _leave(state, f"rejoin requested by {ev.caller}")
    # LEAVE: out until a person presses leave (shown apart from a person's own leave)
    state = _replace(state, intent=Intent.LEFT, left_remotely_by=ev.caller)
    if state.room is D:
        return _replace(state, retry_pending=False, next_retry_at=None, attempt=0,
                        probe_pending=False), [CancelRetry()]
    if state.room is X:
        return state, []
    return _leave(state, f"leave requested by {ev.caller}")


# --- buttons ----------------------------------------------------------------------------------

def on_button(state: State, ev: ButtonPressed) -> Step:
    if state.stopping:
        return state, []
    if ev.button is ButtonName.MUTE and not ev.long:
        # Always told to the media layer, published or not: a microphone opened later starts
        # muted and no captured audio is fed while the wish is "muted".
        wanted = not state.mic_mute_wanted
        return _replace(state, mic_mute_wanted=wanted), [SetTrackMuted(TrackKind.MICROPHONE,
                                                                       wanted)]
    if ev.button is ButtonName.MUTE:
        if state.camera_remote_muted and not state.camera_privacy:
            # A person turns the camera back on after a server muted it: privacy stays off.
            state = _replace(state, camera_remote_muted=False)
            return state, [SetTrackMuted(TrackKind.CAMERA, _camera_mute_wanted(state))]
        privacy = not state.camera_privacy
        effects: list[Effect] = [SetCameraEnabled(not privacy)]
        if not privacy and state.room is OK:
            effects.append(PublishTracks(camera=True))
        return _replace(state, camera_privacy=privacy, camera_remote_muted=False), effects
    if ev.long:  # leave long: forced fresh rejoin
        state = _replace(state, intent=Intent.IN_ROOM, attempt=0, auth_lane=False)
        if state.room is D:
            return _connect(state, fresh=True)
        if state.room is X:
            return state, []
        return _leave(state, "forced rejoin (leave held)")
    if state.intent is Intent.IN_ROOM and state.room is D and state.link_fault is Fault.REMOVED:
        # Removed by an operator: a person at the kiosk may bring it back at once.
        return _connect(_replace(state, attempt=0, auth_lane=False), fresh=True)
    if state.intent is Intent.IN_ROOM:
        state = _replace(state, intent=Intent.LEFT)
        if state.room is D:
            return _replace(state, retry_pending=False, next_retry_at=None, attempt=0,
                            probe_pending=False), [CancelRetry()]
        if state.room is X:
            return state, []
        return _leave(state, "leave button")
    state = _replace(state, intent=Intent.IN_ROOM, attempt=0, auth_lane=False,
                     left_remotely_by="")
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
    return _replace(state, fault=fault, outside_since=outside, stall=watch)


def transition(state: State, event: Event) -> Step:
    """Apply one event. Unexpected pairs return the state unchanged and no effects."""
    row = TABLE.get(type(event))
    handler = None if row is None else row.get(state.room)
    if handler is None:
        return state, []
    new, effects = handler(state, event)
    return _derive(new, event.at), effects
