"""Tracks and their mutes: publication facts, the echoes of our own commands, the server's mutes."""

from __future__ import annotations

from appliance.session.model import (
    JOINED_ROOM_STATES,
    ON_AIR_TRACK_STATES,
    Effect,
    Intent,
    LocalTrackMuted,
    MuteApplied,
    PublishTracks,
    SetCameraEnabled,
    SetTrackMuted,
    State,
    TrackKind,
    TrackState,
    TrackStateChanged,
)
from appliance.session.steps import OK, Step, leave, replace


def camera_mute_wanted(state: State) -> bool:
    return state.camera_remote_muted or state.ladder.rung.size is None


def reconcile_mutes(state: State) -> Step:
    """Command every published track whose observed mute differs from what we want."""
    if state.room is not OK or state.stopping:
        return state, []
    effects: list[Effect] = []
    wanted = {TrackKind.MICROPHONE: state.mic_mute_wanted,
              TrackKind.CAMERA: camera_mute_wanted(state)}
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
        state = replace(state, echoes=tuple(e for e in state.echoes if e[0] is not ev.kind),
                        stalled=state.stalled - {ev.kind}, **{_muted_field(ev.kind): False})
    if (ev.state is TrackState.ACQUIRED and before is TrackState.PUBLISHING and state.room is OK
            and not state.stopping and state.intent is Intent.IN_ROOM):
        # The publish failed while the room is up: a fresh join beats a kiosk nobody sees.
        return leave(replace(state, last_disconnect_reason="publish failed"),
                     f"{ev.kind.value} publish failed: {ev.reason}")
    if ev.state is TrackState.PUBLISHED:
        # The stall watch is not reset here: a publication the SDK redid (a rejoin of its own)
        # still owes proof that media flows since the last time it did.
        state = replace(state, echoes=tuple(e for e in state.echoes if e[0] is not ev.kind),
                        **{_muted_field(ev.kind): ev.muted})
        if ev.kind is TrackKind.CAMERA and state.camera_privacy:
            return state, [SetCameraEnabled(False)]
        return reconcile_mutes(state)
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
    state = replace(state, **{_muted_field(ev.kind): ev.muted})
    if ev.changed:
        state = replace(state, echoes=(*state.echoes, (ev.kind, ev.muted)))
    return state, []


def on_local_muted(state: State, ev: LocalTrackMuted) -> Step:
    """The SDK's mute report: the head echo if it matches (ours), else the server's doing."""
    if state.track(ev.kind) not in ON_AIR_TRACK_STATES:
        return state, []  # a report about a publication we no longer have
    state = replace(state, **{_muted_field(ev.kind): ev.muted})
    mine = [i for i, (k, _) in enumerate(state.echoes) if k is ev.kind]
    if mine and state.echoes[mine[0]][1] == ev.muted:
        echoes = state.echoes[:mine[0]] + state.echoes[mine[0] + 1:]
        return replace(state, echoes=echoes), []
    return _server_mute(state, ev.kind, ev.muted)


def _server_mute(state: State, kind: TrackKind, muted: bool) -> Step:
    """A mute we did not command. Honour a mute; refuse an unmute (only a person may unmute)."""
    if muted:  # the SDK track is muted already; the media layer learns the wish for new tracks
        field = "mic_mute_wanted" if kind is TrackKind.MICROPHONE else "camera_remote_muted"
        return replace(state, **{field: True}), [SetTrackMuted(kind, True)]
    wanted = state.mic_mute_wanted if kind is TrackKind.MICROPHONE else camera_mute_wanted(state)
    if not wanted:
        return state, []  # agrees with us: a late echo of an earlier unmute
    state = replace(state, remote_unmutes_refused=state.remote_unmutes_refused + 1)
    return state, [SetTrackMuted(kind, True)]
