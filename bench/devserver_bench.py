"""Benchmark the SDK against the test double: connect time, first media, client CPU.

Prints, as the median of --runs runs: `connect()` time, first decoded audio and video at the
double (from the moment publishing starts), and the SDK client's CPU (one core = 100 %) while it
publishes 640x480@30 stamped video plus 48 kHz audio. The client runs in its own process so
its CPU is measured alone. Runs itself inside scripts/netns-run (media needs the namespace).

    .venv/bin/python bench/devserver_bench.py [--runs 5] [--cpu-seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def client(url: str, token: str, warmup: float, seconds: float) -> None:
    """Child process: connect, publish, report timings, then measure own CPU."""
    from livekit import rtc

    from appliance.devserver.sdkfeed import feed_pattern, feed_tone

    t0 = time.monotonic()
    room = rtc.Room()
    await room.connect(url, token)
    connected = time.monotonic()
    audio = rtc.AudioSource(48000, 1)
    video = rtc.VideoSource(640, 480)

    published = time.monotonic()
    tasks = [asyncio.create_task(feed_tone(audio, 440.0)),
             asyncio.create_task(feed_pattern(video, 640, 480, 30))]
    await room.local_participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("mic", audio),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
    await room.local_participant.publish_track(
        rtc.LocalVideoTrack.create_video_track("cam", video),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA))
    print(json.dumps({"connect_s": connected - t0, "published_at": published}), flush=True)
    await asyncio.sleep(warmup)
    cpu0, wall0 = os.times(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, wall1 = os.times(), time.monotonic()
    used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    print(json.dumps({"cpu_pct": 100 * used / (wall1 - wall0)}), flush=True)
    for task in tasks:
        task.cancel()
    await room.disconnect()


async def run_once(index: int, cpu_seconds: float) -> dict[str, float]:
    from appliance.devserver import DevServer

    async with DevServer(port=0) as srv:
        room = f"bench-{index}"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--client", srv.url, srv.mint_token("bench", room),
            "--cpu-seconds", str(cpu_seconds), stdout=subprocess.PIPE)
        assert proc.stdout is not None
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        audio = await srv.wait_for(lambda: (s := srv.track_stats(room, "bench", "audio"))
                                   and s.audio.first_frame_at, timeout=20, what="audio")
        video = await srv.wait_for(lambda: (s := srv.track_stats(room, "bench", "video"))
                                   and s.video.first_frame_at, timeout=20, what="video")
        stats = srv.track_stats(room, "bench", "video")  # kept: the client leaves at the end
        second = json.loads(await asyncio.wait_for(proc.stdout.readline(), cpu_seconds + 30))
        await asyncio.wait_for(proc.wait(), 30)
        latency = stats.video.latency_ms if stats is not None else None
        return {
            "connect_s": first["connect_s"],
            "first_audio_s": audio - first["published_at"],
            "first_video_s": video - first["published_at"],
            "client_cpu_pct": second["cpu_pct"],
            "video_latency_ms": latency if latency is not None else float("nan"),
        }


async def bench(runs: int, cpu_seconds: float) -> None:
    results: list[dict[str, float]] = []
    for i in range(runs):
        result = await run_once(i, cpu_seconds)
        results.append(result)
        print(f"run {i + 1}/{runs}: " + ", ".join(f"{k}={v:.3f}" for k, v in result.items()),
              file=sys.stderr)
    print(f"median of {runs} runs (SDK livekit vs appliance devserver, inside netns):")
    labels = {
        "connect_s": ("connect()", "s"),
        "first_audio_s": ("first decoded audio at the double after publish", "s"),
        "first_video_s": ("first decoded video at the double after publish", "s"),
        "client_cpu_pct": ("SDK client CPU, 640x480@30 + 48 kHz audio", "% of one core"),
        "video_latency_ms": ("stamped capture-to-decode latency at the double", "ms"),
    }
    for key, (label, unit) in labels.items():
        values = [r[key] for r in results]
        print(f"  {label:50s} {statistics.median(values):8.3f} {unit}  "
              f"(min {min(values):.3f}, max {max(values):.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cpu-seconds", type=float, default=5.0)
    parser.add_argument("--client", nargs=2, metavar=("URL", "TOKEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        asyncio.run(client(args.client[0], args.client[1], 2.0, args.cpu_seconds))
        return 0
    if os.environ.get("APPLIANCE_NETNS") != "1":
        netns = ROOT / "scripts" / "netns-run"
        return subprocess.call([str(netns), sys.executable, __file__, *sys.argv[1:]])
    asyncio.run(bench(args.runs, args.cpu_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
