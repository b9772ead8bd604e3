"""A muted microphone's CPU on a device that never blocks (ALSA's `file` plugin behaves so).

    .venv/bin/python bench/mic_muted_bench.py [--seconds 5]

Prints the process CPU (% of one core) of a MicrophonePipeline fed by a capture device whose
read() returns at once, muted and unmuted, next to a pipeline on a real-time paced device
(the test tone) as the baseline measured in the same run. Goal: muted <= 1 % of a core.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.media.audio import FRAME_BYTES, ToneCapture
from appliance.media.microphone import MicrophonePipeline


class Unpaced:
    """read() never waits: a silent frame at once, as the file plugin on /dev/null does."""

    name = "unpaced"

    def open(self) -> None:
        return None

    def read(self) -> bytes:
        return bytes(FRAME_BYTES)

    def interrupt(self) -> None:
        return None

    def close(self) -> None:
        return None


async def cpu_of(device: object, *, muted: bool, seconds: float) -> float:
    pipeline = await MicrophonePipeline.open(device, None, muted=muted)  # type: ignore[arg-type]
    try:
        wall, cpu = time.monotonic(), time.process_time()
        await asyncio.sleep(seconds)  # the measuring window
        return 100.0 * (time.process_time() - cpu) / (time.monotonic() - wall)
    finally:
        await pipeline.aclose()


async def main(seconds: float) -> None:
    base = await cpu_of(ToneCapture(440.0), muted=True, seconds=seconds)
    muted = await cpu_of(Unpaced(), muted=True, seconds=seconds)
    print(f"muted microphone, real-time paced device (baseline): {base:5.1f} % of a core")
    print(f"muted microphone, device that never blocks:          {muted:5.1f} % of a core "
          f"(x{muted / base if base else float('inf'):.2f} the baseline; goal <= 1 %)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    asyncio.run(main(parser.parse_args().seconds))
