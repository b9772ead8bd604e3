"""Per-device track lifecycle: a pure transition table that yields TrackStateChanged events."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from appliance.session.model import TrackKind, TrackState, TrackStateChanged

log = logging.getLogger(__name__)


class TrackInput(enum.Enum):
    """What happened to one device or its track (the lifecycle's input alphabet)."""

    # Device side: driven by the media layer.
    ACQUIRE = "acquire"  # start opening the device
    ACQUIRED = "acquired"  # device open, a fresh local track exists
    ACQUIRE_FAILED = "acquire failed"  # could not open it: retried with backoff
    DEVICE_LOST = "device lost"  # read error / vanished while running
    STOP = "stop"  # we are closing it (shutdown, privacy)
    STOPPED = "stopped"  # device closed
    # Room side: driven by the session (it posts PUBLISHING/PUBLISHED itself).
    PUBLISH = "publish"
    PUBLISHED = "published"
    UNPUBLISHED = "unpublished"  # room left or track unpublished: the track is still ours


DEVICE_INPUTS = frozenset({TrackInput.ACQUIRE, TrackInput.ACQUIRED, TrackInput.ACQUIRE_FAILED,
                           TrackInput.DEVICE_LOST, TrackInput.STOP, TrackInput.STOPPED})
ROOM_INPUTS = frozenset({TrackInput.PUBLISH, TrackInput.PUBLISHED, TrackInput.UNPUBLISHED})

_S, _I = TrackState, TrackInput
# Every (state, input) pair not listed is "unexpected": logged and ignored, never a crash.
TRANSITIONS: dict[tuple[TrackState, TrackInput], TrackState] = {
    (_S.UNINITIALIZED, _I.ACQUIRE): _S.ACQUIRING,
    (_S.UNINITIALIZED, _I.STOP): _S.STOPPED,
    (_S.ACQUIRING, _I.ACQUIRED): _S.ACQUIRED,
    (_S.ACQUIRING, _I.ACQUIRE_FAILED): _S.LOST,
    (_S.ACQUIRING, _I.STOP): _S.STOPPING,
    (_S.ACQUIRED, _I.PUBLISH): _S.PUBLISHING,
    (_S.ACQUIRED, _I.DEVICE_LOST): _S.LOST,
    (_S.ACQUIRED, _I.STOP): _S.STOPPING,
    (_S.ACQUIRED, _I.UNPUBLISHED): _S.ACQUIRED,
    (_S.PUBLISHING, _I.PUBLISHED): _S.PUBLISHED,
    (_S.PUBLISHING, _I.UNPUBLISHED): _S.ACQUIRED,
    (_S.PUBLISHING, _I.DEVICE_LOST): _S.LOST,
    (_S.PUBLISHING, _I.STOP): _S.STOPPING,
    (_S.PUBLISHED, _I.UNPUBLISHED): _S.ACQUIRED,
    (_S.PUBLISHED, _I.DEVICE_LOST): _S.LOST,
    (_S.PUBLISHED, _I.STOP): _S.STOPPING,
    (_S.STOPPING, _I.STOPPED): _S.STOPPED,
    (_S.STOPPING, _I.DEVICE_LOST): _S.STOPPING,  # closing anyway
    (_S.STOPPED, _I.ACQUIRE): _S.ACQUIRING,  # camera privacy ended
    (_S.STOPPED, _I.STOP): _S.STOPPED,  # closing twice is fine
    (_S.LOST, _I.ACQUIRE): _S.ACQUIRING,  # the backoff timer fired
    (_S.LOST, _I.STOP): _S.STOPPED,  # nothing open to close
    (_S.LOST, _I.DEVICE_LOST): _S.LOST,
}


def transition(state: TrackState, event: TrackInput) -> TrackState | None:
    """The next state, or None when `event` makes no sense in `state` (caller logs, ignores)."""
    return TRANSITIONS.get((state, event))


@dataclass(frozen=True)
class TrackLifecycle:
    """One device's lifecycle state; `step` returns the new value and the event to post."""

    kind: TrackKind
    state: TrackState = TrackState.UNINITIALIZED

    def step(self, event: TrackInput, at: float, reason: str = ""
             ) -> tuple[TrackLifecycle, TrackStateChanged | None]:
        """Apply `event` at monotonic time `at`; the event is None when nothing changed."""
        new = transition(self.state, event)
        if new is None:
            log.warning("%s: unexpected %s in state %s: ignored", self.kind.value, event.value,
                        self.state.value)
            return self, None
        if new is self.state:
            return self, None
        log.info("%s: %s -> %s%s", self.kind.value, self.state.value, new.value,
                 f" ({reason})" if reason else "")
        return (TrackLifecycle(self.kind, new),
                TrackStateChanged(at=at, kind=self.kind, state=new, reason=reason))
