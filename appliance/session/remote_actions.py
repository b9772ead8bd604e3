"""An operator's requests: which are refused and what each accepted one does to the session."""

from __future__ import annotations

from appliance.session.model import (
    CancelRetry,
    Intent,
    RemoteAction,
    RemoteActionRequested,
    SetTrackMuted,
    State,
    StopRequested,
    TrackKind,
)
from appliance.session.mutes import camera_mute_wanted
from appliance.session.steps import D, Step, X, connect, leave, on_stop, replace

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
        return replace(state, last_remote=f"{what}: {refusal}",
                       remote_unmutes_refused=refused), []
    state = replace(state, last_remote=what)
    action = ev.action
    if action is RemoteAction.IDENTIFY:
        seconds = min(IDENTIFY_MAX, ev.seconds if ev.seconds > 0 else IDENTIFY_DEFAULT)
        return replace(state, identify_until=ev.at + seconds), []
    if action is RemoteAction.MUTE:
        return replace(state, mic_mute_wanted=True), [SetTrackMuted(TrackKind.MICROPHONE, True)]
    if action is RemoteAction.CAMERA_OFF:
        state = replace(state, camera_remote_muted=True)
        return state, [SetTrackMuted(TrackKind.CAMERA, True)]
    if action is RemoteAction.UNMUTE:
        return replace(state, mic_mute_wanted=False), [
            SetTrackMuted(TrackKind.MICROPHONE, False)]
    if action is RemoteAction.CAMERA_ON:
        state = replace(state, camera_remote_muted=False)
        return state, [SetTrackMuted(TrackKind.CAMERA, camera_mute_wanted(state))]
    if action is RemoteAction.RESTART:
        return on_stop(state, StopRequested(ev.at, f"restart requested by {ev.caller}"))
    if action is RemoteAction.REJOIN:
        if state.intent is Intent.LEFT or state.room is X:
            return state, []
        state = replace(state, attempt=0, auth_lane=False)
        if state.room is D:
            return connect(state, fresh=True)
        return leave(state, f"rejoin requested by {ev.caller}")
    # LEAVE: out until a person presses leave (shown apart from a person's own leave)
    state = replace(state, intent=Intent.LEFT, left_remotely_by=ev.caller)
    if state.room is D:
        return replace(state, retry_pending=False, next_retry_at=None, attempt=0,
                       probe_pending=False), [CancelRetry()]
    if state.room is X:
        return state, []
    return leave(state, f"leave requested by {ev.caller}")
