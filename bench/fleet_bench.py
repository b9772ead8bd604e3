"""Benchmark the fleet token endpoint on SQLite and on PostgreSQL (a private cluster).

Prints, per database:

- token issue latency p50/p99 over `--count` sequential requests from enrolled devices: cold
  (each device's first request: one argon2id verify) and warm (the verified-key cache hit),
  with a baseline beside them: an aiohttp GET of /healthz on the same service (one query);
- a herd: `--devices` devices (default 1,000) all asking for a token at once, as after an
  outage: total time until the last answer, and how many were refused (status counts),
  once with the default global limit (200/s, burst 400, per instance) and once without it.

Devices share one argon2 hash of one secret (hashing 1,000 secrets would take the set-up
longer than the bench), but each has its own key id, so each still costs one full argon2
verify on its first request. Nothing is asserted: these are figures.

    .venv/bin/python bench/fleet_bench.py [--devices 1000] [--count 200] [--sqlite-only]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fleet"))

from pg import fresh_database, pg_bin, pg_cluster  # noqa: E402

from appliance.fleet import keys  # noqa: E402
from appliance.fleet.service import FleetService, FleetSettings  # noqa: E402
from appliance.fleet.store import Device, Store  # noqa: E402

KEY, SECRET = "benchkey", "bench-secret-0123456789abcdef0123456789abcdef"


async def enrol_many(store: Store, n: int) -> list[str]:
    """n devices sharing one hashed secret, each with its own key id; returns their keys."""
    _, key = keys.new_device_key()
    secret = key.split(".", 2)[2]
    hashed = keys.hash_secret(secret)
    now = time.time()
    out = []
    async with store.sessions.begin() as s:
        for i in range(n):
            key_id = f"{i:016x}"
            s.add(Device(identity=f"kiosk-{i:04d}", room=f"room-{i % 20}", display_name="",
                         profile="", enrolled_at=now, key_id=key_id, key_hash=hashed,
                         revoked=False, tokens_issued=0, rate_window_start=0.0,
                         rate_window_count=0, presence="unknown", participant_sid="",
                         state="", fault="", mic="", camera="", quality="", version="",
                         changed_at=now))
            out.append(f"fk1.{key_id}.{secret}")
    return out


async def serve(store: Store, **settings: Any) -> tuple[web.AppRunner, str]:
    options: dict[str, Any] = dict(livekit_url="ws://127.0.0.1:9", api_key=KEY,
                                   api_secret=SECRET, poll_interval=3600.0)
    options.update(settings)
    runner = web.AppRunner(FleetService(store, FleetSettings(**options)).app(),
                           access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def latency(url: str, store_keys: list[str], count: int) -> None:
    cold, warm, base = [], [], []
    async with aiohttp.ClientSession() as http:
        for i in range(count):
            key = store_keys[i]
            for sink in (cold, warm):
                t = time.perf_counter()
                async with http.post(f"{url}/token", json={},
                                     headers={"Authorization": f"Bearer {key}"}) as r:
                    await r.read()
                    assert r.status == 200, r.status
                sink.append(time.perf_counter() - t)
            t = time.perf_counter()
            async with http.get(f"{url}/healthz") as r:
                await r.read()
            base.append(time.perf_counter() - t)
    for name, xs in (("token, cold (argon2)", cold), ("token, warm (cache)", warm),
                     ("baseline GET /healthz", base)):
        print(f"  {name:<24} p50 {pct(xs, .5):7.1f} ms   p99 {pct(xs, .99):7.1f} ms")


async def herd(url: str, herd_keys: list[str]) -> None:
    codes: collections.Counter[int] = collections.Counter()
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn,
                                     timeout=aiohttp.ClientTimeout(total=600)) as http:
        async def one(key: str) -> None:
            try:
                async with http.post(f"{url}/token", json={},
                                     headers={"Authorization": f"Bearer {key}"}) as r:
                    await r.read()
                    codes[r.status] += 1
            except (aiohttp.ClientError, OSError):
                codes[0] += 1

        t = time.perf_counter()
        await asyncio.gather(*(one(k) for k in herd_keys))
        took = time.perf_counter() - t
    refused = sum(v for k, v in codes.items() if k != 200)
    print(f"    {len(herd_keys)} at once: {took:6.2f} s, issued {codes[200]}, "
          f"refused {refused} {dict(sorted(codes.items()))}")


async def run(url: str, label: str, devices: int, count: int) -> None:
    store = Store(url)
    await store.migrate()
    all_keys = await enrol_many(store, count + 2 * devices)
    print(f"{label}:")
    runner, base = await serve(store, device_limit=10_000, global_rate=1e9, global_burst=1e9)
    await latency(base, all_keys[:count], count)
    await runner.cleanup()
    print("  herd (each device's first request: one argon2 verify each):")
    for title, rate, burst, slice_ in (
            ("default global limit 200/s, burst 400", 200.0, 400.0, 0),
            ("no global limit", 1e9, 1e9, 1)):
        runner, base = await serve(store, global_rate=rate, global_burst=burst)
        print(f"   {title}:")
        start = count + slice_ * devices
        await herd(base, all_keys[start:start + devices])
        await runner.cleanup()
    await store.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        await run(f"sqlite:///{tmp}/fleet.db", "SQLite", args.devices, args.count)
    if args.sqlite_only:
        return
    if pg_bin() is None:
        print("PostgreSQL: skipped (initdb/pg_ctl not found; apt-get install postgresql)")
        return
    with pg_cluster() as server:
        url = await fresh_database(server, "fleet_bench")
        await run(url, "PostgreSQL", args.devices, args.count)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
