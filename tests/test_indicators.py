"""Indicators: every observed state maps to the documented pattern; docs match the code."""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance import indicators as ind
from appliance.indicators import (
    CAMERA_ON,
    MUTE_ON,
    OFF,
    QUALITY_PATTERNS,
    STATUS_PATTERNS,
    LedName,
    Shape,
    StatusKind,
    indicators,
    status_kind,
)
from appliance.session.model import (
    Fault,
    Intent,
    Quality,
    RoomState,
    State,
    TrackKind,
    TrackState,
)
from appliance.session.stall import Progress, StallWatch

ROOT = Path(__file__).resolve().parents[1]
CONNECTION_FAULTS = {Fault.NO_NETWORK, Fault.SERVER_UNREACHABLE, Fault.AUTH_REJECTED,
                     Fault.CONFIG_FAULT, Fault.IDENTITY_CONFLICT, Fault.REMOVED}
FAULT_KIND = {Fault.NO_NETWORK: StatusKind.NO_NETWORK,
              Fault.SERVER_UNREACHABLE: StatusKind.SERVER_UNREACHABLE,
              Fault.AUTH_REJECTED: StatusKind.AUTH_REJECTED,
              Fault.DEVICE_FAULT: StatusKind.DEVICE_FAULT,
              Fault.CONFIG_FAULT: StatusKind.CONFIG_FAULT,
              Fault.IDENTITY_CONFLICT: StatusKind.IDENTITY_CONFLICT,
              Fault.REMOVED: StatusKind.REMOVED}


def expected_status(s: State) -> StatusKind:
    """The README's rules for the status LED, restated independently of the code."""
    if s.stopping:
        return StatusKind.STOPPING
    if s.identify_until is not None:
        return StatusKind.IDENTIFY
    if s.intent is Intent.LEFT:
        return StatusKind.LEFT_REMOTELY if s.left_remotely_by else StatusKind.LEFT
    if s.crashes >= 3 and not s.joined_since_start:
        return StatusKind.CRASH_LOOP
    if s.fault is Fault.DEVICE_FAULT:
        return StatusKind.DEVICE_FAULT
    # the machine derives connection faults only while out of the room; if one lingers
    # while connected, the room wins
    if s.fault in CONNECTION_FAULTS and s.room is not RoomState.CONNECTED:
        return FAULT_KIND[s.fault]
    if s.room is RoomState.CONNECTED:
        return StatusKind.WITH_OTHERS if s.remotes else StatusKind.ALONE
    if s.room is RoomState.RECONNECTING:
        return StatusKind.RECONNECTING
    first_try = s.attempt == 0 and s.next_retry_at is None
    if first_try and s.room in (RoomState.DISCONNECTED, RoomState.CONNECTING):
        return StatusKind.STARTING
    return StatusKind.RECONNECTING


def _flowing() -> StallWatch:
    watch = StallWatch()
    for kind in TrackKind:
        watch = watch.arm(kind, 0.0).observe(kind, 1.0, Progress(1, 1), True)
        watch = watch.observe(kind, 2.0, Progress(2, 2), True)
    return watch


FLOWING = _flowing()


STATUS_AXES = {
    "room": list(RoomState),
    "intent": list(Intent),
    "fault": list(Fault),
    "remotes": [frozenset(), frozenset({"alice"})],
    "attempt": [0, 3],
    "next_retry_at": [None, 12.0],
    "stopping": [False, True],
    "crashes": [0, 3],
    "identify_until": [None, 50.0],
    "left_remotely_by": ["", "operator-1"],
}
MEDIA_AXES = {
    "room": list(RoomState),
    "microphone": list(TrackState),
    "mic_muted": [False, True],
    "camera": list(TrackState),
    "camera_muted": [False, True],
    "camera_privacy": [False, True],
    "stalled": [frozenset(), frozenset({TrackKind.MICROPHONE}), frozenset({TrackKind.CAMERA}),
                frozenset(TrackKind)],
    "stall": [StallWatch(), FLOWING],
    "quality": list(Quality),
}


def mic_sends(s: State) -> bool:
    return (s.room is RoomState.CONNECTED and not s.stopping
            and s.microphone is TrackState.PUBLISHED and not s.mic_muted)


def camera_sends(s: State) -> bool:
    return (s.room is RoomState.CONNECTED and not s.stopping
            and s.camera is TrackState.PUBLISHED and not s.camera_muted
            and not s.camera_privacy and s.ladder.rung.size is not None)


def mic_heard(s: State) -> bool:
    """The README's rule, restated: the room hears the microphone."""
    return (mic_sends(s) and s.stall.proven(TrackKind.MICROPHONE)
            and TrackKind.MICROPHONE not in s.stalled)


def video_seen(s: State) -> bool:
    return (camera_sends(s) and s.stall.proven(TrackKind.CAMERA)
            and TrackKind.CAMERA not in s.stalled)


def expected_quality(s: State) -> Quality:
    """The README's rule for the quality LED: the server's report in the room while our media
    arrives (or none is sent); LOST while the SDK resumes or everything sent is stalled;
    nothing out of the room or while what is sent still proves it arrives."""
    if s.stopping or s.room not in (RoomState.CONNECTED, RoomState.RECONNECTING):
        return Quality.UNKNOWN
    if s.room is RoomState.RECONNECTING:
        return Quality.LOST
    sent = [k for k, on in ((TrackKind.MICROPHONE, mic_sends(s)),
                            (TrackKind.CAMERA, camera_sends(s))) if on]
    if sent and all(k in s.stalled for k in sent):
        return Quality.LOST
    if sent and not mic_heard(s) and not video_seen(s):
        return Quality.UNKNOWN
    return s.quality



def product(axes: dict[str, list[object]]) -> list[State]:
    return [State(**dict(zip(axes, values, strict=True)))  # type: ignore[arg-type]
            for values in itertools.product(*axes.values())]


def test_every_status_state_shows_its_documented_pattern() -> None:
    states = product(STATUS_AXES)
    assert len(states) == 10240
    seen = set()
    for s in states:
        kind = expected_status(s)
        seen.add(kind)
        assert status_kind(s) is kind, s
        assert indicators(s)[LedName.STATUS] == STATUS_PATTERNS[kind]
    assert seen == set(StatusKind)  # every documented status is reachable


def test_every_media_state_drives_mute_camera_and_quality_leds() -> None:
    for s in product(MEDIA_AXES):
        leds = indicators(s)
        assert leds[LedName.MUTE] == (OFF if mic_heard(s) else MUTE_ON), s
        assert leds[LedName.CAMERA] == (CAMERA_ON if video_seen(s) else OFF), s
        assert leds[LedName.QUALITY] == QUALITY_PATTERNS[expected_quality(s)], s


def test_the_quality_led_shows_the_grade_only_while_our_media_arrives() -> None:
    base = State(room=RoomState.CONNECTED, microphone=TrackState.PUBLISHED,
                 camera=TrackState.PUBLISHED, quality=Quality.EXCELLENT, stall=FLOWING)
    shown = {name: indicators(dataclasses.replace(base, **change))[LedName.QUALITY]
             for name, change in {
                 "flowing": {},
                 "camera stalled (a device, not the link)": {"stalled": {TrackKind.CAMERA}},
                 "both stalled": {"stalled": frozenset(TrackKind)},
                 "muted, camera stalled": {"mic_muted": True, "stalled": {TrackKind.CAMERA}},
                 "muted, private": {"mic_muted": True, "camera_privacy": True},
                 "both still proving (a fresh join)": {"stall": StallWatch()},
             }.items()}
    assert shown == {"flowing": QUALITY_PATTERNS[Quality.EXCELLENT],
                     "camera stalled (a device, not the link)": QUALITY_PATTERNS[Quality.EXCELLENT],
                     "both stalled": QUALITY_PATTERNS[Quality.LOST],
                     "muted, camera stalled": QUALITY_PATTERNS[Quality.LOST],
                     "muted, private": QUALITY_PATTERNS[Quality.EXCELLENT],
                     "both still proving (a fresh join)": OFF}


def test_a_remote_mute_request_not_yet_confirmed_leaves_the_mute_led_off() -> None:
    # Truthful: only LiveKit's report counts; a wish (button, server request) is not a mute.
    s = State(room=RoomState.CONNECTED, microphone=TrackState.PUBLISHED, mic_muted=False,
              mic_mute_wanted=True, stall=FLOWING)
    assert indicators(s)[LedName.MUTE] == OFF


@given(st.builds(
    State, room=st.sampled_from(RoomState), intent=st.sampled_from(Intent),
    fault=st.sampled_from(Fault), quality=st.sampled_from(Quality),
    remotes=st.frozensets(st.sampled_from(["a", "b", "c"])),
    camera=st.sampled_from(TrackState), microphone=st.sampled_from(TrackState),
    mic_muted=st.booleans(), mic_mute_wanted=st.booleans(), camera_privacy=st.booleans(),
    camera_muted=st.booleans(), stalled=st.frozensets(st.sampled_from(TrackKind)),
    crashes=st.integers(0, 5), joined_since_start=st.booleans(),
    stall=st.sampled_from([StallWatch(), FLOWING]),
    identify_until=st.none() | st.just(5.0), left_remotely_by=st.sampled_from(["", "op"]),
    attempt=st.integers(0, 5), next_retry_at=st.none() | st.floats(0, 100),
    stopping=st.booleans(),
))
def test_random_states_follow_the_rules_and_the_function_is_pure(s: State) -> None:
    leds = indicators(s)
    assert set(leds) == set(LedName)
    assert leds == indicators(dataclasses.replace(s))  # same input, same output
    assert leds[LedName.STATUS] == STATUS_PATTERNS[expected_status(s)]
    assert (leds[LedName.MUTE] == MUTE_ON) is (not mic_heard(s))
    assert (leds[LedName.CAMERA] == CAMERA_ON) == video_seen(s) == s.video_live
    identifying = s.identify_until is not None and not s.stopping  # it borrows the quality LED
    assert leds[LedName.QUALITY] == (STATUS_PATTERNS[StatusKind.IDENTIFY] if identifying
                                     else QUALITY_PATTERNS[expected_quality(s)])


def test_status_patterns_are_told_apart_by_shape_alone() -> None:
    # A single-colour status LED must still distinguish every status (colour is a bonus).
    shapes = {}
    for kind, p in STATUS_PATTERNS.items():
        key = (p.shape, p.on_time, p.off_time, p.count, p.pause)
        assert key not in shapes, f"{kind} looks like {shapes.get(key)}"
        shapes[key] = kind


def test_quality_patterns_are_distinct() -> None:
    assert len(set(QUALITY_PATTERNS.values())) == len(Quality)


def test_flash_times_are_multiples_of_the_player_step() -> None:
    for p in STATUS_PATTERNS.values():
        if p.shape is Shape.FLASHES:
            for t in (p.on_time, p.off_time, p.pause):
                assert round(t / 0.1, 6) == round(t / 0.1)


def test_committed_table_matches_the_code() -> None:
    assert (ROOT / "docs" / "leds.md").read_text() == ind.markdown()


def test_committed_picture_matches_the_code() -> None:
    assert (ROOT / "docs" / "leds.svg").read_text() == ind.svg()


def test_readme_table_matches_the_code() -> None:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- leds:begin -->\n(.*?)<!-- leds:end -->", text, re.S)
    assert block is not None, "README.md lost its <!-- leds:begin --> ... <!-- leds:end --> block"
    assert block.group(1) == ind.markdown()


def test_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert ind.main(["--markdown"]) == 0
    assert capsys.readouterr().out == ind.markdown()
