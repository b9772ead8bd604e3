"""The kiosk's media layer publishing 720p30 + audio to the test double: CPU, loop lag, latency.

The double runs in this process; the kiosk (MediaManager with the test-pattern camera and the
tone microphone) runs in a child process so its CPU and its event loop are measured alone.
For each camera path (raw: VideoSource, libwebrtc encodes; h264: EncodedVideoSource fed by
libx264 here, by the Pi's hardware encoder on a Pi) it prints:
- kiosk process CPU (one core = 100 %), and for h264 the share spent inside libx264, so the
  Pi figure (hardware encoder, no CPU encode) can be read off as the difference;
- event-loop lag p99 of the kiosk's loop (target <= 10 ms);
- capture -> decoded-at-the-double latency p50/p95 from the frame stamps.
Runs itself inside scripts/netns-run (libwebrtc needs a non-loopback interface).

    .venv/bin/python bench/media_room_bench.py [--seconds 10] [--warmup 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def kiosk(url: str, token: str, encoding: str, warmup: float, seconds: float) -> None:
    """Child: MediaManager in a Room; reports CPU, encoder CPU and loop lag as JSON."""
    import numpy as np
    from livekit import rtc

    from appliance.config import AudioConfig, CameraConfig, Config, MicrophoneConfig, SpeakerConfig
    from appliance.media import MediaManager
    from appliance.media.encoded import SoftwareH264Camera

    cfg = Config(camera=CameraConfig(backend="test", width=1280, height=720, fps=30,
                                     encoding=encoding),  # type: ignore[arg-type]
                 microphone=MicrophoneConfig(backend="test"),
                 speaker=SpeakerConfig(backend="none"),
                 audio=AudioConfig(echo_cancellation=False))
    media = MediaManager(cfg)
    acquired = asyncio.Event()
    loop = asyncio.get_running_loop()

    def post(event: Any) -> None:
        loop.call_soon_threadsafe(lambda: acquired.set() if len(media.local_tracks()) == 2
                                  else None)

    await media.start(post)
    room = rtc.Room()
    await room.connect(url, token)
    await asyncio.wait_for(acquired.wait(), 20)
    for kind, track in media.local_tracks().items():
        await room.local_participant.publish_track(track, media.publish_options(kind))
    print(json.dumps({"published": True}), flush=True)

    lags: list[float] = []
    stop = asyncio.Event()

    def probe(due: float) -> None:
        now = loop.time()
        lags.append(now - due)
        if not stop.is_set():
            loop.call_at(now + 0.005, probe, now + 0.005)

    def window(length: float) -> asyncio.Event:
        ev = asyncio.Event()
        loop.call_later(length, ev.set)  # the measurement window (a timer, not a sync wait)
        return ev

    await window(warmup).wait()
    pipeline = media.camera.pipeline if media.camera else None
    device = pipeline.device if pipeline else None
    enc0 = device.encode_cpu_ns if isinstance(device, SoftwareH264Camera) else 0
    cpu0, wall0 = os.times(), time.monotonic()
    probe(loop.time())
    await window(seconds).wait()
    stop.set()
    cpu1, wall1 = os.times(), time.monotonic()
    enc1 = device.encode_cpu_ns if isinstance(device, SoftwareH264Camera) else 0
    wall = wall1 - wall0
    used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    print(json.dumps({"cpu_pct": 100 * used / wall, "encoder_pct": 100 * (enc1 - enc0) / 1e9
                      / wall, "lag_p99_ms": float(np.percentile(lags, 99)) * 1000,
                      "lag_max_ms": max(lags) * 1000,
                      "frames": pipeline.sent.count if pipeline else 0}), flush=True)
    await media.aclose()
    await room.disconnect()


async def run(encoding: str, warmup: float, seconds: float) -> dict[str, float]:
    import numpy as np

    from appliance.devserver import DevServer

    async with DevServer(port=0) as srv:
        room = f"bench-{encoding}"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--kiosk", srv.url, srv.mint_token("kiosk", room),
            encoding, str(warmup), str(seconds), stdout=subprocess.PIPE)
        assert proc.stdout is not None
        json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        result = json.loads(await asyncio.wait_for(proc.stdout.readline(), warmup + seconds
                                                   + 60))
        stats = srv.track_stats(room, "kiosk", "video")
        await asyncio.wait_for(proc.wait(), 30)
        lat = list(stats.video.latencies_ms) if stats is not None else []
        result.update(lat_p50_ms=float(np.percentile(lat, 50)) if lat else float("nan"),
                      lat_p95_ms=float(np.percentile(lat, 95)) if lat else float("nan"),
                      decoded=stats.video.frames if stats else 0,
                      size=f"{stats.video.width}x{stats.video.height}" if stats else "-")
        return result


async def bench(warmup: float, seconds: float) -> None:
    rows = {enc: await run(enc, warmup, seconds) for enc in ("raw", "h264")}
    print(f"kiosk publishing 1280x720@30 test pattern + 48 kHz tone, {seconds:g} s window:")
    print(f"{'path':>5} {'cpu %':>6} {'x264 %':>7} {'cpu-x264 %':>10} {'lag p99':>8} "
          f"{'lag max':>8} {'lat p50':>8} {'lat p95':>8} {'decoded':>8} {'size':>9}")
    for enc, r in rows.items():
        print(f"{enc:>5} {r['cpu_pct']:6.1f} {r['encoder_pct']:7.1f} "
              f"{r['cpu_pct'] - r['encoder_pct']:10.1f} {r['lag_p99_ms']:7.1f}ms "
              f"{r['lag_max_ms']:7.1f}ms {r['lat_p50_ms']:6.1f}ms {r['lat_p95_ms']:6.1f}ms "
              f"{r['decoded']:8d} {r['size']:>9}")
    raw, h264 = rows["raw"], rows["h264"]
    print(f"ratio h264/raw CPU: {h264['cpu_pct'] / raw['cpu_pct']:.2f} (libx264 in process); "
          f"without the encoder (Pi hardware H.264): "
          f"{(h264['cpu_pct'] - h264['encoder_pct']) / raw['cpu_pct']:.2f}")
    print("targets: loop lag p99 <= 10 ms")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--kiosk":
        url, token, encoding, warmup, seconds = sys.argv[2:7]
        asyncio.run(kiosk(url, token, encoding, float(warmup), float(seconds)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args()
    if os.environ.get("APPLIANCE_NETNS") != "1":
        netns = ROOT / "scripts" / "netns-run"
        return subprocess.call([str(netns), sys.executable, __file__, *sys.argv[1:]])
    asyncio.run(bench(args.warmup, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
