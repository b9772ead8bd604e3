"""What the kiosk's media path costs a Pi: CPU per lane, where it goes, loop lag, latency, RSS.

The double runs in this process; the kiosk (MediaManager publishing into a real `rtc.Room`)
runs in a child process so its CPU and its event loop are measured alone. Lanes:

- `raw`: the picamera2 raw path (`Picamera2Raw` -> `VideoSource`, libwebrtc encodes), fed by
  the fake picamera2 module replaying test-pattern frames rendered ahead, at the sensor's rate;
- `h264`: the picamera2 hardware-encoder path (`Picamera2H264` -> `EncodedVideoSource`), fed by
  the same module replaying pre-encoded H.264 access units (Annex B, keyframe every 10 s as
  the kiosk configures the encoder, a forced keyframe restarts the clip at its IDR), with the
  encoder's timestamps. What a Pi pays above its hardware encoder;
- `pattern`: today's test camera (numpy test pattern, raw path) for comparison with older runs;
- `mic`, `mic+apm`: the microphone alone (test tone), with the audio processing off and on
  (echo cancellation, noise suppression, gain control, high-pass; a speaker on ALSA's `null`);
- `kiosk`: `h264` + `mic+apm`, the whole kiosk as a Pi runs it;
- `idle`: in the room with nothing published: the baseline each path's cost is read against.

The clip is generated once with PyAV (libx264, constrained baseline, the kiosk's starting
bitrate) and cached under build/bench-media/. Each lane prints the kiosk process CPU (one core
= 100 %) and its split by thread name (from /proc, so native libwebrtc/Rust threads show),
event-loop lag p99, capture -> decoded-at-the-double latency for stamped frames (pattern lane
only: replayed frames carry old stamps), frames and bytes the double decoded, and RSS.
`--profile` also samples each kiosk with py-spy and prints its hottest Python frames.
`--rss-minutes N` instead runs one lane for N minutes and prints RSS once a minute.
Runs itself inside scripts/netns-run (libwebrtc needs a non-loopback interface).

    .venv/bin/python bench/media_room_bench.py [--seconds 10] [--sizes 720,1080] [--profile]
    .venv/bin/python bench/media_room_bench.py --rss-minutes 10 --lane kiosk
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "media"))  # the fake picamera2 module

CACHE = ROOT / "build" / "bench-media"
FPS = 30
RAW_FRAMES = 60  # decoded frames replayed on the raw path (2 s, looped)
SIZES = {"720": (1280, 720), "1080": (1920, 1080)}
VIDEO_LANES = ("raw", "h264", "pattern")
AUDIO_LANES = ("mic", "mic+apm")
LANES = ("idle", *VIDEO_LANES, *AUDIO_LANES, "kiosk")


# --- the recorded clip --------------------------------------------------------------------------

def clip_paths(width: int, height: int) -> tuple[Path, Path]:
    stem = CACHE / f"clip-v2-{width}x{height}@{FPS}"
    return stem.with_suffix(".h264"), stem.with_suffix(".json")


def synthetic_frame(width: int, height: int, t: int, noise: Any) -> Any:
    """An I420 frame like a room camera's: a detailed still scene, one moving object, a little
    sensor noise (what the encoder spends its bits on)."""
    import numpy as np

    yy, xx = np.mgrid[0:height, 0:width]
    luma = ((xx // 16) ^ (yy // 16)) * 7 % 160 + 40 + noise[t % len(noise)]
    x0 = (t * 6) % max(1, width - width // 6)
    box = luma[height // 3: height // 3 + height // 5, x0:x0 + width // 6]
    box += 60 + ((xx[: box.shape[0], : box.shape[1]] + t * 3) // 4 % 2) * 40  # a moving object
    cw, ch = width // 2, height // 2
    u = np.full((ch, cw), 120 + (t // 30) % 16)
    v = np.full((ch, cw), 136 - (t // 30) % 16)
    return np.concatenate([np.clip(luma, 0, 255).reshape(-1), u.reshape(-1), v.reshape(-1)]
                          ).astype(np.uint8).reshape(height * 3 // 2, width)


def make_clip(width: int, height: int) -> None:
    """Encode 10 s (one GOP as the kiosk sets picamera2's iperiod) and write it with an index."""
    import fractions

    import av
    import numpy as np

    from appliance.media.encoded import default_bitrate
    from appliance.media.video import VideoMode

    mode = VideoMode(width, height, FPS)
    gop = FPS * 10  # Picamera2H264: iperiod = fps * 10
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = fractions.Fraction(1, FPS)
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.bit_rate = default_bitrate(mode)
    codec.max_b_frames = 0
    rate = codec.bit_rate // 1000
    codec.options = {"preset": "veryfast", "tune": "zerolatency", "profile": "baseline",
                     "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1"
                                    f":vbv-maxrate={rate}:vbv-bufsize={rate}"}
    codec.open()
    rng = np.random.default_rng(1)
    noise = [rng.integers(-2, 3, size=(height, width)) for _ in range(4)]
    units: list[tuple[bytes, bool]] = []
    for t in range(gop):
        frame = av.VideoFrame.from_ndarray(synthetic_frame(width, height, t, noise),
                                           format="yuv420p")
        frame.pts = t
        units += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(frame)]
    units += [(bytes(p), bool(p.is_keyframe)) for p in codec.encode(None)]
    stream, index = clip_paths(width, height)
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=CACHE, delete=False) as f:
        offsets = []
        for data, key in units:
            offsets.append([f.tell(), len(data), key])
            f.write(data)
    os.replace(f.name, stream)
    index.write_text(json.dumps({"units": offsets, "bitrate": codec.bit_rate}))


def load_clip(width: int, height: int) -> list[tuple[bytes, bool]]:
    stream, index = clip_paths(width, height)
    if not index.exists():
        make_clip(width, height)
    data = stream.read_bytes()
    units = [(data[o:o + n], bool(k)) for o, n, k in json.loads(index.read_text())["units"]]
    if not units or not units[0][1]:
        raise SystemExit(f"{stream}: the clip must start with a keyframe; delete it to remake")
    return units


def pattern_frames(width: int, height: int, count: int) -> list[Any]:
    """`count` frames of the test camera rendered ahead, so the raw lane pays no numpy per frame.

    The test pattern, not the clip's content: libwebrtc's encoder follows the double's bandwidth
    estimate (~100-400 kbit/s), at which the clip's detail would cost it most of its frames; the
    plain pattern keeps the raw lane at the full 30 fps, so raw is, if anything, underestimated.
    """
    from appliance.media.pattern import TestPatternCamera
    from appliance.media.video import VideoMode

    camera = TestPatternCamera()
    camera.open(VideoMode(width, height, 1000))  # fast: only the content matters here
    frames: list[Any] = []
    while len(frames) < count:
        camera.read(lambda f: frames.append(f.data.reshape(height * 3 // 2, width).copy()))
    camera.close()
    return frames


# --- the kiosk child ----------------------------------------------------------------------------

def thread_times() -> dict[str, float]:
    """CPU seconds per thread name of this process (native threads included), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = collections.defaultdict(float)
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended meanwhile
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        totals[thread_group(name)] += (int(fields[11]) + int(fields[12])) / tick
    return dict(totals)


def thread_group(name: str) -> str:
    """Fold numbered threads (`tokio-runtime-w`, `worker-3`) into one row each."""
    return name.rstrip("0123456789-_ ") or name


def rss_mib() -> float:
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return float("nan")


def kiosk_config(lane: str, width: int, height: int) -> Any:
    from appliance.config import AudioConfig, CameraConfig, Config, MicrophoneConfig, SpeakerConfig

    video = lane if lane in VIDEO_LANES else "h264" if lane == "kiosk" else None
    apm = lane in ("mic+apm", "kiosk")
    camera = CameraConfig(backend="none") if video is None else CameraConfig(
        backend="test" if video == "pattern" else "picamera2", width=width, height=height,
        fps=FPS, encoding="h264" if video == "h264" else "raw")
    return Config(camera=camera,
                  microphone=MicrophoneConfig(backend="test" if lane in (*AUDIO_LANES, "kiosk")
                                              else "none"),
                  speaker=SpeakerConfig(backend="alsa", device="null") if apm
                  else SpeakerConfig(backend="none"),
                  audio=AudioConfig(echo_cancellation=apm, noise_suppression=apm,
                                    auto_gain_control=apm, high_pass_filter=apm))


async def media_only(url: str, token: str, spec: dict[str, Any]) -> Any:
    """MediaManager publishing into a bare Room: the media path alone. Returns the manager."""
    from livekit import rtc

    from appliance.media import MediaManager

    cfg = kiosk_config(spec["lane"], spec["width"], spec["height"])
    media = MediaManager(cfg)
    wanted = (1 if cfg.camera.backend != "none" else 0) + (
        1 if cfg.microphone.backend != "none" else 0)
    acquired = asyncio.Event()
    loop = asyncio.get_running_loop()

    def post(event: Any) -> None:
        loop.call_soon_threadsafe(lambda: acquired.set() if len(media.local_tracks()) == wanted
                                  else None)

    await media.start(post)
    room = rtc.Room()
    await room.connect(url, token)
    if wanted:
        async with asyncio.timeout(20):
            await acquired.wait()
    for kind, track in media.local_tracks().items():
        await room.local_participant.publish_track(track, media.publish_options(kind))

    async def close() -> None:
        await media.aclose()
        await room.disconnect()

    return media, close


async def whole_kiosk(spec: dict[str, Any]) -> Any:
    """The appliance itself (`build_kiosk`: session, mock GPIO, health, RPC) in the room, with
    the double's far end talking: it subscribes to the far end's audio and plays it on the
    speaker, which feeds the echo canceller. Returns the media layer once both tracks are up."""
    from dataclasses import replace

    from appliance.config import ControlConfig, GpioConfig, LiveKitConfig
    from appliance.kiosk import build_kiosk
    from appliance.session.model import RoomState, StopRequested, TrackState
    from appliance.systemd import Notifier

    tmp = tempfile.TemporaryDirectory(prefix="media-bench-")  # the control socket's folder
    cfg = replace(kiosk_config("kiosk", spec["width"], spec["height"]),
                  livekit=LiveKitConfig(url=spec["url"], room=spec["room"], identity="kiosk",
                                        api_key=spec["api_key"], api_secret=spec["api_secret"]),
                  gpio=GpioConfig(pin_factory="mock"),
                  control=ControlConfig(socket=Path(tmp.name) / "control.sock"))
    kiosk = build_kiosk(cfg, notifier=Notifier({}), devices=True)
    up = asyncio.Event()

    def on_state(state: Any) -> None:
        if (state.room is RoomState.CONNECTED and state.camera is TrackState.PUBLISHED
                and state.microphone is TrackState.PUBLISHED):
            up.set()

    kiosk.runner.add_listener(on_state)
    task = asyncio.create_task(kiosk.run(), name="bench-kiosk")
    async with asyncio.timeout(30):
        await up.wait()

    async def close() -> None:
        kiosk.runner.post(StopRequested(kiosk.runner.clock(), "bench done"))
        async with asyncio.timeout(10):
            await task
        tmp.cleanup()

    return kiosk.media, close


async def kiosk(url: str, token: str, spec: dict[str, Any]) -> None:
    """Child: one lane's kiosk; prints JSON lines (published, RSS each minute, the result)."""
    import fake_picamera2
    import numpy as np
    from livekit import rtc

    lane, width, height = spec["lane"], spec["width"], spec["height"]
    if spec.get("trace"):
        tracemalloc.start()
    if lane in ("raw", "h264", "kiosk"):
        fake_picamera2.install()
        clip = load_clip(width, height)
        fake_picamera2.Picamera2.replay = (
            fake_picamera2.Replay(frames=pattern_frames(width, height, RAW_FRAMES)) if lane == "raw"
            else fake_picamera2.Replay(clip=clip))
    media, close = await (whole_kiosk(spec) if lane == "kiosk" else media_only(url, token, spec))
    loop = asyncio.get_running_loop()
    print(json.dumps({"published": True}), flush=True)
    started = time.monotonic()

    lags: list[float] = []
    stop = asyncio.Event()

    def probe(due: float) -> None:
        now = loop.time()
        lags.append(now - due)
        if not stop.is_set():
            loop.call_at(now + 0.02, probe, now + 0.02)

    async def window(length: float) -> None:
        ev = asyncio.Event()
        loop.call_later(length, ev.set)  # the measurement window (a timer, not a sync wait)
        await ev.wait()

    await window(spec["warmup"])
    threads0, cpu0, wall0 = thread_times(), os.times(), time.monotonic()
    rss: list[float] = [rss_mib()]
    first: Any = None
    for minute in range(spec["rss_minutes"]):  # nothing of the bench's own grows meanwhile
        await window(60)
        rss.append(rss_mib())
        if spec.get("trace") and minute == 0:
            first = tracemalloc.take_snapshot()
        print(json.dumps({"rss_mib": rss[-1], "minute": len(rss) - 1,
                          "python_blocks": sys.getallocatedblocks()}), flush=True)
    if first is not None:
        growth = tracemalloc.take_snapshot().compare_to(first, "lineno")
        print(json.dumps({"growth": [str(g) for g in growth[:10]]}), flush=True)
    probe(loop.time())
    await window(spec["seconds"])
    stop.set()
    threads1, cpu1, wall1 = thread_times(), os.times(), time.monotonic()
    wall = wall1 - wall0
    used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    split = {name: 100 * (threads1.get(name, 0.0) - threads0.get(name, 0.0)) / wall
             for name in threads1}
    camera = media.camera.pipeline if media.camera else None
    mic = media.microphone.pipeline if media.microphone else None
    encoder: dict[str, Any] = {}
    if camera is not None:
        for s in await camera.track.get_stats():
            if s.HasField("outbound_rtp"):
                out = s.outbound_rtp.outbound
                encoder = {"encoded": out.frames_encoded, "fps": out.frames_per_second,
                           "target_kbps": out.target_bitrate / 1000,
                           "limited_by": rtc.stats.QualityLimitationReason.Name(
                               out.quality_limitation_reason),
                           "kbps": s.outbound_rtp.sent.bytes_sent * 8 / 1000 / (
                               time.monotonic() - started)}
    print(json.dumps({"cpu_pct": 100 * used / wall, "threads": split, "encoder": encoder,
                      "lag_p99_ms": float(np.percentile(lags, 99)) * 1000,
                      "lag_max_ms": max(lags) * 1000, "rss_mib": rss_mib(), "rss": rss,
                      "video_sent": camera.sent.count if camera else 0,
                      "keyframes_asked": camera.keyframes_requested if camera else 0,
                      "audio_sent": mic.sent.count if mic else 0}), flush=True)
    await close()


# --- the parent ---------------------------------------------------------------------------------

def py_spy() -> str | None:
    """py-spy beside this interpreter (a venv's bin) or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


IDLE_FRAMES = ("select (selectors.py", "wait (threading.py", "FrameClock.wait", "get (queue.py")
SPY_RATE = 200  # samples a second


def hottest(folded: Path, seconds: float, top: int) -> list[str]:
    """py-spy's collapsed stacks -> the Python frames on top of the stack, in % of a core.

    Waiting frames (select, Condition.wait, the sensor clock) are left out: they are idle.
    """
    own: collections.Counter[str] = collections.Counter()
    for row in folded.read_text().splitlines():
        stack, _, count = row.rpartition(" ")
        leaf = stack.split(";")[-1]
        if stack and not any(idle in leaf for idle in IDLE_FRAMES):
            own[leaf] += int(count)
    scale = 100 / (SPY_RATE * seconds)
    return [f"    {n * scale:5.2f} %  {frame}" for frame, n in own.most_common(top)]


def collect_profile(folded: Path, seconds: float) -> list[str]:
    """The hottest frames of a py-spy recording (none if it recorded nothing); removes it."""
    try:
        return hottest(folded, seconds, 12) if folded.stat().st_size else []
    finally:
        folded.unlink(missing_ok=True)


async def run(spec: dict[str, Any], profile: bool) -> dict[str, Any]:
    import numpy as np

    from appliance.devserver import DevServer

    async with DevServer(port=0) as srv:
        room = f"bench-{spec['lane']}-{spec['height']}"
        if spec["lane"] == "kiosk":  # someone to talk to: the kiosk plays the far end's audio
            await srv.add_far_end(room)
            spec = {**spec, "url": srv.url, "room": room, "api_key": srv.api_key,
                    "api_secret": srv.api_secret}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--kiosk", srv.url, srv.mint_token("kiosk", room),
            json.dumps(spec), stdout=subprocess.PIPE)
        assert proc.stdout is not None
        async with asyncio.timeout(120):  # the first run may generate the clip
            json.loads(await proc.stdout.readline())
        spy = None
        folded = Path(tempfile.mkstemp(suffix=".folded")[1])
        if profile:
            spy = await asyncio.create_subprocess_exec(
                py_spy() or "py-spy", "record", "--pid", str(proc.pid), "--rate", str(SPY_RATE),
                "--format", "raw",
                "--nonblocking", "--duration", str(int(spec["warmup"] + spec["seconds"])),
                "--output", str(folded), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result: dict[str, Any] = {}
        async with asyncio.timeout(spec["warmup"] + spec["seconds"] + 60
                                   + 70 * spec["rss_minutes"]):
            while "cpu_pct" not in result:
                line = await proc.stdout.readline()
                if not line:
                    raise SystemExit(f"kiosk for lane {spec['lane']} ended early")
                result = json.loads(line)
                if "growth" in result:
                    print("  Python allocations grown since minute 1 (tracemalloc):")
                    for row in result["growth"]:
                        print(f"    {row}")
                elif "minute" in result:
                    print(f"  minute {result['minute']}: RSS {result['rss_mib']:.1f} MiB, "
                          f"Python heap blocks {result['python_blocks']}", flush=True)
        stats = srv.track_stats(room, "kiosk", "video")
        video, audio = spec["lane"] not in ("idle", *AUDIO_LANES), spec["lane"] in (
            *AUDIO_LANES, "kiosk")
        if (video and not result["video_sent"]) or (audio and not result["audio_sent"]):
            raise SystemExit(f"lane {spec['lane']}: the kiosk sent no media ({result})")
        async with asyncio.timeout(30):
            await proc.wait()
            if spy is not None:
                await spy.wait()
        result["profile"] = collect_profile(folded, spec["warmup"] + spec["seconds"])
        lat = list(stats.video.latencies_ms) if stats is not None else []
        result.update(lat_p50_ms=float(np.percentile(lat, 50)) if lat else float("nan"),
                      decoded=stats.video.frames if stats else 0)
        return result


def print_lane(name: str, r: dict[str, Any]) -> None:
    lat = f"{r['lat_p50_ms']:7.1f}ms" if name.startswith("pattern") else f"{'-':>9}"
    print(f"{name:>14} {r['cpu_pct']:6.1f} {r['lag_p99_ms']:6.1f}ms {lat} "
          f"{r['decoded']:8d} {r['rss_mib']:7.1f}", flush=True)


def print_split(name: str, r: dict[str, Any]) -> None:
    parts = sorted(r["threads"].items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{k} {v:.1f}" for k, v in parts if v >= 0.3)
    print(f"  {name}: {shown}")
    if r["encoder"]:
        e = r["encoder"]
        asked = (f", {r['keyframes_asked']} keyframe requests answered"
                 if r["keyframes_asked"] else "")
        print(f"    sent {e['kbps']:.0f} kbit/s at {e['fps']:.0f} fps (target "
              f"{e['target_kbps']:.0f} kbit/s, limited by {e['limited_by']}){asked}")
    for row in r["profile"]:
        print(row)


async def bench(args: argparse.Namespace) -> None:
    base = {"warmup": args.warmup, "seconds": args.seconds, "rss_minutes": 0}
    for size in args.sizes.split(","):
        width, height = SIZES[size]
        load_clip(width, height)  # generate before any lane is timed
    rows: dict[str, dict[str, Any]] = {}
    print(f"kiosk process CPU, one core = 100 %, {args.seconds:g} s window per lane "
          f"(this machine: {os.cpu_count()} cores)")
    print(f"{'lane':>14} {'cpu %':>6} {'lag p99':>8} {'lat p50':>9} {'decoded':>8} {'RSS MiB':>7}")
    for size in args.sizes.split(","):
        width, height = SIZES[size]
        for lane in ("raw", "h264", "pattern", "kiosk"):
            if lane not in args.lanes:
                continue
            name = f"{lane} {size}p"
            rows[name] = await run({**base, "lane": lane, "width": width, "height": height},
                                   args.profile)
            print_lane(name, rows[name])
    for lane in ("idle", *AUDIO_LANES):
        if lane not in args.lanes:
            continue
        rows[lane] = await run({**base, "lane": lane, "width": 0, "height": 0}, args.profile)
        print_lane(lane, rows[lane])
    print("where it goes (% of a core by thread name, >= 0.3 %):")
    for name, r in rows.items():
        print_split(name, r)
    if set(args.lanes) != set(LANES):
        return  # the summary needs every lane
    idle = rows["idle"]["cpu_pct"]
    print(f"above the idle kiosk in the room ({idle:.1f} %):")
    for size in args.sizes.split(","):
        raw, h264 = (rows[f"{lane} {size}p"]["cpu_pct"] - idle for lane in ("raw", "h264"))
        print(f"  {size}p30 video: raw {raw:.1f} %, h264 replay {h264:.1f} %, ratio "
              f"{h264 / raw:.2f} (goal <= 0.25); whole kiosk "
              f"{rows[f'kiosk {size}p']['cpu_pct']:.1f} % in all")
    mic, apm = (rows[lane]["cpu_pct"] - idle for lane in AUDIO_LANES)
    print(f"  audio: mic {mic:.1f} %, mic + APM {apm:.1f} % (goal <= 3 %)")


async def rss_run(args: argparse.Namespace) -> None:
    width, height = SIZES[args.sizes.split(",")[0]]
    load_clip(width, height)
    spec = {"warmup": args.warmup, "seconds": 1.0, "rss_minutes": args.rss_minutes,
            "lane": args.lane, "width": width, "height": height, "trace": args.trace}
    print(f"lane {args.lane} {height}p{FPS}: RSS once a minute for {args.rss_minutes} minutes")
    r = await run(spec, False)
    growth = r["rss"][-1] - r["rss"][1] if len(r["rss"]) > 2 else float("nan")
    print(f"RSS start {r['rss'][0]:.1f} MiB, end {r['rss'][-1]:.1f} MiB, max {max(r['rss']):.1f}, "
          f"growth after minute 1: {growth:+.1f} MiB (goal <= 120 MiB, no growth); "
          f"CPU {r['cpu_pct']:.1f} %")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--kiosk":
        asyncio.run(kiosk(sys.argv[2], sys.argv[3], json.loads(sys.argv[4])))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--sizes", default="720,1080", help="comma-separated: 720, 1080")
    parser.add_argument("--lanes", type=lambda v: v.split(","), default=list(LANES),
                        help=f"comma-separated subset of {','.join(LANES)}")
    parser.add_argument("--profile", action="store_true", help="sample each kiosk with py-spy")
    parser.add_argument("--rss-minutes", type=int, default=0,
                        help="run one lane this long and print RSS once a minute")
    parser.add_argument("--lane", default="kiosk", choices=LANES)
    parser.add_argument("--trace", action="store_true",
                        help="with --rss-minutes: print what Python allocated since minute 1")
    args = parser.parse_args()
    if args.profile and py_spy() is None:
        parser.error("--profile needs py-spy on PATH (pip install py-spy)")
    if os.environ.get("APPLIANCE_NETNS") != "1":
        netns = ROOT / "scripts" / "netns-run"
        return subprocess.call([str(netns), sys.executable, __file__, *sys.argv[1:]])
    asyncio.run(rss_run(args) if args.rss_minutes else bench(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
