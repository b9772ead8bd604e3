"""What far-end video costs a kiosk that has no display: bytes received and CPU, all vs audio only.

A room at the test double with two far ends, each a plain SDK participant publishing a moving
textured 640x480@30 picture and a tone. A kiosk-like subscriber (the real `LiveKitLink`, its
sink draining the remote audio as the speaker would) joins twice in the same run, each time
in a child process so its CPU is its own:
- baseline: `RoomOptions(auto_subscribe=True)`, the kiosk as it was: every track arrives (video
  is received and decoded, then ignored);
- kiosk: the link's own options (auto_subscribe off, remote audio subscribed, video never).
For each it prints the bytes the subscriber received per second (the SDK's RTC stats: RTP
payload by kind, and everything its ICE transport received), the frames it decoded, and its
process CPU (one core = 100 %), then the ratios kiosk/baseline. Runs itself inside
scripts/netns-run (libwebrtc needs a non-loopback interface).

    .venv/bin/python bench/farend_video_bench.py [--seconds 10] [--warmup 4]
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

WIDTH, HEIGHT, FPS = 640, 480, 30
FAR_ENDS = (("far-1", 500.0), ("far-2", 700.0))
ROOM = "farend-bench"


async def feed_texture(source: Any, width: int, height: int, fps: float) -> None:
    """A textured picture panning a few pixels a frame: an encoder has real work to do."""
    import numpy as np
    from livekit import rtc

    rng = np.random.default_rng(7)
    luma = rng.integers(40, 215, size=(height, width + 4 * int(fps)), dtype=np.uint8)
    chroma = np.full(2 * ((width + 1) // 2) * ((height + 1) // 2), 128, dtype=np.uint8)
    start, i = time.monotonic(), 0
    while True:
        x = (4 * i) % (luma.shape[1] - width)
        frame = np.concatenate([np.ascontiguousarray(luma[:, x : x + width]).ravel(), chroma])
        source.capture_frame(rtc.VideoFrame(width, height, rtc.VideoBufferType.I420,
                                            bytearray(frame.tobytes())))
        i += 1
        # A camera's frame clock: video sources have no back-pressure to pace us.
        await asyncio.sleep(max(0.0, start + i / fps - time.monotonic()))


async def publisher(url: str, token: str, hz: float, tasks: list[asyncio.Task[None]]) -> Any:
    """A far end: camera (textured 640x480@30, one layer) and microphone (a tone)."""
    from livekit import rtc

    from appliance.devserver.sdkfeed import feed_tone

    room = rtc.Room()
    await room.connect(url, token)
    video = rtc.VideoSource(WIDTH, HEIGHT)
    audio = rtc.AudioSource(48000, 1)
    tasks.append(asyncio.create_task(feed_texture(video, WIDTH, HEIGHT, FPS)))
    tasks.append(asyncio.create_task(feed_tone(audio, hz)))
    await room.local_participant.publish_track(
        rtc.LocalVideoTrack.create_video_track("cam", video),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False))
    await room.local_participant.publish_track(
        rtc.LocalAudioTrack.create_audio_track("mic", audio),
        rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
    return room


class AudioSink:
    """The link's RemoteTrackSink, playing nothing: remote audio is drained like the speaker."""

    def __init__(self) -> None:
        self.frames = 0
        self.tasks: list[asyncio.Task[None]] = []

    def plays_remote_audio(self) -> bool:
        return True

    def remote_track_subscribed(self, identity: str, track: Any) -> None:
        from livekit import rtc

        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self.tasks.append(asyncio.create_task(self._drain(track)))

    async def _drain(self, track: Any) -> None:
        from livekit import rtc

        async for _event in rtc.AudioStream.from_track(track=track, sample_rate=48000,
                                                       num_channels=1, frame_size_ms=10):
            self.frames += 1

    def remote_track_unsubscribed(self, identity: str, track: Any) -> None:
        pass

    def publish_options(self, kind: Any) -> Any:
        raise AssertionError("the subscriber publishes nothing")


def received(stats: Any) -> dict[str, int]:
    """Bytes and decoded frames from a room's RTC stats (every peer connection)."""
    out = {"audio": 0, "video": 0, "transport": 0, "video_frames": 0}
    for item in [*stats.publisher_stats, *stats.subscriber_stats]:
        which = item.WhichOneof("stats")
        if which == "inbound_rtp":
            kind = item.inbound_rtp.stream.kind
            if kind in ("audio", "video"):
                out[kind] += item.inbound_rtp.inbound.bytes_received
            if kind == "video":
                out["video_frames"] += item.inbound_rtp.inbound.frames_decoded
        elif which == "transport":
            out["transport"] += item.transport.transport.bytes_received
    return out


async def subscriber(url: str, token: str, mode: str, warmup: float, seconds: float) -> None:
    """Child: the kiosk's link joins; after the warm-up, one window of CPU and bytes (JSON)."""
    from livekit import rtc

    from appliance.rtc.livekit import LiveKitLink  # the product's own subscription logic

    sink = AudioSink()
    options = rtc.RoomOptions(auto_subscribe=True) if mode == "baseline" else None
    link = LiveKitLink(lambda _event: None, sink=sink, options=options)
    await link.connect(url, token)
    room = link.room
    assert room is not None
    loop = asyncio.get_running_loop()

    def window(length: float) -> asyncio.Event:
        ev = asyncio.Event()
        loop.call_later(length, ev.set)  # the measurement window (a timer, not a sync wait)
        return ev

    await window(warmup).wait()
    before, frames0 = received(await room.get_rtc_stats()), sink.frames
    cpu0, wall0 = os.times(), time.monotonic()
    await window(seconds).wait()
    cpu1, wall1 = os.times(), time.monotonic()
    after, frames1 = received(await room.get_rtc_stats()), sink.frames
    wall = wall1 - wall0
    used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    print(json.dumps({
        "cpu_pct": 100 * used / wall,
        **{f"{k}_Bps": (after[k] - before[k]) / wall for k in ("audio", "video", "transport")},
        "video_fps": (after["video_frames"] - before["video_frames"]) / wall,
        "audio_frames_ps": (frames1 - frames0) / wall}), flush=True)
    for task in sink.tasks:
        task.cancel()
    await asyncio.gather(*sink.tasks, return_exceptions=True)
    await link.aclose()


async def measure(srv: Any, mode: str, warmup: float, seconds: float) -> dict[str, Any]:
    identity = f"kiosk-{mode}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--subscriber", srv.url, srv.mint_token(identity, ROOM), mode,
        str(warmup), str(seconds), stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), warmup + seconds + 60)
    forwarded = sorted(f"{t.owner.identity}:{t.kind}" for t in
                       srv.participant(ROOM, identity).subscriptions.forwarded())
    await asyncio.wait_for(proc.wait(), 30)
    result: dict[str, Any] = json.loads(line)
    result["forwarded"] = forwarded  # what the double was sending it, as it measured
    return result


async def bench(warmup: float, seconds: float) -> None:
    from appliance.devserver import DevServer

    async with DevServer(port=0) as srv:
        tasks: list[asyncio.Task[None]] = []
        rooms = [await publisher(srv.url, srv.mint_token(name, ROOM), hz, tasks)
                 for name, hz in FAR_ENDS]
        await srv.wait_for(lambda: all(
            (s := srv.track_stats(ROOM, name, "video")) and s.video.frames >= 30
            for name, _ in FAR_ENDS), timeout=30, what="both far ends' video at the double")
        rows = {mode: await measure(srv, mode, warmup, seconds) for mode in ("baseline", "kiosk")}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for room in rooms:
            await room.disconnect()

    print(f"subscriber in a room with {len(FAR_ENDS)} far ends, each {WIDTH}x{HEIGHT}@{FPS} "
          f"video + audio; {seconds:g} s window after {warmup:g} s:")
    print(f"{'mode':>8} {'cpu %':>6} {'total kB/s':>10} {'video kB/s':>10} "
          f"{'audio kB/s':>10} {'video fps':>9} {'audio fr/s':>10}  forwarded by the double")
    for mode, r in rows.items():
        print(f"{mode:>8} {r['cpu_pct']:6.1f} {r['transport_Bps'] / 1000:10.1f} "
              f"{r['video_Bps'] / 1000:10.1f} {r['audio_Bps'] / 1000:10.1f} "
              f"{r['video_fps']:9.1f} {r['audio_frames_ps']:10.1f}  {', '.join(r['forwarded'])}")
    base, kiosk = rows["baseline"], rows["kiosk"]
    ratio = kiosk["transport_Bps"] / base["transport_Bps"]
    print(f"ratio kiosk/baseline: bytes received {ratio:.3f}, "
          f"CPU {kiosk['cpu_pct'] / base['cpu_pct']:.2f}")
    print("(baseline: auto_subscribe, every track received and video decoded; kiosk: the "
          "link's audio-only subscription; the far ends' audio reaches both.)")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--subscriber":
        url, token, mode, warmup, seconds = sys.argv[2:7]
        asyncio.run(subscriber(url, token, mode, float(warmup), float(seconds)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    args = parser.parse_args()
    if os.environ.get("APPLIANCE_NETNS") != "1":
        netns = ROOT / "scripts" / "netns-run"
        return subprocess.call([str(netns), sys.executable, __file__, *sys.argv[1:]])
    asyncio.run(bench(args.warmup, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
