"""Track lifecycle table: every path of the seed document, and unexpected inputs ignored."""

from __future__ import annotations

import pytest

from appliance.media.lifecycle import TRANSITIONS, TrackInput, TrackLifecycle, transition
from appliance.session.model import TrackKind, TrackState, TrackStateChanged

S, I = TrackState, TrackInput  # noqa: E741 - short names keep the tables readable


def run(inputs: list[TrackInput]) -> tuple[TrackState, list[TrackState]]:
    life = TrackLifecycle(TrackKind.CAMERA)
    seen: list[TrackState] = []
    for n, inp in enumerate(inputs):
        life, ev = life.step(inp, at=float(n))
        if ev is not None:
            assert isinstance(ev, TrackStateChanged)
            assert ev.kind is TrackKind.CAMERA and ev.at == float(n)
            seen.append(ev.state)
    return life.state, seen


@pytest.mark.parametrize(("inputs", "states"), [
    ([I.ACQUIRE, I.ACQUIRED, I.PUBLISH, I.PUBLISHED, I.STOP, I.STOPPED],
     [S.ACQUIRING, S.ACQUIRED, S.PUBLISHING, S.PUBLISHED, S.STOPPING, S.STOPPED]),
    # device lost while published, re-acquired, republished
    ([I.ACQUIRE, I.ACQUIRED, I.PUBLISH, I.PUBLISHED, I.DEVICE_LOST, I.ACQUIRE, I.ACQUIRED,
      I.PUBLISH, I.PUBLISHED],
     [S.ACQUIRING, S.ACQUIRED, S.PUBLISHING, S.PUBLISHED, S.LOST, S.ACQUIRING, S.ACQUIRED,
      S.PUBLISHING, S.PUBLISHED]),
    # absent at boot: retried until it appears
    ([I.ACQUIRE, I.ACQUIRE_FAILED, I.ACQUIRE, I.ACQUIRE_FAILED, I.ACQUIRE, I.ACQUIRED],
     [S.ACQUIRING, S.LOST, S.ACQUIRING, S.LOST, S.ACQUIRING, S.ACQUIRED]),
    # room lost: back to acquired (track kept), published again on rejoin
    ([I.ACQUIRE, I.ACQUIRED, I.PUBLISH, I.PUBLISHED, I.UNPUBLISHED, I.PUBLISH, I.PUBLISHED],
     [S.ACQUIRING, S.ACQUIRED, S.PUBLISHING, S.PUBLISHED, S.ACQUIRED, S.PUBLISHING,
      S.PUBLISHED]),
    # privacy: stopped, then acquired again
    ([I.ACQUIRE, I.ACQUIRED, I.STOP, I.STOPPED, I.ACQUIRE, I.ACQUIRED],
     [S.ACQUIRING, S.ACQUIRED, S.STOPPING, S.STOPPED, S.ACQUIRING, S.ACQUIRED]),
    # stop while lost: nothing to close
    ([I.ACQUIRE, I.ACQUIRE_FAILED, I.STOP], [S.ACQUIRING, S.LOST, S.STOPPED]),
])
def test_paths(inputs: list[TrackInput], states: list[TrackState]) -> None:
    final, seen = run(inputs)
    assert seen == states
    assert final is states[-1]


def test_unexpected_inputs_are_ignored_without_event() -> None:
    life = TrackLifecycle(TrackKind.MICROPHONE)
    for inp in (I.PUBLISHED, I.STOPPED, I.DEVICE_LOST, I.ACQUIRED):
        life2, ev = life.step(inp, at=0.0)
        assert life2 is life and ev is None


def test_every_pair_has_an_outcome() -> None:
    # Defined = in the table, or explicitly "ignored" (None): never an exception.
    for state in TrackState:
        for inp in TrackInput:
            out = transition(state, inp)
            assert out is None or out in TrackState
    assert all(isinstance(k[0], TrackState) for k in TRANSITIONS)


def test_repeated_stop_is_silent() -> None:
    final, seen = run([I.STOP, I.STOP])
    assert final is S.STOPPED and seen == [S.STOPPED]
