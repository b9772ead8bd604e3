"""Fleet fixtures: a store on SQLite and on a private PostgreSQL, a running fleet service."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pg import fresh_database, pg_bin, pg_cluster

from appliance.fleet.service import FleetService, FleetSettings
from appliance.fleet.store import Store

API_KEY, API_SECRET = "fleetkey", "fleet-test-secret-0123456789abcdef0123456789"
_names = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    if pg_bin() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are missing: apt-get install "
                    "postgresql (scripts/bootstrap installs it)")
    with pg_cluster() as url:
        yield url


@pytest.fixture
async def pg_url(pg_server: str) -> str:
    return await fresh_database(pg_server, f"fleet_{next(_names)}")


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fleet.db'}"
    else:
        url = await fresh_database(request.getfixturevalue("pg_server"),
                                   f"fleet_{next(_names)}")
    s = Store(url)
    await s.migrate()
    yield s
    await s.aclose()


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


@pytest.fixture
async def fleet(store: Store) -> AsyncIterator[Running]:
    running = await start_service(store)
    yield running
    await running.runner.cleanup()
