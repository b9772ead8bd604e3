"""Benchmark the double's server side: RPC round trip, attribute propagation, webhook delay.

Two real SDK clients (`livekit.rtc.Room`) join one room of the double, all in this process.
Prints p50/p95 of, with a baseline measured in the same run beside each:

- RPC round trip (`perform_rpc`, request + ack + response) against a data-packet echo
  (alice -> bob -> alice over the same data channels);
- `set_attributes` -> the other participant's `participant_attributes_changed`, against a
  one-way data packet;
- webhook delivery (event at the double -> a loopback receiver accepted it), against a plain
  aiohttp POST to the same receiver.

Runs itself inside scripts/netns-run (the SDK's data channels need the namespace, as media does).

    .venv/bin/python bench/devserver_rpc_bench.py [--count 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(label: str, values: list[float], baseline: list[float], base_label: str) -> None:
    p50, p95 = statistics.median(values), pct(values, 0.95)
    b50, b95 = statistics.median(baseline), pct(baseline, 0.95)
    print(f"  {label:44s} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms")
    print(f"  {'  baseline: ' + base_label:44s} p50 {b50:7.2f} ms  p95 {b95:7.2f} ms"
          f"  (ratio p50 {p50 / b50:5.2f}x)")


async def timed(count: int, once: Callable[[int], Awaitable[None]]) -> list[float]:
    out: list[float] = []
    for i in range(count):
        t0 = time.perf_counter()
        await once(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def receiver() -> tuple[Any, str]:
    from aiohttp import web

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.add_routes([web.post("/hook", hook)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"


async def bench(count: int) -> None:
    import aiohttp
    from livekit import rtc

    from appliance.devserver import DevServer

    runner, url = await receiver()
    async with DevServer(port=0, webhook_urls=[url]) as srv:
        alice, bob = rtc.Room(), rtc.Room()
        joined = asyncio.Event()
        alice.on("participant_connected", lambda p: joined.set())
        await alice.connect(srv.url, srv.mint_token("alice", "bench",
                                                    can_update_own_metadata=True))
        await bob.connect(srv.url, srv.mint_token("bob", "bench"))
        await asyncio.wait_for(joined.wait(), 15)

        @bob.local_participant.register_rpc_method("echo")
        async def echo(data: rtc.RpcInvocationData) -> str:
            return data.payload

        at_alice: asyncio.Queue[bytes] = asyncio.Queue()
        at_bob: asyncio.Queue[float] = asyncio.Queue()

        replies: set[asyncio.Task[None]] = set()

        def bob_got(packet: rtc.DataPacket) -> None:
            at_bob.put_nowait(time.perf_counter())
            if packet.topic == "echo":
                task = asyncio.create_task(bob.local_participant.publish_data(
                    packet.data, topic="back", destination_identities=["alice"]))
                replies.add(task)
                task.add_done_callback(replies.discard)

        bob.on("data_received", bob_got)
        alice.on("data_received", lambda p: at_alice.put_nowait(p.data))
        attrs: asyncio.Queue[float] = asyncio.Queue()
        bob.on("participant_attributes_changed",
               lambda changed, p: attrs.put_nowait(time.perf_counter()))

        async def rpc(i: int) -> None:
            await alice.local_participant.perform_rpc(destination_identity="bob", method="echo",
                                                      payload=str(i))

        async def data_echo(i: int) -> None:
            await alice.local_participant.publish_data(str(i).encode(), topic="echo",
                                                       destination_identities=["bob"])
            await asyncio.wait_for(at_alice.get(), 10)
            await asyncio.wait_for(at_bob.get(), 10)

        one_way: list[float] = []
        attribute: list[float] = []
        for i in range(count):
            t0 = time.perf_counter()
            await alice.local_participant.publish_data(b"x", topic="oneway",
                                                       destination_identities=["bob"])
            one_way.append((await asyncio.wait_for(at_bob.get(), 10) - t0) * 1000)
            t0 = time.perf_counter()
            await alice.local_participant.set_attributes({"n": str(i)})
            attribute.append((await asyncio.wait_for(attrs.get(), 10) - t0) * 1000)
        rpcs = await timed(count, rpc)
        echoes = await timed(count, data_echo)

        # Webhooks: each far-end join or leave is one event, sent alone (no queue ahead of it).
        await srv.wait_for(lambda: not srv.hub.webhooks.busy(), timeout=30, what="webhooks idle")
        srv.hub.webhooks.deliveries.clear()
        for _ in range(max(10, count // 10)):
            far = await srv.add_far_end("bench", video=False)
            await srv.wait_for(lambda: not srv.hub.webhooks.busy(), timeout=30, what="idle")
            await far.leave()
            await srv.wait_for(lambda: not srv.hub.webhooks.busy(), timeout=30, what="idle")
        hooks = [(d.delivered_at - d.queued_at) * 1000 for d in srv.hub.webhooks.deliveries]
        async with aiohttp.ClientSession() as session:
            async def post(i: int) -> None:
                async with session.post(url, data=b"{}") as resp:
                    await resp.read()
            posts = await timed(len(hooks), post)
        await alice.disconnect()
        await bob.disconnect()
    await runner.cleanup()
    print(f"devserver server-side bench, {count} samples each (SDK clients and the double in one "
          "process, inside netns):")
    line("RPC round trip (perform_rpc)", rpcs, echoes, "data echo alice->bob->alice")
    line("set_attributes -> seen by the other", attribute, one_way, "one-way data packet")
    line("webhook event -> receiver accepted", hooks, posts, "bare aiohttp POST round trip")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    if os.environ.get("APPLIANCE_NETNS") != "1":
        netns = ROOT / "scripts" / "netns-run"
        return subprocess.call([str(netns), sys.executable, __file__, *sys.argv[1:]])
    asyncio.run(bench(args.count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
