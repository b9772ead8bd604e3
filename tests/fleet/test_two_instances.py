"""Two service instances sharing one PostgreSQL: no state of their own outside the database."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from fleet_support import start_service

from appliance.fleet.store import Store


@pytest.fixture
async def pair(pg_url: str) -> AsyncIterator[tuple[Store, Store]]:
    a, b = Store(pg_url), Store(pg_url)
    await asyncio.gather(a.migrate(), b.migrate())  # both start at once: one migrates
    yield a, b
    await a.aclose()
    await b.aclose()


async def test_two_instances_share_registry_revocation_and_rate_limits(
        pair: tuple[Store, Store]) -> None:
    a, b = pair
    assert await a.schema_version() == await b.schema_version() == "0002"
    one, two = (await start_service(a, device_limit=3), await start_service(b, device_limit=3))
    try:
        key = await a.enrol("kiosk-1", "lobby")
        headers = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession() as http:
            statuses = []
            for url in (one.token_url, two.token_url, one.token_url, two.token_url):
                async with http.post(url, headers=headers, json={}) as resp:
                    statuses.append(resp.status)
            assert statuses == [200, 200, 200, 429]  # one per-device window across both
            await b.revoke("kiosk-1")
            for url in (one.token_url, two.token_url):
                async with http.post(url, headers=headers, json={}) as resp:
                    assert resp.status == 403
        issued = [a.action for a in await a.audit_rows(identity="kiosk-1")]
        assert issued.count("issue") == 3 and issued.count("refuse") == 3
    finally:
        await one.runner.cleanup()
        await two.runner.cleanup()


async def test_two_instances_count_failed_logins_together(pair: tuple[Store, Store]) -> None:
    a, b = pair
    await a.set_operator("alice", "correct horse")
    one, two = await start_service(a), await start_service(b)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            statuses = []
            for n in range(6):  # alternating instances, as behind a load balancer
                url = (one, two)[n % 2].url
                async with http.get(f"{url}/login") as resp:
                    csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
                    assert csrf is not None
                async with http.post(f"{url}/login", allow_redirects=False,
                                     data={"csrf": csrf.group(1), "name": "alice",
                                           "password": "wrong password"}) as resp:
                    statuses.append(resp.status)
            assert statuses == [303] * 5 + [429]
    finally:
        await one.runner.cleanup()
        await two.runner.cleanup()
