"""Session figures (median/p95): resume after a signalling drop, rejoin after outages, READY, CPU.

Run inside the test namespace (libwebrtc ignores loopback-only hosts):
    scripts/netns-run .venv/bin/python bench/session_bench.py [--runs 5] [--long-runs 1]
Every figure is bounded: each wait has a timeout and a failed run is reported, not retried.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from session_e2e_helpers import (  # noqa: E402
    IDENTITY,
    ROOM,
    e2e_config,
    on_air,
    running_session,
    server_tracks,
    wait_state,
)

from appliance.devserver import DevServer  # noqa: E402


def summary(name: str, values: list[float], unit: str = "s") -> None:
    if not values:
        print(f"{name:<44} no successful run")
        return
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(f"{name:<44} median {statistics.median(ordered):7.2f} {unit}   p95 {p95:7.2f} {unit}"
          f"   n={len(ordered)}")


async def packets(srv: Any, kind: str) -> int:
    stats = srv.track_stats(ROOM, IDENTITY, kind)
    return int(stats.packets) if stats is not None else 0


async def until(srv: Any, predicate: Callable[[], Any], within: float, what: str) -> None:
    await srv.wait_for(predicate, timeout=within, what=what)


async def flowing_again(srv: Any, within: float) -> None:
    """Fresh audio packets arriving at the double (hub state changes wake the wait)."""
    start = await packets(srv, "audio")
    deadline = time.monotonic() + within
    while await packets(srv, "audio") <= start + 10:
        if time.monotonic() > deadline:
            raise TimeoutError("media did not flow again")
        await asyncio.sleep(0.05)  # sampling cadence of a packet counter (bench only)


async def bench_signalling_drop(runs: int) -> list[float]:
    out: list[float] = []
    async with (DevServer(port=0, departure_timeout=5.0, ping_interval=2,
                          ping_timeout=6) as srv, running_session(e2e_config(srv)) as runner):
        await wait_state(runner, on_air, 20)
        await flowing_again(srv, 15)
        for _ in range(runs):
            t0 = time.monotonic()
            await srv.faults.close_sockets(IDENTITY)
            try:
                await wait_state(runner, on_air, 30)
                await flowing_again(srv, 30)
            except TimeoutError:
                continue
            out.append(time.monotonic() - t0)
    return out


async def bench_outage(seconds: float, runs: int) -> list[float]:
    out: list[float] = []
    for _ in range(runs):
        async with (DevServer(port=0, departure_timeout=5.0, ping_interval=2,
                              ping_timeout=6) as srv,
                    running_session(e2e_config(srv)) as runner):
            await wait_state(runner, on_air, 20)
            old = set(server_tracks(srv))
            srv.faults.reject(503, seconds)
            await srv.faults.forget()  # the server restarts and stays away for `seconds`
            back = time.monotonic() + seconds

            def republished(old: set[str] = old, srv: Any = srv) -> bool:
                now = set(server_tracks(srv))
                return len(now) == 2 and not now & old

            try:
                await until(srv, republished, seconds + 40, "republished")
                await flowing_again(srv, 20)
            except TimeoutError:
                continue
            out.append(time.monotonic() - back)
    return out


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks."""
    return sum(int(x) for x in Path(f"/proc/{pid}/stat").read_text().split()[13:15])


def _notify_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    return sock


async def bench_ready_and_cpu(runs: int, cpu_window: float) -> tuple[list[float], list[float]]:
    ready: list[float] = []
    cpu: list[float] = []
    tick = os.sysconf("SC_CLK_TCK")
    async with DevServer(port=0, departure_timeout=5.0, ping_interval=2, ping_timeout=6) as srv:
        for i in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                from test_session_process import write_config

                cfg = write_config(Path(tmp), srv)
                sock = _notify_socket(Path(tmp) / "n.sock")
                sock.setblocking(False)
                env = dict(os.environ, NOTIFY_SOCKET=str(Path(tmp) / "n.sock"))
                t0 = time.monotonic()
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "appliance", "run", "--config", str(cfg), env=env,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                loop = asyncio.get_running_loop()
                got: list[str] = []
                try:
                    async with asyncio.timeout(60):
                        while "READY=1" not in got:
                            got.append((await loop.sock_recv(sock, 4096)).decode())
                    ready.append(time.monotonic() - t0)
                    if i == 0:  # idle CPU once in the room (no media: the supervisor alone)
                        async with asyncio.timeout(30):
                            while not any("in room" in m for m in got):
                                got.append((await loop.sock_recv(sock, 4096)).decode())
                        a = await asyncio.to_thread(cpu_ticks, proc.pid)
                        w0 = time.monotonic()
                        await asyncio.sleep(cpu_window)  # the measurement window itself
                        b = await asyncio.to_thread(cpu_ticks, proc.pid)
                        cpu.append(100.0 * (b - a) / tick / (time.monotonic() - w0))
                except TimeoutError:
                    pass
                finally:
                    proc.terminate()
                    await proc.wait()
                    sock.close()
    return ready, cpu


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="repeats of the quick figures")
    parser.add_argument("--long-runs", type=int, default=1, help="repeats of the 70 s outage")
    parser.add_argument("--cpu-window", type=float, default=10.0)
    args = parser.parse_args()
    if os.environ.get("APPLIANCE_NETNS") != "1":
        print("run me inside scripts/netns-run (libwebrtc needs a non-loopback interface)")
        return 2
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("livekit").setLevel(logging.CRITICAL)  # the SDK narrates every retry
    ready, cpu = await bench_ready_and_cpu(args.runs, args.cpu_window)
    summary("exec -> READY=1", ready)
    summary("idle CPU of `appliance run` in a room", cpu, "%")
    summary("signalling drop -> media flowing again", await bench_signalling_drop(args.runs))
    summary("10 s outage: server back -> republished", await bench_outage(10.0, args.runs))
    if args.long_runs:
        summary("70 s outage: server back -> republished",
                await bench_outage(70.0, args.long_runs))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
