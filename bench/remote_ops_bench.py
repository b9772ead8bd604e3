"""Benchmark remote operations through the real kiosk: health attributes and operator RPCs.

The appliance's own kiosk (`build_kiosk`: real SDK, test-backend media, mock GPIO pins) joins a
room of the test double, with three plain SDK participants beside it, all in this process:

- an observer that watches `participant_attributes_changed`;
- an operator (`operator-bench`) that calls the kiosk's RPCs;
- a plain peer with an `echo` RPC handler that also sets an attribute of its own.

Prints p50/p95, each with a baseline measured in the same run:

- mute button (mock pin) -> the kiosk's state changes -> `kiosk.mic` as the observer sees it,
  measured from the state change. Twice: paced (the next press waits PACE s after the last
  change was seen, longer than the publisher's MIN_INTERVAL) and back to back (the next press
  at once, so the publisher's rate limit holds the update back). Baseline: a plain
  `set_attributes` -> seen by the observer;
- `perform_rpc` of `kiosk.status` and `kiosk.identify` on the kiosk; baseline: `perform_rpc`
  to the plain peer's echo handler.

Runs itself inside scripts/netns-run (the SDK's data channels need the namespace, as media does).

    .venv/bin/python bench/remote_ops_bench.py [--count 20] [--rpcs 100]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KIOSK, ROOM = "kiosk-bench", "bench"
PACE = 0.4  # > health.MIN_INTERVAL: a paced change never waits for the rate limit
WAIT = 20.0  # one change or one join, at most


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(label: str, values: list[float]) -> tuple[float, float]:
    p50, p95 = statistics.median(values), pct(values, 0.95)
    print(f"  {label:60s} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  (n={len(values)})")
    return p50, p95


def compare(label: str, values: list[float], *baselines: tuple[str, list[float]]) -> None:
    p50, _ = line(label, values)
    for base_label, baseline in baselines:
        b50, _ = line("  baseline: " + base_label, baseline)
        print(f"  {'':60s} ratio p50 {p50 / b50:6.2f}x")


class Watch:
    """Timestamps of what the bench waits for, each with an Event to wake the waiter."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, str]] = []  # observer: (time, kiosk.mic)
        self.states: list[tuple[float, str]] = []  # kiosk's own state: (time, kiosk.mic)
        self.peer: list[float] = []  # observer: the plain peer's attribute arrived
        self.woke = asyncio.Event()

    def note_state(self, word: str) -> None:
        if not self.states or self.states[-1][1] != word:
            self.states.append((time.perf_counter(), word))
            self.woke.set()

    def on_attributes(self, changed: dict[str, str], participant: Any) -> None:
        now = time.perf_counter()
        if participant.identity == KIOSK and "kiosk.mic" in changed:
            self.seen.append((now, changed["kiosk.mic"]))
        elif participant.identity == "peer" and "n" in changed:
            self.peer.append(now)
        self.woke.set()

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(WAIT):
                while not predicate():
                    self.woke.clear()
                    await self.woke.wait()
        except TimeoutError:
            raise SystemExit(f"remote_ops_bench: no {what} within {WAIT:g} s") from None


def kiosk_config(srv: Any, sock: Path) -> Any:
    from appliance.config import (
        CameraConfig,
        Config,
        ControlConfig,
        GpioConfig,
        LiveKitConfig,
        MicrophoneConfig,
        SpeakerConfig,
    )

    return Config(
        livekit=LiveKitConfig(url=srv.url, room=ROOM, identity=KIOSK, name="Bench kiosk",
                              api_key=srv.api_key, api_secret=srv.api_secret),
        camera=CameraConfig(backend="test", width=320, height=240, fps=15),
        microphone=MicrophoneConfig(backend="test"), speaker=SpeakerConfig(backend="none"),
        gpio=GpioConfig(profile="default", pin_factory="mock", bounce_time=0.02),
        control=ControlConfig(socket=sock))


async def mute_cycles(kiosk: Any, watch: Watch, count: int, pace: float) -> list[float]:
    """`count` mutes and unmutes by the mute button; state change -> observer saw it, in ms."""
    from appliance.session.model import ButtonName

    gpio = kiosk.gpio
    out: list[float] = []

    async def press(target: Callable[[str], bool], what: str) -> None:
        states, seen = len(watch.states), len(watch.seen)
        gpio.drive(ButtonName.MUTE, True)
        await asyncio.sleep(0.05)  # the press itself: a short one (the hold is 2 s)
        gpio.drive(ButtonName.MUTE, False)
        await watch.until(lambda: any(target(w) for _, w in watch.seen[seen:]), what)
        changed = next(t for t, w in watch.states[states:] if target(w))
        arrived = next(t for t, w in watch.seen[seen:] if target(w))
        out.append((arrived - changed) * 1000)

    for _ in range(count):
        await asyncio.sleep(pace)
        await press(lambda w: w == "muted", "kiosk.mic=muted after a press")
        await asyncio.sleep(pace)
        await press(lambda w: w != "muted", "kiosk.mic unmuted after a press")
        # Back to a live microphone (proven flowing) before the next cycle, each cycle alike.
        await watch.until(lambda: watch.seen[-1][1] == "live", "kiosk.mic=live")
    return out


async def peer_attribute(peer: Any, watch: Watch, value: str) -> float:
    """A plain participant's set_attributes -> the observer saw it, in ms."""
    before = len(watch.peer)
    t0 = time.perf_counter()
    await peer.local_participant.set_attributes({"n": value})
    await watch.until(lambda: len(watch.peer) > before, "peer attribute")
    return (watch.peer[before] - t0) * 1000


async def bench(count: int, rpcs: int) -> None:
    from livekit import rtc

    from appliance.devserver import DevServer
    from appliance.kiosk import build_kiosk
    from appliance.remote.health import MIN_INTERVAL, health_attributes
    from appliance.rtc.compat import release_handles
    from appliance.session.model import RoomState, StopRequested
    from appliance.systemd import Notifier

    watch = Watch()
    with tempfile.TemporaryDirectory(prefix="remote-ops-bench-") as tmp:
        async with DevServer(port=0) as srv:
            kiosk = build_kiosk(kiosk_config(srv, Path(tmp) / "control.sock"),
                                notifier=Notifier({}), devices=True)
            runner = kiosk.runner

            def on_state(state: Any) -> None:
                if state.room is RoomState.CONNECTED:
                    watch.note_state(health_attributes(state)["kiosk.mic"])

            runner.add_listener(on_state)
            task = asyncio.create_task(kiosk.run(), name="bench-kiosk")
            observer, operator, peer = rtc.Room(), rtc.Room(), rtc.Room()
            observer.on("participant_attributes_changed", watch.on_attributes)
            try:
                await observer.connect(srv.url, srv.mint_token("observer", ROOM))
                await operator.connect(srv.url, srv.mint_token("operator-bench", ROOM))
                await peer.connect(srv.url, srv.mint_token("peer", ROOM,
                                                           can_update_own_metadata=True))

                track = rtc.LocalAudioTrack.create_audio_track("mic", rtc.AudioSource(48000, 1))
                await peer.local_participant.publish_track(track)

                @peer.local_participant.register_rpc_method("echo")
                async def echo(data: rtc.RpcInvocationData) -> str:
                    return data.payload

                await watch.until(lambda: bool(watch.seen) and watch.seen[-1][1] == "live"
                                  and kiosk.gpio is not None, "live kiosk")
                paced = await mute_cycles(kiosk, watch, count, PACE)
                burst = await mute_cycles(kiosk, watch, count, 0.0)
                plain, with_mute = [], []
                for i in range(count * 2):
                    plain.append(await peer_attribute(peer, watch, f"plain-{i}"))
                    # What the kiosk does on a press: mute (or unmute) the track, then publish.
                    (track.unmute if i % 2 else track.mute)()
                    with_mute.append(await peer_attribute(peer, watch, f"muted-{i}"))

                async def timed(dest: str, method: str, payload: str) -> list[float]:
                    out = []
                    for _ in range(rpcs):
                        t0 = time.perf_counter()
                        await operator.local_participant.perform_rpc(
                            destination_identity=dest, method=method, payload=payload,
                            response_timeout=8)
                        out.append((time.perf_counter() - t0) * 1000)
                    return out

                echo_rtt = await timed("peer", "echo", "{}")
                status_rtt = await timed(KIOSK, "kiosk.status", "")
                identify_rtt = await timed(KIOSK, "kiosk.identify", '{"seconds": 1}')
                echo_rtt += await timed("peer", "echo", "{}")  # before and after: no drift
                updates = kiosk.health.updates if kiosk.health is not None else 0
            finally:
                for room in (observer, operator, peer):
                    await room.disconnect()
                    release_handles(room)
                runner.post(StopRequested(runner.clock(), "bench done"))
                async with asyncio.timeout(10):
                    await task
                gc.collect()
    print(f"remote operations through the real kiosk, {count} mute/unmute cycles per row, {rpcs} "
          "RPCs per method (kiosk, double and SDK clients in one process, inside netns):")
    bases = (("plain set_attributes -> seen", plain),
             ("plain track (un)mute + set_attributes -> seen", with_mute))
    compare(f"kiosk.mic: state change -> seen, paced ({PACE:g} s apart)", paced, *bases)
    compare("kiosk.mic: state change -> seen, back to back", burst, *bases)
    print(f"  (health publisher: at most one update per {MIN_INTERVAL * 1000:.0f} ms; "
          f"{updates} updates sent in the run)")
    echo = ("RPC to a plain echo handler", echo_rtt)
    compare("RPC kiosk.status round trip", status_rtt, echo)
    compare("RPC kiosk.identify round trip", identify_rtt, echo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="mute/unmute cycles per row")
    parser.add_argument("--rpcs", type=int, default=100, help="RPCs per method")
    args = parser.parse_args()
    if args.count < 1 or args.rpcs < 1:
        parser.error("--count and --rpcs must be at least 1")
    if os.environ.get("APPLIANCE_NETNS") != "1":
        netns = ROOT / "scripts" / "netns-run"
        return subprocess.call([str(netns), sys.executable, __file__, *sys.argv[1:]])
    asyncio.run(bench(args.count, args.rpcs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
