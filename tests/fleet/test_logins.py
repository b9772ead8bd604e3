"""Login throttling in the database, on SQLite and PostgreSQL: the scopes, the window, the
trusted pair, concurrency, unlock and pruning."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select

from appliance.fleet.logins import Attempt, LoginPolicy, LoginThrottle, Refused, Scope
from appliance.fleet.store import LoginLimit, Store

POLICY = LoginPolicy(pair_failures=5, name_failures=8, address_failures=12, window=900.0,
                     trust=86400.0)


async def fail(throttle: LoginThrottle, name: str, remote: str, now: float) -> list[Scope]:
    attempt = await throttle.begin(name, remote, now)
    assert isinstance(attempt, Attempt), attempt
    return await throttle.failed(attempt, now)


async def succeed(throttle: LoginThrottle, name: str, remote: str, now: float) -> None:
    attempt = await throttle.begin(name, remote, now)
    assert isinstance(attempt, Attempt), attempt
    await throttle.succeeded(attempt, now)


async def failures(store: Store, scope: Scope, name: str, remote: str) -> int:
    async with store.sessions() as s:
        row = (await s.execute(select(LoginLimit).where(
            LoginLimit.scope == scope.value, LoginLimit.name == name,
            LoginLimit.remote == remote))).scalar_one()
        return row.failures


async def test_five_failures_block_the_pair_for_the_window(store: Store) -> None:
    throttle, t0 = LoginThrottle(store, POLICY), time.time()
    blocked = [await fail(throttle, "alice", "10.0.0.1", t0 + i) for i in range(5)]
    assert blocked == [[], [], [], [], [Scope.PAIR]]
    refused = await throttle.begin("alice", "10.0.0.1", t0 + 10)
    assert isinstance(refused, Refused) and refused.scope is Scope.PAIR
    assert refused.retry_after == pytest.approx(894.0)  # 900 s from the 5th failure
    # another address is not held to this pair's block
    assert isinstance(await throttle.begin("alice", "10.0.0.2", t0 + 10), Attempt)
    assert isinstance(await throttle.begin("alice", "10.0.0.1", t0 + 904), Attempt)


async def test_failures_spread_beyond_the_window_never_block(store: Store) -> None:
    throttle, t0 = LoginThrottle(store, POLICY), time.time()
    for i in range(4):
        assert await fail(throttle, "alice", "10.0.0.1", t0 + i) == []
    for i in range(4):  # a new window: the count starts again
        assert await fail(throttle, "alice", "10.0.0.1", t0 + 901 + i) == []
    assert await failures(store, Scope.PAIR, "alice", "10.0.0.1") == 4


async def test_concurrent_guesses_cannot_pass_the_limit(store: Store) -> None:
    throttle, now = LoginThrottle(store, POLICY), time.time()
    results = await asyncio.gather(*(throttle.begin("alice", "10.0.0.9", now)
                                      for _ in range(20)))
    assert sum(isinstance(r, Attempt) for r in results) == 5
    assert all(r.scope is Scope.PAIR for r in results if isinstance(r, Refused))


async def test_a_success_clears_the_pair_and_gives_back_its_count(store: Store) -> None:
    throttle, t0 = LoginThrottle(store, POLICY), time.time()
    for i in range(4):
        await fail(throttle, "alice", "10.0.0.1", t0 + i)
    await succeed(throttle, "alice", "10.0.0.1", t0 + 5)
    assert await failures(store, Scope.PAIR, "alice", "10.0.0.1") == 0
    assert await failures(store, Scope.NAME, "alice", "") == 4  # the 4 failures, not the login
    assert await failures(store, Scope.ADDRESS, "", "10.0.0.1") == 4


async def test_strangers_failures_on_a_name_spare_its_operators_usual_address(
        store: Store) -> None:
    throttle, t0 = LoginThrottle(store, POLICY), time.time()
    await succeed(throttle, "alice", "10.0.0.1", t0)  # alice works from here
    blocked = [await fail(throttle, "alice", f"198.51.100.{i}", t0 + 1) for i in range(8)]
    assert blocked[-1] == [Scope.NAME] and not any(blocked[:-1])
    refused = await throttle.begin("alice", "198.51.100.200", t0 + 2)  # anyone else: refused
    assert isinstance(refused, Refused) and refused.scope is Scope.NAME
    await succeed(throttle, "alice", "10.0.0.1", t0 + 3)  # alice at her desk: let in
    # ... and still held to her own pair's limit there
    for i in range(5):
        await fail(throttle, "alice", "10.0.0.1", t0 + 4 + i)
    refused = await throttle.begin("alice", "10.0.0.1", t0 + 10)
    assert isinstance(refused, Refused) and refused.scope is Scope.PAIR
    # without the trust (unlocking her address forgot it) the name's block holds her too
    await throttle.unlock("10.0.0.1")
    assert isinstance(await throttle.begin("alice", "10.0.0.1", t0 + 20), Refused)


async def test_one_address_trying_many_names_is_blocked(store: Store) -> None:
    throttle, t0 = LoginThrottle(store, POLICY), time.time()
    for i in range(12):
        await fail(throttle, f"user{i}", "203.0.113.5", t0 + i)
    refused = await throttle.begin("somebody", "203.0.113.5", t0 + 20)
    assert isinstance(refused, Refused) and refused.scope is Scope.ADDRESS
    assert isinstance(await throttle.begin("somebody", "203.0.113.6", t0 + 20), Attempt)


async def test_unlock_and_pruning(store: Store) -> None:
    throttle, t0 = LoginThrottle(store, POLICY), time.time()
    for i in range(5):
        await fail(throttle, "bob", "10.0.0.3", t0 + i)
    await succeed(throttle, "carol", "10.0.0.4", t0)
    assert isinstance(await throttle.begin("bob", "10.0.0.3", t0 + 10), Refused)
    assert await throttle.unlock("bob") == 2  # bob's pair and name rows (not the address's)
    assert isinstance(await throttle.begin("bob", "10.0.0.3", t0 + 10), Attempt)
    with pytest.raises(ValueError, match="operator name or an address"):
        await throttle.unlock("")
    # windows over: all but carol's trusted pair go; after the trust, that too
    assert [await store.prune_login_limits(t0 + 2000, batch=2) for _ in range(4)] == [
        2, 2, 1, 0]
    async with store.sessions() as s:
        left = (await s.execute(select(LoginLimit.scope, LoginLimit.name))).all()
    assert [tuple(r) for r in left] == [("name+address", "carol")]
    assert await store.prune_login_limits(t0 + 86400 + 1, batch=10) == 1
