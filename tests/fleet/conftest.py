"""Fleet fixtures: a store on SQLite and on a private PostgreSQL, a running fleet service."""

from __future__ import annotations

import itertools
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_support import Running, start_service
from pg import fresh_database, pg_bin, pg_cluster

from appliance.fleet.store import Store

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


@pytest.fixture
async def fleet(store: Store) -> AsyncIterator[Running]:
    running = await start_service(store)
    yield running
    await running.runner.cleanup()
