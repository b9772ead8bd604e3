"""Fleet test helpers the tests import (fixtures stay in conftest.py): a running service, a wall."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from appliance.fleet.service import FleetService, FleetSettings
from appliance.fleet.store import Store

API_KEY, API_SECRET = "fleetkey", "fleet-test-secret-0123456789abcdef0123456789"


class Running:
    """A fleet service on a free 127.0.0.1 port."""

    def __init__(self, service: FleetService, runner: Any, url: str) -> None:
        self.service, self.runner, self.url = service, runner, url
        self.store = service.store

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"


class Wall:
    """A wall clock the test moves (sessions, login limits, audit retention)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))  # whole seconds: Retry-After values are exact

    def __call__(self) -> float:
        return self.now


async def start_service(store: Store, wall: Callable[[], float] = time.time,
                        **settings: Any) -> Running:
    from aiohttp import web

    options: dict[str, Any] = dict(livekit_url="ws://127.0.0.1:9", api_key=API_KEY,
                                   api_secret=API_SECRET, poll_interval=3600.0,
                                   housekeeping_interval=3600.0)
    options.update(settings)
    service = FleetService(store, FleetSettings(**options), wall=wall)
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return Running(service, runner, f"http://127.0.0.1:{port}")
