"""GPIO front end: pin factory choice, buttons and LEDs of a board profile, mock pin driving."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from gpiozero import DigitalOutputDevice
from gpiozero.exc import GPIOZeroError

from appliance.devices.buttons import ButtonConfig, ButtonPanel, Clock, Post
from appliance.devices.leds import LedPanel, Output, make_output
from appliance.devices.profiles import BoardProfile, load_profile
from appliance.errors import DeviceError
from appliance.indicators import LedName, Pattern, indicators
from appliance.session.model import ButtonName, State

if TYPE_CHECKING:
    from appliance.config import Config, PinFactory

log = logging.getLogger(__name__)

LAMP_TEST_SECONDS = 1.0


def make_pin_factory(kind: PinFactory) -> Any:
    """auto: gpiozero's own choice (honours GPIOZERO_PIN_FACTORY); lgpio: Pi 5; mock: tests."""
    try:
        if kind == "mock":
            from gpiozero.pins.mock import MockFactory, MockPWMPin

            # MockPWMPin so PWMLED and RGBLED (pulse, colour) work on the mock too.
            return MockFactory(pin_class=MockPWMPin)
        if kind == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory()
        from gpiozero import Device

        # gpiozero's documented default order (lgpio, rpigpio, pigpio, native), without
        # installing it as the process-wide Device.pin_factory.
        return Device._default_pin_factory()
    except ImportError as exc:
        hint = " (install the `pi` extra: pip install 'room-kiosk-appliance[pi]')" if (
            kind == "lgpio") else ""
        raise DeviceError(f"GPIO pin factory {kind!r} is not available: {exc}{hint}") from exc
    except (GPIOZeroError, OSError) as exc:
        raise DeviceError(f"GPIO pin factory {kind!r} failed to start: {exc} "
                          "(is this a Raspberry Pi, and may this user open /dev/gpiochip*?)"
                          ) from exc


def is_mock(factory: Any) -> bool:
    from gpiozero.pins.mock import MockFactory

    return isinstance(factory, MockFactory)


def _stable_level_bounce(factory: Any) -> bool:
    # lgpio's debounce reports a level only once it has been stable; the mock ignores bounce.
    return type(factory).__name__ in ("LGPIOFactory", "MockFactory")


class GpioFrontEnd:
    """The kiosk's buttons and LEDs: posts ButtonPressed events, shows indicators(state)."""

    def __init__(
        self,
        profile: BoardProfile,
        *,
        post: Post,
        factory: Any,
        bounce_time: float = 0.05,
        holds: dict[ButtonName, float] | None = None,
        lamp_test: float = LAMP_TEST_SECONDS,
        clock: Clock = time.monotonic,
        own_factory: bool = False,
    ) -> None:
        holds = holds or {ButtonName.MUTE: 2.0, ButtonName.LEAVE: 5.0}
        self.profile = profile
        self.factory = factory
        self._own_factory = own_factory
        self._closed = False
        self._lock = threading.Lock()
        self._held_low: list[Any] = []
        self._buttons: ButtonPanel | None = None
        self._outputs: dict[LedName, Output] = {}
        self.leds = LedPanel({})
        try:
            for pin in profile.hold_low:
                self._held_low.append(self._open(
                    "hold_low", pin,
                    partial(DigitalOutputDevice, pin, initial_value=False, pin_factory=factory)))
            for name, spec in profile.leds:
                self._outputs[name] = self._open(
                    f"leds.{name.value}", spec.pins, partial(make_output, spec, factory))
            self.leds = LedPanel(self._outputs)
            configs = {
                name: ButtonConfig(spec.pin, spec.active_high, spec.pull, holds[name])
                for name, spec in profile.buttons
            }
            self._buttons = self._open("buttons", [b.pin for b in configs.values()], lambda: (
                ButtonPanel(configs, post=post, bounce_time=bounce_time, factory=factory,
                            pin_bounce=_stable_level_bounce(factory), clock=clock)))
            if lamp_test > 0:
                self.leds.lamp_test(lamp_test)
        except BaseException:
            self.close()
            raise
        log.info("gpio: profile %s (%s), pin factory %s", profile.name, profile.path,
                 type(factory).__name__)

    def _open(self, what: str, pins: object, make: Callable[[], Any]) -> Any:
        try:
            return make()
        except (GPIOZeroError, OSError, ValueError) as exc:
            raise DeviceError(f"board profile {self.profile.name} ({self.profile.path}): "
                              f"`{what}` on GPIO {pins}: {exc}") from exc

    @classmethod
    def from_config(cls, cfg: Config, post: Post, *, lamp_test: float = LAMP_TEST_SECONDS,
                    clock: Clock = time.monotonic) -> GpioFrontEnd:
        """Profile `gpio.profile`, factory `gpio.pin_factory`, hold and bounce times from cfg."""
        profile = load_profile(cfg.gpio.profile)
        factory = make_pin_factory(cfg.gpio.pin_factory)
        try:
            return cls(profile, post=post, factory=factory, bounce_time=cfg.gpio.bounce_time,
                       holds={ButtonName.MUTE: cfg.gpio.mute_hold,
                              ButtonName.LEAVE: cfg.gpio.leave_hold},
                       lamp_test=lamp_test, clock=clock, own_factory=True)
        except BaseException:
            factory.close()
            raise

    # -- indicators ------------------------------------------------------------------------

    def show(self, state: State) -> dict[LedName, Pattern]:
        """Derive the LED patterns from the observed state and apply those that changed."""
        patterns = indicators(state)
        self.leds.show(patterns)
        return patterns

    # -- buttons -----------------------------------------------------------------------------

    @property
    def mock(self) -> bool:
        return is_mock(self.factory)

    @property
    def buttons(self) -> list[ButtonName]:
        return self._buttons.names() if self._buttons is not None else []

    @property
    def button_panel(self) -> ButtonPanel:
        if self._buttons is None:
            raise DeviceError("no buttons are open")
        return self._buttons

    def drive(self, name: ButtonName, pressed: bool) -> None:
        """Move a mock button's pin to its pressed/released level (the whole gpiozero path)."""
        panel = self.button_panel
        if not self.mock:
            raise DeviceError("buttons can only be pressed remotely with the mock pin factory")
        if name not in panel.names():
            raise DeviceError(f"board profile {self.profile.name} has no {name.value} button")
        pin = panel.device(name).pin
        if pressed == panel.config(name).active_high:
            pin.drive_high()
        else:
            pin.drive_low()

    def close(self) -> None:
        """Buttons first (no more events), then every LED off and released; safe twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._buttons is not None:
            self._buttons.close()
        self.leds.close()
        for output in self._outputs.values():
            output.close()  # idempotent: LedPanel closed them already, unless it never existed
        for device in self._held_low:
            device.close()
        if self._own_factory:
            self.factory.close()
