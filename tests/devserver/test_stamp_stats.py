"""Frame stamps survive scaling and lossy coding; the tone estimate is accurate."""

from __future__ import annotations

import fractions

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.devserver.stats import AudioStats, VideoStats, dominant_frequency
from appliance.media.stamp import Stamp, band_height, read_stamp, stamp, stamp_i420


@given(counter=st.integers(0, 2**32 - 1), when=st.integers(0, 2**64 - 1))
@settings(max_examples=50, deadline=None)
def test_round_trip(counter: int, when: int) -> None:
    y = np.full((240, 320), 77, dtype=np.uint8)
    stamp(y, counter, when)
    assert read_stamp(y) == Stamp(counter, when)


def test_unstamped_or_damaged_frames_read_as_none() -> None:
    y = np.full((480, 640), 128, dtype=np.uint8)
    assert read_stamp(y) is None
    stamp(y, 7, 123)
    y[: band_height(640) // 5, :100] = 255 - y[: band_height(640) // 5, :100]  # flip bits
    assert read_stamp(y) is None
    with pytest.raises(ValueError, match="too small"):
        stamp(np.zeros((20, 64), dtype=np.uint8), 1, 1)


@pytest.mark.parametrize("size", [(480, 360), (320, 240), (160, 120)])
def test_survives_scaling_and_vp8(size: tuple[int, int]) -> None:
    import av

    buf = bytearray([100]) * (640 * 480) + bytearray([128]) * (640 * 480 // 2)
    stamp_i420(buf, 640, 480, 4242, 99_000_000_123)
    frame = av.VideoFrame.from_ndarray(np.frombuffer(buf, np.uint8).reshape(720, 640),
                                       format="yuv420p").reformat(width=size[0], height=size[1])
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = size[0], size[1], "yuv420p"
    codec.bit_rate = 150_000  # starved on purpose: the stamp must survive heavy quantisation
    codec.time_base = fractions.Fraction(1, 30)
    decoder = av.CodecContext.create("libvpx", "r")
    frame.pts = 0
    decoded = [d for p in codec.encode(frame) + codec.encode(None) for d in decoder.decode(p)]
    luma = decoded[0].to_ndarray(format="yuv420p")[: size[1]]
    assert read_stamp(luma) == Stamp(4242, 99_000_000_123)


@pytest.mark.parametrize("hz", [50.0, 440.0, 997.0, 1000.0, 3000.0])
def test_dominant_frequency(hz: float) -> None:
    t = np.arange(48000) / 48000
    noisy = np.sin(2 * np.pi * hz * t) + 0.05 * np.random.default_rng(1).standard_normal(48000)
    assert dominant_frequency(noisy, 48000) == pytest.approx(hz, abs=0.5)
    assert dominant_frequency(np.zeros(48000), 48000) is None


def test_audio_window_is_the_last_second() -> None:
    stats = AudioStats()
    for hz in (300.0, 800.0):  # two seconds: 300 Hz, then 800 Hz
        for i in range(50):
            t = (i * 960 + np.arange(960)) / 48000
            stats.add(np.sin(2 * np.pi * hz * t), 48000, 1)
    assert stats.frames == 100
    assert stats.dominant_hz == pytest.approx(800, abs=1)


def test_video_gaps_and_latency() -> None:
    stats = VideoStats()
    for counter in (0, 1, 2, 5, 4, 6):
        y = np.full((120, 160), 50, dtype=np.uint8)
        stamp(y, counter, 1_000_000_000)
        stats.add(y, now_ns=1_040_000_000)
    assert (stats.frames, stats.stamped_frames) == (6, 6)
    assert (stats.gaps, stats.out_of_order) == (2, 1)
    assert stats.latency_ms == pytest.approx(40.0)
