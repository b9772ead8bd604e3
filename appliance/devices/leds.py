"""LEDs: render indicator Patterns on gpiozero LED/PWMLED/RGBLED with their own blink threads."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from itertools import cycle
from typing import Any, Protocol

from gpiozero import LED, PWMLED, RGBLED

from appliance.devices.profiles import LedKind, LedSpec
from appliance.indicators import OFF, Colour, LedName, Pattern, Shape

log = logging.getLogger(__name__)

# FLASHES has no gpiozero method: it plays through the device's `source` thread, one value per
# step. Every FLASHES time is a multiple of this (see indicators.flashes).
STEP = 0.1
LAMP_TEST = Pattern(Shape.ON, Colour.WHITE)


def _steps(pattern: Pattern) -> list[float]:
    levels: list[float] = []
    for level, seconds in pattern.timeline():
        levels += [level] * max(1, round(seconds / STEP))
    return levels


def _render(device: Any, pattern: Pattern, rgb: tuple[float, float, float] | None) -> None:
    """Show `pattern` on one gpiozero device; rgb is the colour for an RGBLED, else None."""
    device.source = None  # stop a FLASHES source thread before anything else writes the pin
    shape = pattern.shape
    on_value: Any = rgb if rgb is not None else 1
    colour_kw: dict[str, Any] = {"on_color": rgb} if rgb is not None else {}
    if shape is Shape.OFF:
        device.off()
    elif shape is Shape.ON:
        device.value = on_value
    elif shape is Shape.BLINK or (shape is Shape.PULSE and isinstance(device, LED)):
        # A plain (non-PWM) LED cannot fade: a pulse becomes a slow blink of the same period.
        device.blink(on_time=pattern.on_time, off_time=pattern.off_time, **colour_kw)
    elif shape is Shape.PULSE:
        device.pulse(fade_in_time=pattern.on_time, fade_out_time=pattern.off_time, **colour_kw)
    else:
        off_value: Any = (0.0, 0.0, 0.0) if rgb is not None else 0
        values = [on_value if level else off_value for level in _steps(pattern)]
        device.off()
        device.source_delay = STEP
        device.source = cycle(values)


class Output(Protocol):
    def show(self, pattern: Pattern) -> None: ...

    def close(self) -> None: ...

    def devices(self) -> Iterator[Any]: ...


class SingleOutput:
    """One LED (PWMLED when `pwm`, so PULSE can fade); colour is ignored."""

    def __init__(self, spec: LedSpec, factory: Any) -> None:
        cls = PWMLED if spec.pwm else LED
        self._led: Any = cls(spec.pin("pin"), active_high=spec.active_high, pin_factory=factory)

    def show(self, pattern: Pattern) -> None:
        _render(self._led, pattern, None)

    def devices(self) -> Iterator[Any]:
        yield self._led

    def close(self) -> None:
        self._led.close()


class RgbOutput:
    def __init__(self, spec: LedSpec, factory: Any) -> None:
        self._led: Any = RGBLED(spec.pin("red"), spec.pin("green"), spec.pin("blue"),
                                active_high=spec.active_high, pwm=spec.pwm, pin_factory=factory)
        self._pwm = spec.pwm

    def show(self, pattern: Pattern) -> None:
        rgb = pattern.colour.rgb
        if not self._pwm:  # a non-PWM RGBLED takes only 0 or 1 per channel
            rgb = (float(rgb[0] > 0), float(rgb[1] > 0), float(rgb[2] > 0))
        _render(self._led, pattern, rgb)

    def devices(self) -> Iterator[Any]:
        yield self._led

    def close(self) -> None:
        self._led.close()


# Which of a traffic light's LEDs show a colour. Red + green lit together read as amber on
# two-LED boards; blue has no LED, so it falls back to green (the shape still tells it apart).
_MULTI = {
    Colour.RED: ({"red"}, {"red"}),
    Colour.AMBER: ({"amber"}, {"red", "green"}),
    Colour.GREEN: ({"green"}, {"green"}),
    Colour.BLUE: ({"green"}, {"green"}),
    Colour.WHITE: ({"red", "amber", "green"}, {"red", "green"}),
}


class MultiOutput:
    """Two or three separate LEDs (red, amber, green): the colour picks which ones light."""

    def __init__(self, spec: LedSpec, factory: Any) -> None:
        cls = PWMLED if spec.pwm else LED
        self._leds: dict[str, Any] = {}
        try:
            for role, pin in spec.pins:
                self._leds[role] = cls(pin, active_high=spec.active_high, pin_factory=factory)
        except BaseException:
            self.close()
            raise

    def show(self, pattern: Pattern) -> None:
        with_amber, without = _MULTI[pattern.colour]
        lit = with_amber if "amber" in self._leds else without
        for role, led in self._leds.items():
            _render(led, pattern if role in lit else OFF, None)

    def devices(self) -> Iterator[Any]:
        yield from self._leds.values()

    def close(self) -> None:
        for led in self._leds.values():
            led.close()


def make_output(spec: LedSpec, factory: Any) -> Output:
    if spec.kind is LedKind.SINGLE:
        return SingleOutput(spec, factory)
    if spec.kind is LedKind.RGB:
        return RgbOutput(spec, factory)
    return MultiOutput(spec, factory)


class LedPanel:
    """Applies indicator patterns to outputs, only on change; lamp test; all off on close."""

    def __init__(self, outputs: Mapping[LedName, Output]) -> None:
        self._outputs = dict(outputs)
        self._lock = threading.RLock()
        self._shown: dict[LedName, Pattern] = {}
        self._wanted: dict[LedName, Pattern] = {}
        self._lamp_timer: threading.Timer | None = None
        self._closed = False

    @property
    def shown(self) -> dict[LedName, Pattern]:
        with self._lock:
            return dict(self._shown)

    def show(self, patterns: Mapping[LedName, Pattern]) -> None:
        with self._lock:
            if self._closed:
                return
            self._wanted.update(patterns)
            if self._lamp_timer is not None:
                if not _reveals_live(patterns):
                    return  # applied when the lamp test ends
                self._end_lamp_test_locked()  # never hide that the room can hear or see you
                return
            self._apply_locked(patterns)

    def _apply_locked(self, patterns: Mapping[LedName, Pattern]) -> None:
        for name, pattern in patterns.items():
            output = self._outputs.get(name)
            if output is None or self._shown.get(name) == pattern:
                continue
            log.debug("led %s: %s -> %s", name.value,
                      self._shown[name].describe() if name in self._shown else "?",
                      pattern.describe())
            output.show(pattern)
            self._shown[name] = pattern

    def lamp_test(self, seconds: float) -> None:
        """All LEDs on for `seconds` (proves every LED works), then the latest wanted patterns."""
        with self._lock:
            if self._closed:
                return
            for name, output in self._outputs.items():
                output.show(LAMP_TEST)
                self._shown[name] = LAMP_TEST
            timer = threading.Timer(seconds, self._lamp_test_over)
            timer.daemon = True
            self._lamp_timer = timer
            timer.start()

    def _lamp_test_over(self) -> None:
        with self._lock:
            if self._lamp_timer is not None and not self._closed:
                self._end_lamp_test_locked()

    def _end_lamp_test_locked(self) -> None:
        if self._lamp_timer is not None:
            self._lamp_timer.cancel()
            self._lamp_timer = None
        wanted = {name: self._wanted.get(name, OFF) for name in self._outputs}
        self._apply_locked(wanted)

    def lamp_test_running(self) -> bool:
        with self._lock:
            return self._lamp_timer is not None

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._lamp_timer is not None:
                self._lamp_timer.cancel()
                self._lamp_timer = None
            for name, output in self._outputs.items():
                try:
                    output.show(OFF)
                    output.close()
                except OSError as exc:  # keep closing the others; the chip may be gone
                    log.warning("closing LED %s: %s", name.value, exc)
            self._shown.clear()


def _reveals_live(patterns: Mapping[LedName, Pattern]) -> bool:
    """The mute LED off or the camera LED lit: media is going out, so show it at once."""
    return patterns.get(LedName.MUTE) == OFF or patterns.get(LedName.CAMERA, OFF) != OFF
