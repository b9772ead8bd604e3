"""GPIO latency bench: mock pin edge -> ButtonPressed posted, and -> mute LED pin change.

Runs in-process on gpiozero's MockFactory with the real ButtonPanel, LedPanel and indicators,
and a minimal asyncio consumer standing in for the runner (the machine is not involved: its
transition is pure and measured by the session's own bench). Prints p50/p99 in milliseconds, with
baselines measured in the same run: a bare thread wake-up (Condition notify -> waiter) and a bare
`call_soon_threadsafe` hop into the loop. A release is only final once the pin has been quiet
for `bounce_time`, so edge -> event is reported both raw and beyond that window.

    .venv/bin/python bench/gpio_bench.py [--n 200] [--bounce 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.devices.gpio import GpioFrontEnd
from appliance.devices.profiles import load_profile
from appliance.session.model import (
    ButtonName,
    ButtonPressed,
    RoomState,
    State,
    TrackState,
)

MUTE_LED = 23  # hardware/default.toml


class TimedPin(MockPWMPin):
    """A mock pin that notes when its output last changed (perf_counter) and wakes a waiter."""

    def __init__(self, factory: Any, info: Any) -> None:
        super().__init__(factory, info)
        self.changed_at = 0.0
        self.changed = threading.Event()

    def _change_state(self, value: Any) -> bool:
        changed: bool = super()._change_state(value)
        if changed and self._function == "output":
            self.changed_at = time.perf_counter()
            self.changed.set()
        return changed


def pct(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):7.3f} ms   p99 {p99:7.3f} ms   (n={len(ms)})"


def baseline_thread_wake(n: int) -> list[float]:
    """Ping-pong: set an Event, the waiting thread notes how long it took to wake."""
    ping, pong = threading.Event(), threading.Event()
    sent: list[float] = []
    out: list[float] = []

    def waiter() -> None:
        for _ in range(n):
            if not ping.wait(5):
                return
            out.append(time.perf_counter() - sent[-1])
            ping.clear()
            pong.set()

    t = threading.Thread(target=waiter)
    t.start()
    for _ in range(n):
        pong.clear()
        sent.append(time.perf_counter())
        ping.set()
        if not pong.wait(5):
            break
    t.join(10)
    return out


async def run(n: int, bounce: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[ButtonPressed] = asyncio.Queue()
    posted_at: list[float] = []

    def post(ev: Any) -> None:  # what Runner.post does from a foreign thread
        posted_at.append(time.perf_counter())
        loop.call_soon_threadsafe(queue.put_nowait, ev)

    factory = MockFactory(pin_class=TimedPin)
    gpio = GpioFrontEnd(load_profile("default"), post=post, factory=factory, bounce_time=bounce,
                        holds={ButtonName.MUTE: 2.0, ButtonName.LEAVE: 5.0}, lamp_test=0)
    state = State(room=RoomState.CONNECTED, microphone=TrackState.PUBLISHED)
    gpio.show(state)
    led: TimedPin = factory.pin(MUTE_LED)
    button_pin = factory.pin(17)
    to_event, beyond, to_led, show_only, hop = [], [], [], [], []
    try:
        # Baseline: a bare call_soon_threadsafe hop from a thread into this loop.
        for _ in range(n):
            t0 = time.perf_counter()
            await asyncio.to_thread(loop.call_soon_threadsafe, queue.put_nowait, None)  # type: ignore[arg-type]
            await queue.get()
            hop.append(time.perf_counter() - t0)
        for _ in range(n):
            led.changed.clear()
            button_pin.drive_low()  # pressed (active-low, pull-up)
            button_pin.drive_high()  # released: final once quiet for `bounce`
            released = time.perf_counter()
            ev = await asyncio.wait_for(queue.get(), 5)
            assert isinstance(ev, ButtonPressed) and not ev.long
            to_event.append(posted_at[-1] - released)
            beyond.append(posted_at[-1] - released - bounce)
            # The runner's part, minimally: new observed state -> indicators -> LEDs.
            state = dataclasses.replace(state, mic_muted=not state.mic_muted)
            t_show = time.perf_counter()
            gpio.show(state)
            show_only.append(led.changed_at - t_show)
            assert led.changed.wait(5)
            to_led.append(led.changed_at - released)
    finally:
        gpio.close()
        factory.close()
    wake = await asyncio.to_thread(baseline_thread_wake, n)
    print(f"gpio bench: MockFactory, bounce_time {bounce * 1000:g} ms, {n} presses")
    print(f"  baseline thread wake-up (notify -> waiter)    {pct(wake)}")
    print(f"  baseline thread -> loop hop (call_soon_threadsafe) {pct(hop)}")
    print(f"  release edge -> ButtonPressed posted (raw)    {pct(to_event)}")
    print(f"  ... beyond the {bounce * 1000:g} ms debounce window          {pct(beyond)}")
    print(f"  state -> mute LED pin change (show())         {pct(show_only)}")
    print(f"  release edge -> mute LED pin change (total)   {pct(to_led)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="presses (bounded)")
    parser.add_argument("--bounce", type=float, default=0.01, help="bounce_time in seconds")
    args = parser.parse_args()
    asyncio.run(run(max(10, min(args.n, 5000)), args.bounce))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
