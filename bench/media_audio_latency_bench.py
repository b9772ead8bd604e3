"""Added audio latency: ALSA read returned -> AudioSource.capture_frame done (p50/p95/p99).

Two regimes: a card-paced source (10 ms frames on a real-time clock, as a sound card delivers
them; the tone backend) and the ALSA `file` plugin over `null`, which is not paced at all, so
the thread runs ahead until capture_frame's back-pressure (the 100 ms source queue) holds it.
Target: <= 10 ms beyond one 10 ms frame in the paced regime. Both with and without the APM.

    .venv/bin/python bench/media_audio_latency_bench.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livekit import rtc

from appliance.media.audio import AlsaCapture, AudioCapture, ToneCapture
from appliance.media.microphone import MicrophonePipeline


def alsa_setup(tmp: Path, seconds: float) -> None:
    mic = tmp / "mic.raw"
    t = np.arange(int(48000 * (seconds + 2))) / 48000
    mic.write_bytes((np.sin(2 * math.pi * 440 * t) * 9000).astype("<i2").tobytes())
    conf = tmp / "asound.conf"
    conf.write_text("</usr/share/alsa/alsa.conf>\n"
                    f'pcm.bench_mic {{ type file slave.pcm "null" file "/dev/null" '
                    f'infile "{mic}" format "raw" }}\n')
    os.environ["ALSA_CONFIG_PATH"] = str(conf)


async def measure(device: AudioCapture, apm: bool, seconds: float) -> list[float]:
    module = rtc.AudioProcessingModule(high_pass_filter=True, noise_suppression=True,
                                       echo_cancellation=True) if apm else None
    mic = await MicrophonePipeline.open(device, module, muted=False)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The run length is the measurement window (a timer, not synchronisation).
    loop.call_later(seconds, done.set)
    await done.wait()
    await mic.aclose()
    return [n / 1e6 for n in list(mic.latency_ns)[50:]]  # skip start-up


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        alsa_setup(Path(tmp), args.seconds)
        print(f"{'source':>24} {'apm':>4} {'frames':>7} {'p50 ms':>7} {'p95 ms':>7} "
              f"{'p99 ms':>7}")
        for name, make in (("paced (card clock)", lambda: ToneCapture(440.0)),
                           ("ALSA file plugin", lambda: AlsaCapture("bench_mic"))):
            for apm in (False, True):
                lat = await measure(make(), apm, args.seconds)
                print(f"{name:>24} {'on' if apm else 'off':>4} {len(lat):7d} "
                      f"{pct(lat, 50):7.2f} {pct(lat, 95):7.2f} {pct(lat, 99):7.2f}")
    print("target (paced): p99 <= 10 ms added beyond the 10 ms frame itself")


if __name__ == "__main__":
    asyncio.run(main())
