"""Buttons: one ButtonPressed per physical press through gpiozero's mock pins, bounce or not."""

from __future__ import annotations

import pytest
from gpio_support import FakeClock, Recorder, wait_until
from gpiozero.pins.mock import MockFactory
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.devices.buttons import ButtonConfig, ButtonPanel, Phase, PressDetector
from appliance.session.model import ButtonName, ButtonPressed

MUTE, LEAVE = ButtonName.MUTE, ButtonName.LEAVE
HOLD = 0.2
BOUNCE = 0.02


def panel(factory: MockFactory, recorder: Recorder, clock: FakeClock | None = None,
          bounce: float = BOUNCE, pull: str = "up") -> ButtonPanel:
    active_high = pull == "down"
    configs = {MUTE: ButtonConfig(17, active_high, pull, HOLD),
               LEAVE: ButtonConfig(27, active_high, pull, HOLD * 2)}
    kwargs = {"clock": clock} if clock is not None else {}
    return ButtonPanel(configs, post=recorder, bounce_time=bounce, factory=factory,
                       pin_bounce=True, **kwargs)


def press(factory: MockFactory, pin: int, down: bool, active_high: bool = False) -> None:
    p = factory.pin(pin)
    if down == active_high:
        p.drive_high()
    else:
        p.drive_low()


# -- the pure detector ------------------------------------------------------------------------

def run(det: PressDetector, edges: list[tuple[float, bool]], end: float) -> list[ButtonPressed]:
    """Feed edges in time order, polling at every deadline in between, as the ticker does."""
    out: list[ButtonPressed] = []

    def until(t: float) -> None:
        while (due := det.deadline()) is not None and due <= t:
            ev = det.poll(due)
            if ev is not None:
                out.append(ev)

    for t, level in edges:
        until(t)
        det.edge(level, t)
    until(end)
    return out


def test_short_press_is_reported_once_after_the_release_settles() -> None:
    det = PressDetector(MUTE, bounce=0.05, hold=2.0)
    events = run(det, [(1.0, True), (1.3, False)], end=10.0)
    assert [(e.button, e.long, e.at) for e in events] == [(MUTE, False, pytest.approx(1.35))]
    assert det.phase is Phase.UP


def test_long_press_is_reported_when_the_hold_time_is_reached_not_on_release() -> None:
    det = PressDetector(LEAVE, bounce=0.05, hold=5.0)
    events = run(det, [(1.0, True), (9.0, False)], end=20.0)
    assert [(e.long, e.at) for e in events] == [(True, pytest.approx(6.0))]


def test_chatter_inside_a_hold_does_not_restart_it_or_add_presses() -> None:
    det = PressDetector(MUTE, bounce=0.05, hold=2.0)
    edges = [(1.0, True), (1.5, False), (1.51, True), (1.52, False), (1.53, True), (4.0, False)]
    assert [e.long for e in run(det, edges, end=10.0)] == [True]


def test_late_poll_still_classifies_by_how_long_the_button_was_down() -> None:
    det = PressDetector(MUTE, bounce=0.05, hold=2.0)
    det.edge(True, 1.0)
    det.edge(False, 3.5)  # the ticker never got to the 3.0 deadline
    ev = det.poll(4.0)
    assert ev is not None and ev.long


press_shape = st.tuples(
    st.lists(st.floats(0.0001, 0.009), min_size=0, max_size=40),  # chatter gaps on press
    st.one_of(st.floats(0.06, 1.5), st.floats(2.5, 6.0)),  # time held down
    st.lists(st.floats(0.0001, 0.009), min_size=0, max_size=40),  # chatter gaps on release
    st.floats(0.06, 3.0),  # quiet time before the next press
)


@settings(max_examples=300, deadline=None)
@given(st.lists(press_shape, min_size=1, max_size=8))
def test_any_bounce_gives_exactly_one_event_per_physical_press(presses: list) -> None:
    det = PressDetector(MUTE, bounce=0.05, hold=2.0)
    edges: list[tuple[float, bool]] = []
    t, expected = 10.0, []
    for press_gaps, held, release_gaps, quiet in presses:
        level = True
        edges.append((t, level))
        start = t
        for gap in press_gaps:  # ends wherever the chatter leaves it, then settles down
            t += gap
            level = not level
            edges.append((t, level))
        if not level:
            t += 0.001
            edges.append((t, True))
        t = start + held
        level = False
        edges.append((t, level))
        for gap in release_gaps:
            t += gap
            level = not level
            edges.append((t, level))
        if level:
            t += 0.001
            edges.append((t, False))
        expected.append(held >= 2.0)
        t += quiet
    events = run(det, edges, end=t + 10)
    assert [e.long for e in events] == expected


# -- through gpiozero's mock pins ---------------------------------------------------------------

def test_short_and_long_presses_through_mock_pins(factory: MockFactory,
                                                  recorder: Recorder) -> None:
    p = panel(factory, recorder)
    try:
        press(factory, 17, True)
        press(factory, 17, False)
        assert recorder.wait_for(1)
        press(factory, 17, True)
        assert recorder.wait_for(2)  # the long press arrives while the button is still down
        assert p.device(MUTE).is_pressed
        press(factory, 17, False)
        assert wait_until(p.idle)
        assert [(e.button, e.long) for e in recorder.events] == [(MUTE, False), (MUTE, True)]
    finally:
        p.close()


def test_active_high_button_with_pull_down(factory: MockFactory, recorder: Recorder) -> None:
    p = panel(factory, recorder, pull="down")
    try:
        press(factory, 27, True, active_high=True)
        press(factory, 27, False, active_high=True)
        assert recorder.wait_for(1)
        assert [(e.button, e.long) for e in recorder.events] == [(LEAVE, False)]
    finally:
        p.close()


@pytest.mark.parametrize("ends_down", [False, True])
def test_a_thousand_bounce_edges_make_one_event(factory: MockFactory, recorder: Recorder,
                                                ends_down: bool) -> None:
    clock = FakeClock()
    p = panel(factory, recorder, clock=clock, bounce=0.05)
    try:
        pin = factory.pin(17)
        for i in range(1000):  # 10 us apart on the injected clock: a 10 ms burst of chatter
            if i % 2 == 0:
                pin.drive_low()
            else:
                pin.drive_high()
            clock.advance(0.00001)
        if ends_down:
            pin.drive_low()  # edge 1001: the chatter ends with the contact closed
        assert p.device(MUTE).is_pressed is ends_down
        clock.advance(HOLD + 1.0)  # past the hold time (and the release settling)
        p.wake()
        assert recorder.wait_for(1)
        if ends_down:
            pin.drive_high()
            clock.advance(1.0)
            p.wake()
        assert wait_until(p.idle)
        assert not recorder.wait_for(2, timeout=0.2)
        assert [(e.button, e.long) for e in recorder.events] == [(MUTE, ends_down)]
    finally:
        p.close()


def test_button_held_at_start_up_is_not_a_press(factory: MockFactory,
                                                recorder: Recorder) -> None:
    factory.pin(17).drive_low()  # before the Button exists: pulled up later, so drive after
    p = panel(factory, recorder)
    try:
        factory.pin(17).drive_low()
        factory.pin(17).drive_high()
        assert recorder.wait_for(1)
        assert len(recorder.events) == 1
    finally:
        p.close()


def test_close_is_idempotent_and_stops_events(factory: MockFactory, recorder: Recorder) -> None:
    p = panel(factory, recorder)
    p.close()
    p.close()
    assert recorder.events == []
