"""Benchmark the fleet service's housekeeping and login limits on SQLite and PostgreSQL.

Prints, per database:

- pruning: `--rows` audit rows past retention deleted by housekeeping passes (batches of 1,000):
  rows per second and each batch's transaction time p50/p99;
- the token endpoint's database work (`Store.issue`, one short transaction) p50/p99: `--count`
  sequential calls idle (the baseline), and as many as fit while the pruning runs beside it,
  with the ratio;
- a login's throttle work (`LoginThrottle.begin` + `failed`: two short transactions), p50/p99,
  beside one audit row insert (the baseline every login pays anyway), with the ratio.

Nothing is asserted: these are figures (a shared 2-core machine: compare ratios).

    .venv/bin/python bench/fleet_housekeeping_bench.py [--rows 50000] [--count 300] [--sqlite-only]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fleet"))

from pg import fresh_database, pg_bin, pg_cluster  # noqa: E402

from appliance.fleet.logins import Attempt, LoginPolicy, LoginThrottle  # noqa: E402
from appliance.fleet.service import FleetService, FleetSettings  # noqa: E402
from appliance.fleet.store import Audit, Store  # noqa: E402

DAY = 86400.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def timed(count: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    out = []
    for i in range(count):
        start = time.perf_counter()
        await call(i)
        out.append(time.perf_counter() - start)
    return out


def line(label: str, values: list[float], baseline: list[float] | None = None) -> str:
    text = f"  {label:<44} p50 {pct(values, 0.5):6.2f} ms  p99 {pct(values, 0.99):6.2f} ms"
    if baseline is not None:
        text += f"  ({pct(values, 0.5) / pct(baseline, 0.5):.2f}x p50)"
    return text


async def seed_audit(store: Store, rows: int, now: float) -> None:
    for start in range(0, rows, 5000):
        async with store.sessions.begin() as s:
            await s.execute(insert(Audit), [
                {"at": now - 200 * DAY + i, "action": "issue", "status": 200, "identity": "k",
                 "key_id": "", "actor": "", "remote": "", "detail": "old"}
                for i in range(start, min(rows, start + 5000))])


async def bench(url: str, label: str, rows: int, count: int) -> None:
    store = Store(url)
    await store.migrate()
    now = time.time()
    await store.enrol("kiosk-1", "lobby")
    device = await store.device("kiosk-1")
    assert device is not None
    await seed_audit(store, rows, now)
    service = FleetService(store, FleetSettings("ws://127.0.0.1:9", "k", "s" * 32,
                                                housekeeping_batches=1))

    async def issue(i: int) -> None:
        await store.issue(device.id, now=now + i, window=0.5, limit=10)

    idle = await timed(count, issue)
    batches: list[float] = []
    deleted = 0

    async def prune() -> None:
        nonlocal deleted
        while True:
            start = time.perf_counter()
            done = (await service.housekeep_once())["audit"]
            batches.append(time.perf_counter() - start)
            deleted += done
            if done == 0:
                return

    started = time.perf_counter()
    pruning = asyncio.create_task(prune())
    during: list[float] = []
    while not pruning.done():  # only calls made while the pruning runs
        start = time.perf_counter()
        await issue(count + len(during))
        during.append(time.perf_counter() - start)
    elapsed = time.perf_counter() - started

    throttle = LoginThrottle(store, LoginPolicy(pair_failures=10**9, name_failures=10**9,
                                                address_failures=10**9))

    async def login(i: int) -> None:
        attempt = await throttle.begin(f"user{i % 50}", f"10.0.{i % 7}.1", now + i)
        assert isinstance(attempt, Attempt)
        await throttle.failed(attempt, now + i)

    async def audit(i: int) -> None:
        await store.audit("login", status=401, actor=f"user{i % 50}", remote="10.0.0.1")

    audit_rows = await timed(count, audit)
    logins = await timed(count, login)
    await store.aclose()
    print(f"{label}:")
    print(f"  pruned {deleted:,} audit rows in {elapsed:.2f} s ({deleted / elapsed:,.0f} rows/s),"
          f" {len(batches)} batches")
    print(line("one batch of 1,000 (its transaction)", batches[:-1] or batches))
    print(line("Store.issue, idle (baseline)", idle))
    print(line(f"Store.issue, while pruning ({len(during)} calls)", during, idle))
    print(line("audit row insert (baseline)", audit_rows))
    print(line("login throttle: begin + failed", logins, audit_rows))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await bench(f"sqlite:///{tmp}/fleet.db", "SQLite", args.rows, args.count)
    if args.sqlite_only:
        return
    if pg_bin() is None:
        print("PostgreSQL: skipped (initdb/pg_ctl not installed)")
        return
    with pg_cluster() as server:
        url = await fresh_database(server, "fleet_housekeeping_bench")
        await bench(url, "PostgreSQL", args.rows, args.count)


if __name__ == "__main__":
    asyncio.run(main())
