"""LEDs: patterns rendered on gpiozero mock pins, applied only on change, lamp test, close."""

from __future__ import annotations

from gpio_support import wait_until
from gpiozero.pins.mock import MockFactory

from appliance.devices.leds import LedPanel, make_output
from appliance.devices.profiles import LedKind, LedSpec
from appliance.indicators import (
    MUTE_ON,
    OFF,
    QUALITY_PATTERNS,
    Colour,
    LedName,
    blink,
    flashes,
    on,
    pulse,
)
from appliance.session.model import Quality


def single(pin: int, active_high: bool = True, pwm: bool = True) -> LedSpec:
    return LedSpec(LedKind.SINGLE, (("pin", pin),), active_high, pwm)


def levels(factory: MockFactory, pin: int) -> list[float]:
    return [float(s.state) for s in factory.pin(pin).states]


def test_on_off_and_only_on_change(factory: MockFactory) -> None:
    panel = LedPanel({LedName.MUTE: make_output(single(23), factory)})
    try:
        panel.show({LedName.MUTE: MUTE_ON})
        panel.show({LedName.MUTE: MUTE_ON})  # same pattern: nothing is written again
        panel.show({LedName.MUTE: OFF})
        assert levels(factory, 23) == [0.0, 1.0, 0.0]
        assert panel.shown == {LedName.MUTE: OFF}
    finally:
        panel.close()


def test_active_low_led_is_lit_by_a_low_pin(factory: MockFactory) -> None:
    panel = LedPanel({LedName.MUTE: make_output(single(23, active_high=False), factory)})
    try:
        panel.show({LedName.MUTE: MUTE_ON})
        assert factory.pin(23).state == 0.0
        panel.show({LedName.MUTE: OFF})
        assert factory.pin(23).state == 1.0
    finally:
        panel.close()


def test_blink_uses_gpiozero_background_blink(factory: MockFactory) -> None:
    panel = LedPanel({LedName.STATUS: make_output(single(22, pwm=False), factory)})
    try:
        panel.show({LedName.STATUS: blink(0.02, 0.02)})
        assert wait_until(lambda: len(factory.pin(22).states) >= 7)
        seen = levels(factory, 22)[:7]
        assert seen == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
        panel.show({LedName.STATUS: OFF})
        assert factory.pin(22).state == 0
    finally:
        panel.close()


def test_flashes_play_count_flashes_then_a_pause(factory: MockFactory) -> None:
    panel = LedPanel({LedName.STATUS: make_output(single(22), factory)})
    try:
        pattern = flashes(3)
        panel.show({LedName.STATUS: pattern})
        # one cycle = 3 x (0.2 on + 0.2 off) + 1.2 pause = 2.4 s; wait for the second group
        assert wait_until(lambda: levels(factory, 22).count(1.0) >= 4, timeout=6)
        states = factory.pin(22).states
        ons = [s for s in states[1:] if s.state == 1.0]
        offs = [s for s in states[1:] if s.state == 0.0]
        assert len(ons) >= 4 and len(offs) >= 3
        # the dark time before the 4th flash is the long pause, the others the short gaps
        gaps = [s.timestamp for s in states[1:] if s.state == 1.0][1:4]
        assert max(gaps[:2]) < 0.7 < gaps[2]  # 0.2 s gaps, then the 1.2 s pause
    finally:
        panel.close()


def test_pulse_fades_on_a_pwm_led(factory: MockFactory) -> None:
    panel = LedPanel({LedName.STATUS: make_output(single(22), factory)})
    try:
        panel.show({LedName.STATUS: pulse(0.2, 0.2)})
        assert wait_until(lambda: any(0 < lv < 1 for lv in levels(factory, 22)))
    finally:
        panel.close()


def test_rgb_led_shows_the_colour(factory: MockFactory) -> None:
    spec = LedSpec(LedKind.RGB, (("red", 5), ("green", 6), ("blue", 13)))
    panel = LedPanel({LedName.QUALITY: make_output(spec, factory)})
    try:
        panel.show({LedName.QUALITY: QUALITY_PATTERNS[Quality.POOR]})  # amber
        assert [factory.pin(p).state for p in (5, 6, 13)] == [1.0, 0.5, 0.0]
        panel.show({LedName.QUALITY: QUALITY_PATTERNS[Quality.EXCELLENT]})
        assert [factory.pin(p).state for p in (5, 6, 13)] == [0.0, 1.0, 0.0]
    finally:
        panel.close()
    assert all(factory.pin(p).states[-1].state == 0.0 for p in (5, 6, 13))


def test_traffic_light_lights_the_led_of_the_colour(factory: MockFactory) -> None:
    spec = LedSpec(LedKind.MULTI, (("red", 5), ("amber", 12), ("green", 16)))
    panel = LedPanel({LedName.QUALITY: make_output(spec, factory)})
    try:
        for quality, lit in ((Quality.EXCELLENT, 16), (Quality.POOR, 12)):
            panel.show({LedName.QUALITY: QUALITY_PATTERNS[quality]})
            assert {p: factory.pin(p).state for p in (5, 12, 16)} == {
                p: (1.0 if p == lit else 0.0) for p in (5, 12, 16)}
    finally:
        panel.close()


def test_two_led_board_shows_amber_as_red_and_green(factory: MockFactory) -> None:
    spec = LedSpec(LedKind.MULTI, (("red", 4), ("green", 17)))
    panel = LedPanel({LedName.STATUS: make_output(spec, factory)})
    try:
        panel.show({LedName.STATUS: on(Colour.AMBER)})
        assert (factory.pin(4).state, factory.pin(17).state) == (1.0, 1.0)
    finally:
        panel.close()


def test_lamp_test_lights_everything_then_shows_the_wanted_patterns(factory: MockFactory) -> None:
    panel = LedPanel({LedName.STATUS: make_output(single(22), factory),
                      LedName.MUTE: make_output(single(23), factory)})
    try:
        panel.lamp_test(1.5)
        assert factory.pin(22).state == 1.0 and factory.pin(23).state == 1.0
        panel.show({LedName.STATUS: OFF, LedName.MUTE: MUTE_ON})  # nothing live: deferred
        assert panel.lamp_test_running()
        assert factory.pin(22).state == 1.0
        assert wait_until(lambda: not panel.lamp_test_running(), timeout=10)
        assert (factory.pin(22).state, factory.pin(23).state) == (0.0, 1.0)
    finally:
        panel.close()


def test_lamp_test_ends_at_once_when_the_microphone_is_live(factory: MockFactory) -> None:
    panel = LedPanel({LedName.MUTE: make_output(single(23), factory)})
    try:
        panel.lamp_test(30.0)
        panel.show({LedName.MUTE: OFF})  # a mute LED that stays lit would lie about privacy
        assert not panel.lamp_test_running()
        assert factory.pin(23).state == 0.0
    finally:
        panel.close()


def test_close_turns_everything_off_and_is_idempotent(factory: MockFactory) -> None:
    panel = LedPanel({LedName.STATUS: make_output(single(22), factory),
                      LedName.CAMERA: make_output(single(24, pwm=False), factory)})
    panel.show({LedName.STATUS: blink(0.01, 0.01), LedName.CAMERA: on()})
    panel.close()
    panel.close()
    panel.show({LedName.CAMERA: on()})  # after close: ignored, no exception
    assert float(factory.pin(24).states[-1].state) == 0.0
    assert float(factory.pin(22).states[-1].state) == 0.0
