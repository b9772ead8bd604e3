"""CPU per camera frame: YUV420 buffer -> VideoSource.capture_frame, vs memcpy, vs naive numpy.

For 1280x720 and 1920x1080: the media layer's path (a numpy I420 buffer wrapped as
rtc.VideoFrame without a copy, then capture_frame, whose native side copies once), a plain
memcpy of the same frame (the floor), and a naive RGB -> I420 conversion in numpy (what a
"just use numpy" camera path would cost). Ratios are against memcpy measured in this run.

    .venv/bin/python bench/media_frame_bench.py [--frames 300]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livekit import rtc

from appliance.media.video import RawFrame, i420_size, to_video_frame


def per_call_us(fn: Callable[[], None], n: int, rounds: int = 5) -> float:
    """Median over rounds of the CPU time per call, in microseconds (process CPU clock)."""
    samples = []
    fn()  # warm caches and lazy native init
    for _ in range(rounds):
        start = time.process_time_ns()
        for _ in range(n):
            fn()
        samples.append((time.process_time_ns() - start) / n / 1000)
    return statistics.median(samples)


def naive_rgb_to_i420(rgb: np.ndarray, out: np.ndarray) -> None:
    h, w, _ = rgb.shape
    f = rgb.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 0.257 * r + 0.504 * g + 0.098 * b + 16
    u = -0.148 * r - 0.291 * g + 0.439 * b + 128
    v = 0.439 * r - 0.368 * g - 0.071 * b + 128
    cw, ch = w // 2, h // 2
    out[: w * h] = y.astype(np.uint8).reshape(-1)
    out[w * h : w * h + cw * ch] = u.reshape(ch, 2, cw, 2).mean(axis=(1, 3)).astype(
        np.uint8).reshape(-1)
    out[w * h + cw * ch :] = v.reshape(ch, 2, cw, 2).mean(axis=(1, 3)).astype(
        np.uint8).reshape(-1)


def measure_size(w: int, h: int, frames: int) -> tuple[float, float, float]:
    """(memcpy, capture_frame, naive numpy) CPU microseconds per frame at w x h."""
    rng = np.random.default_rng(1)
    buf = rng.integers(0, 255, size=i420_size(w, h), dtype=np.uint8)
    dst = np.empty_like(buf)
    rgb = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    source = rtc.VideoSource(w, h)
    frame = RawFrame(buf, w, h, 0)
    memcpy = per_call_us(lambda: np.copyto(dst, buf), frames)
    capture = per_call_us(lambda: source.capture_frame(to_video_frame(frame)), frames)
    naive = per_call_us(lambda: naive_rgb_to_i420(rgb, dst), max(5, frames // 20), 3)
    return memcpy, capture, naive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    # The SDK call has a fixed cost (the SDK builds its protobuf request in Python) whatever
    # the frame size; measured on a 64x64 frame, it separates the per-pixel part (one copy).
    tiny = RawFrame(np.zeros(i420_size(64, 64), dtype=np.uint8), 64, 64, 0)
    small_source = rtc.VideoSource(64, 64)
    fixed = per_call_us(lambda: small_source.capture_frame(to_video_frame(tiny)), args.frames)
    print(f"{'size':>10} {'memcpy us':>10} {'capture us':>11} {'naive us':>10} "
          f"{'capture/memcpy':>15} {'(capture-fixed)/memcpy':>23} {'naive/memcpy':>13}")
    for w, h in ((1280, 720), (1920, 1080)):
        memcpy, capture, naive = measure_size(w, h, args.frames)
        print(f"{w}x{h:<5} {memcpy:10.0f} {capture:11.0f} {naive:10.0f} "
              f"{capture / memcpy:14.2f}x {(capture - fixed) / memcpy:22.2f}x "
              f"{naive / memcpy:12.1f}x")
    print(f"fixed SDK cost per capture_frame (64x64 frame): {fixed:.0f} us")
    print("target: capture/memcpy <= 1.5x")


if __name__ == "__main__":
    main()
