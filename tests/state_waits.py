"""Waiting on a Runner's observed state, woken by its state changes (no polling, no sleeps)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from appliance.session.model import State
from appliance.session.runner import Runner


async def wait_state(runner: Runner, predicate: Callable[[State], bool],
                     within: float = 5.0) -> State:
    """Wait until predicate(runner.state) holds; TimeoutError after `within` seconds."""
    changed = asyncio.Event()
    remove = runner.add_listener(lambda _s: changed.set())
    try:
        async with asyncio.timeout(within):
            while not predicate(runner.state):
                changed.clear()
                await changed.wait()
    finally:
        remove()
    return runner.state
