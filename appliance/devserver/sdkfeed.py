"""Synthetic media for real SDK clients (tests, bench): a sine tone and a stamped pattern."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from livekit import rtc

from appliance.media.stamp import stamp_i420

SAMPLE_RATE = 48000
_CHUNK = 480  # 10 ms, what the SDK's audio source consumes per capture


async def feed_tone(source: rtc.AudioSource, hz: float, amplitude: int = 8000) -> None:
    """Feed a mono sine tone forever; paced by `capture_frame`'s back-pressure."""
    i = 0
    while True:
        t = (i * _CHUNK + np.arange(_CHUNK)) / SAMPLE_RATE
        pcm = (np.sin(2 * np.pi * hz * t) * amplitude).astype(np.int16)
        await source.capture_frame(rtc.AudioFrame(pcm.tobytes(), SAMPLE_RATE, 1, _CHUNK))
        i += 1


async def feed_pattern(source: rtc.VideoSource, width: int, height: int, fps: float) -> None:
    """Feed stamped grey I420 frames forever at `fps` (counter from 0, CLOCK_MONOTONIC time)."""
    base = bytearray([90]) * (width * height) + bytearray([128]) * (2 * ((width + 1) // 2)
                                                                    * ((height + 1) // 2))
    start, i = time.monotonic(), 0
    while True:
        buf = bytearray(base)
        stamp_i420(buf, width, height, i, time.monotonic_ns())
        source.capture_frame(rtc.VideoFrame(width, height, rtc.VideoBufferType.I420, buf))
        i += 1
        # A camera's frame clock: video sources have no back-pressure to pace us.
        await asyncio.sleep(max(0.0, start + i / fps - time.monotonic()))
