"""What the LEDs may claim, written once: on-air invariants over the machine's observed State.

`appliance.indicators` renders these; tests check every LED sample against them and against what
the test double really receives. Detection windows (how long the truth may lag the world) are
named here so the README can quote them.
"""

from __future__ import annotations

from appliance.session.model import RoomState, State, TrackKind, TrackState

# Media that stopped progressing for this long is no longer shown as live (the stats are sampled
# every second, faster while a track still has to prove it flows). The rejoin follows at
# `reconnect.media_stall_timeout`.
PROGRESS_GRACE = 4.0


def sending(state: State, kind: TrackKind) -> bool:
    """The kiosk expects `kind` to be sending: in the room, published, not muted, not paused."""
    if state.room is not RoomState.CONNECTED or state.stopping:
        return False
    if state.track(kind) is not TrackState.PUBLISHED or state.muted(kind):
        return False
    if kind is TrackKind.CAMERA:
        return not state.camera_privacy and state.ladder.rung.size is not None
    return True


def on_air(state: State, kind: TrackKind) -> bool:
    """The room receives `kind` from us: sending, its media proven flowing since it began
    sending (a join, a republish, an unmute), and still progressing.

    The mute LED shows "live" (dark) and the camera LED is lit only while this holds.
    """
    return sending(state, kind) and state.stall.proven(kind) and kind not in state.stalled


def link_unproven(state: State) -> bool:
    """Something should be sending and none of it is on air: still proving it gets through
    (after a join, a republish, an unmute), or stalled. The quality LED does not show the
    server's grade then: the grade may describe a link that no longer carries our media."""
    kinds = _sending_kinds(state)
    return bool(kinds) and not any(on_air(state, kind) for kind in kinds)


def all_media_stalled(state: State) -> bool:
    """Something should be sending and all of it has stopped progressing for PROGRESS_GRACE:
    nothing we send reaches the server, whatever its last report said (it grades LOST the same
    way, a report interval later)."""
    kinds = _sending_kinds(state)
    return bool(kinds) and all(kind in state.stalled for kind in kinds)


def _sending_kinds(state: State) -> list[TrackKind]:
    return [kind for kind in TrackKind if sending(state, kind)]


def violations(state: State, *, mute_led_live: bool, camera_led_on: bool) -> list[str]:
    """Where an LED reading contradicts the state it was rendered from (empty: truthful)."""
    found = []
    if mute_led_live and not on_air(state, TrackKind.MICROPHONE):
        found.append("mute LED says live while the microphone is not on air "
                     f"({_why(state, TrackKind.MICROPHONE)})")
    if camera_led_on and not on_air(state, TrackKind.CAMERA):
        found.append("camera LED on while the camera is not on air "
                     f"({_why(state, TrackKind.CAMERA)})")
    return found


def _why(state: State, kind: TrackKind) -> str:
    return (f"room {state.room.value}, track {state.track(kind).value}, "
            f"muted {state.muted(kind)}, stalled {kind in state.stalled}")
