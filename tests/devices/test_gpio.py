"""GPIO front end: every shipped profile on the mock factory, press -> event, state -> LEDs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from gpio_support import Recorder, wait_until
from gpiozero.pins.mock import MockFactory

from appliance.config import Config, GpioConfig
from appliance.devices.gpio import GpioFrontEnd, make_pin_factory
from appliance.devices.profiles import load_profile
from appliance.errors import ConfigError, DeviceError
from appliance.indicators import LedName, indicators
from appliance.session.model import ButtonName, RoomState, State, TrackKind, TrackState
from appliance.session.stall import Progress, StallWatch

HOLDS = {ButtonName.MUTE: 0.2, ButtonName.LEAVE: 0.3}


def front(name: str, factory: MockFactory, recorder: Recorder, lamp: float = 0.0) -> GpioFrontEnd:
    return GpioFrontEnd(load_profile(name), post=recorder, factory=factory, bounce_time=0.02,
                        holds=HOLDS, lamp_test=lamp)


@pytest.mark.parametrize("name", ["default", "jam-hat", "traffic-hat"])
def test_profile_opens_presses_and_lights(name: str, factory: MockFactory,
                                          recorder: Recorder) -> None:
    gpio = front(name, factory, recorder)
    try:
        for i, button in enumerate(gpio.buttons):
            gpio.drive(button, True)
            gpio.drive(button, False)
            assert recorder.wait_for(i + 1)
            assert recorder.events[i].button is button and not recorder.events[i].long
        state = State(room=RoomState.CONNECTED, microphone=TrackState.PUBLISHED, mic_muted=True)
        assert gpio.show(state) == indicators(state)
        mute = gpio.profile.led(LedName.MUTE)
        assert mute is not None
        pin = factory.pin(mute.pins[0][1])
        assert pin.state == (1.0 if mute.active_high else 0.0)  # muted: the mute LED is lit
        mic = TrackKind.MICROPHONE
        heard = StallWatch().arm(mic, 0.0).observe(mic, 1.0, Progress(1, 1), True).observe(
            mic, 2.0, Progress(2, 2), True)  # unmuted and proven flowing: the room hears it
        gpio.show(dataclasses.replace(state, mic_muted=False, stall=heard))
        assert pin.state == (0.0 if mute.active_high else 1.0)
    finally:
        gpio.close()
        gpio.close()


def test_hold_low_pins_are_driven_low(factory: MockFactory, recorder: Recorder) -> None:
    gpio = front("traffic-hat", factory, recorder)
    try:
        assert factory.pin(5).function == "output" and factory.pin(5).state == 0
    finally:
        gpio.close()


def test_long_press_through_the_front_end(factory: MockFactory, recorder: Recorder) -> None:
    gpio = front("default", factory, recorder)
    try:
        gpio.drive(ButtonName.LEAVE, True)
        assert recorder.wait_for(1)
        gpio.drive(ButtonName.LEAVE, False)
        assert wait_until(gpio.button_panel.idle)
        assert [(e.button, e.long) for e in recorder.events] == [(ButtonName.LEAVE, True)]
    finally:
        gpio.close()


def test_lamp_test_at_start_then_all_off_on_close(factory: MockFactory,
                                                  recorder: Recorder) -> None:
    gpio = front("default", factory, recorder, lamp=5.0)
    pins = [pin for _, spec in gpio.profile.leds for _, pin in spec.pins]
    assert all(factory.pin(p).state == 1.0 for p in pins)
    gpio.close()
    assert all(float(factory.pin(p).states[-1].state) == 0.0 for p in pins)


def test_pin_conflict_is_a_device_error_and_closes_what_was_opened(
        factory: MockFactory, recorder: Recorder, tmp_path: Path) -> None:
    from gpiozero import LED

    squatter = LED(27, pin_factory=factory)  # the leave button's pin is taken
    try:
        with pytest.raises(DeviceError, match="buttons"):
            front("default", factory, recorder)
        again = LED(22, pin_factory=factory)  # the status LED pin was released again
        again.close()
    finally:
        squatter.close()


def test_from_config_uses_profile_factory_and_holds(recorder: Recorder) -> None:
    cfg = Config(gpio=GpioConfig(profile="default", pin_factory="mock", mute_hold=0.2,
                                 bounce_time=0.01))
    gpio = GpioFrontEnd.from_config(cfg, recorder, lamp_test=0)
    try:
        assert gpio.mock and gpio.button_panel.config(ButtonName.MUTE).hold == 0.2
    finally:
        gpio.close()


def test_from_config_with_a_bad_profile_is_a_config_error(recorder: Recorder) -> None:
    with pytest.raises(ConfigError):
        GpioFrontEnd.from_config(Config(gpio=GpioConfig(profile="nope", pin_factory="mock")),
                                 recorder)


def test_missing_lgpio_is_a_clear_device_error() -> None:
    with pytest.raises(DeviceError, match="pin factory 'lgpio' is not available"):
        make_pin_factory("lgpio")
