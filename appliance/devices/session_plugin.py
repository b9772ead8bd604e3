"""Session plugin: open the board's buttons and LEDs, post presses, show indicators(state)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from appliance.devices.gpio import GpioFrontEnd
from appliance.errors import DeviceError

if TYPE_CHECKING:
    from appliance.session.model import State
    from appliance.session.runner import Runner

log = logging.getLogger(__name__)

# The control socket's plugin finds the front end here (it drives mock buttons through it).
_FRONT_ENDS: weakref.WeakKeyDictionary[Runner, GpioFrontEnd] = weakref.WeakKeyDictionary()


def front_end_for(runner: Runner) -> GpioFrontEnd | None:
    return _FRONT_ENDS.get(runner)


async def attach(runner: Runner, stack: AsyncExitStack) -> None:
    """Open GPIO (lamp test starts), follow every State, close it (LEDs off) on the way out."""
    try:
        gpio = await asyncio.to_thread(GpioFrontEnd.from_config, runner.cfg, runner.post)
    except DeviceError as exc:
        # The room matters more than the buttons: stay up, say so (a ConfigError still stops us).
        log.error("GPIO unavailable, running without buttons and LEDs: %s", exc)
        return
    _FRONT_ENDS[runner] = gpio

    async def close() -> None:
        _FRONT_ENDS.pop(runner, None)
        await asyncio.to_thread(gpio.close)

    stack.push_async_callback(close)
    # Listeners run on the loop thread; an unchanged pattern costs a dict compare, a changed one
    # a gpiozero call that starts or stops a blink thread (well under a millisecond).
    def follow(state: State) -> None:
        gpio.show(state)

    runner.add_listener(follow)
    follow(runner.state)
