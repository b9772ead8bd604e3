"""Session plugin: serve the control socket for the running session."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from appliance.control import ControlError
from appliance.control.server import ControlServer
from appliance.devices.session_plugin import front_end_for

if TYPE_CHECKING:
    from appliance.session.runner import Runner

log = logging.getLogger(__name__)


async def attach(runner: Runner, stack: AsyncExitStack) -> None:
    # The test camera can be unplugged on request (the demo's `c` key); real ones cannot.
    simulate = getattr(runner.media, "simulate_camera", None)
    server = ControlServer(runner.cfg.control.socket, state=lambda: runner.state,
                           gpio=front_end_for(runner),
                           simulate_camera=simulate if runner.cfg.camera.backend == "test"
                           else None)
    try:
        await server.start()
    except ControlError as exc:
        # A convenience, not the kiosk's job: stay in the room without it, loudly.
        log.error("control socket unavailable: %s", exc)
        return
    stack.push_async_callback(server.aclose)
