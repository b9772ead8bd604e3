"""Buttons: gpiozero edges -> one ButtonPressed per physical press, posted thread-safely."""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gpiozero import Button

from appliance.session.model import ButtonName, ButtonPressed, Event

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Post = Callable[[Event], None]


class Phase(enum.Enum):
    UP = "up"  # released and settled
    DOWN = "down"  # pressed (chatter included); no event yet
    HELD = "held"  # the long press was reported; waiting for the release to settle


@dataclass
class PressDetector:
    """Pure debouncer: leading edge starts a press, a release counts once quiet for `bounce`.

    gpiozero's MockPin ignores bounce_time and RPi.GPIO's drops edges, so the one-event-per-press
    rule is enforced here, on timestamps, whatever the pin factory does.
    """

    button: ButtonName
    bounce: float
    hold: float
    phase: Phase = Phase.UP
    level: bool = False  # last raw level seen (True = pressed)
    press_at: float = 0.0
    last_edge: float = field(default=float("-inf"))

    def edge(self, active: bool, now: float) -> None:
        if active == self.level:
            return  # a repeat of the level we know (a reconciled read, or a duplicate callback)
        self.level = active
        self.last_edge = now
        if active and self.phase is Phase.UP:
            self.phase = Phase.DOWN
            self.press_at = now

    def deadline(self) -> float | None:
        if self.phase is Phase.UP:
            return None
        if not self.level:
            return self.last_edge + self.bounce  # release settles then
        return self.press_at + self.hold if self.phase is Phase.DOWN else None

    def poll(self, now: float) -> ButtonPressed | None:
        due = self.deadline()
        if due is None or now < due:
            return None
        if self.phase is Phase.DOWN and self.level:
            self.phase = Phase.HELD
            return ButtonPressed(at=now, button=self.button, long=True)
        was, self.phase = self.phase, Phase.UP  # the release has settled
        if was is Phase.HELD:
            return None  # reported when the hold time was reached
        # Classify by how long the pin was down: the ticker may have been late to the deadline.
        return ButtonPressed(at=now, button=self.button,
                             long=self.last_edge - self.press_at >= self.hold)


@dataclass(frozen=True)
class ButtonConfig:
    pin: int
    active_high: bool
    pull: str  # "up" | "down" | "none"
    hold: float


class ButtonPanel:
    """Owns the gpiozero Buttons and one thread that turns their edges into posted events."""

    def __init__(
        self,
        buttons: Mapping[ButtonName, ButtonConfig],
        *,
        post: Post,
        bounce_time: float,
        factory: object,
        pin_bounce: bool,
        clock: Clock = time.monotonic,
    ) -> None:
        self._post = post
        self._clock = clock
        self._cond = threading.Condition()
        self._closed = False
        self._configs = dict(buttons)
        self._detectors: dict[ButtonName, PressDetector] = {}
        self._devices: dict[ButtonName, Button] = {}
        self._posted: dict[ButtonName, int] = dict.fromkeys(buttons, 0)
        self._thread = threading.Thread(target=self._run, name="gpio-buttons", daemon=True)
        try:
            for name, cfg in buttons.items():
                self._detectors[name] = PressDetector(name, bounce_time, cfg.hold)
                self._devices[name] = self._make(name, cfg, bounce_time, factory, pin_bounce)
            self._thread.start()
        except BaseException:
            self.close()
            raise

    def _make(self, name: ButtonName, cfg: ButtonConfig, bounce: float, factory: object,
              pin_bounce: bool) -> Button:
        pull_up = {"up": True, "down": False, "none": None}[cfg.pull]
        device = Button(
            cfg.pin,
            pull_up=pull_up,
            active_state=cfg.active_high if pull_up is None else None,
            # Only factories whose bounce is a stable-level filter (lgpio) get it; an edge
            # lockout (RPi.GPIO) can swallow the final release and leave a button "held".
            bounce_time=bounce if pin_bounce else None,
            hold_time=cfg.hold,
            pin_factory=factory,
        )
        detector = self._detectors[name]
        detector.level = bool(device.is_active)  # a button held at start-up is not a press

        def pressed() -> None:
            self._edge(detector, True)

        def released() -> None:
            self._edge(detector, False)

        device.when_activated = pressed
        device.when_deactivated = released
        return device

    def _edge(self, detector: PressDetector, active: bool) -> None:
        # Runs on gpiozero's callback thread: record and wake the ticker, nothing more.
        with self._cond:
            detector.edge(active, self._clock())
            self._cond.notify()

    def _run(self) -> None:
        while True:
            events: list[ButtonPressed] = []
            with self._cond:
                if self._closed:
                    return
                now = self._clock()
                dues = [d for d in (det.deadline() for det in self._detectors.values())
                        if d is not None]
                if dues and min(dues) <= now:
                    for det in self._detectors.values():
                        self._reconcile(det, now)
                        ev = det.poll(now)
                        if ev is not None:
                            events.append(ev)
                            self._posted[ev.button] += 1
                    self._cond.notify_all()
                else:
                    self._cond.wait(None if not dues else min(dues) - now)
            for ev in events:
                log.info("button %s %s press", ev.button.value, "long" if ev.long else "short")
                try:
                    self._post(ev)
                except RuntimeError:  # the runner's loop is closed: we are shutting down
                    log.warning("button %s press dropped: runner gone", ev.button.value)

    def _reconcile(self, det: PressDetector, now: float) -> None:
        """At a deadline, trust the pin over the edges we saw (a factory may drop one)."""
        device = self._devices.get(det.button)
        if device is not None and not device.closed:
            det.edge(bool(device.is_active), now)

    def wake(self) -> None:
        """Re-check the deadlines now (tests and benches that inject the clock moved it)."""
        with self._cond:
            self._cond.notify_all()

    def idle(self) -> bool:
        """Every button released and settled: no press in progress."""
        with self._cond:
            return all(d.phase is Phase.UP for d in self._detectors.values())

    def posted(self, name: ButtonName) -> int:
        with self._cond:
            return self._posted.get(name, 0)

    def wait_posted(self, name: ButtonName, count: int, timeout: float) -> bool:
        """Block until `count` events for `name` were posted in total and its release settled.

        A hold is posted while the button is still down; waiting for the release too means a
        press that follows (the control socket's next request) is a new press, not chatter.
        """
        detector = self._detectors[name]
        with self._cond:
            return self._cond.wait_for(
                lambda: self._posted.get(name, 0) >= count and detector.phase is Phase.UP,
                timeout)

    def names(self) -> list[ButtonName]:
        return list(self._devices)

    def device(self, name: ButtonName) -> Button:
        return self._devices[name]

    def config(self, name: ButtonName) -> ButtonConfig:
        return self._configs[name]

    def close(self) -> None:
        with self._cond:
            already, self._closed = self._closed, True
            self._cond.notify_all()
        if already:
            return
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for name, device in self._devices.items():
            try:
                device.close()
            except OSError as exc:  # a vanished gpiochip must not stop the rest closing
                log.warning("closing button %s: %s", name.value, exc)
        self._devices.clear()
