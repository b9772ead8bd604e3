"""Per-track media figures the double keeps for tests: packets, frames, tone, stamps, latency."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from appliance.media.stamp import read_stamp

FloatArray = npt.NDArray[np.float64]


def dominant_frequency(samples: npt.NDArray[np.generic], sample_rate: int) -> float | None:
    """Strongest frequency in `samples` (mono), in Hz; None for silence or too few samples.

    Hann window plus parabolic interpolation between FFT bins: with one second of audio the
    estimate is within a fraction of a hertz, far inside the tests' +-5 Hz.
    """
    if sample_rate <= 0 or len(samples) < 256:
        return None
    x = np.asarray(samples, dtype=np.float64)
    x = x - x.mean()
    if not np.any(np.abs(x) > 1e-6 * max(1.0, float(np.abs(x).max(initial=0.0)))):
        return None
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    spectrum[0] = 0.0
    k = int(np.argmax(spectrum))
    if spectrum[k] <= 0.0:
        return None
    shift = 0.0
    if 0 < k < len(spectrum) - 1:
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-12)
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom != 0 else 0.0
    return float((k + shift) * sample_rate / len(x))


@dataclass
class AudioStats:
    """Decoded audio figures of one track."""

    frames: int = 0
    samples: int = 0
    sample_rate: int = 0
    channels: int = 0
    first_frame_at: float | None = None  # time.monotonic()
    last_frame_at: float | None = None
    _window: deque[FloatArray] = field(default_factory=deque, repr=False)
    _window_samples: int = field(default=0, repr=False)

    def add(self, mono: FloatArray, sample_rate: int, channels: int) -> None:
        """Record one decoded frame (`mono` is the mixed-down samples)."""
        self.last_frame_at = time.monotonic()
        if self.first_frame_at is None:
            self.first_frame_at = self.last_frame_at
        if sample_rate != self.sample_rate:
            self._window.clear()
            self._window_samples = 0
        self.frames += 1
        self.samples += len(mono)
        self.sample_rate, self.channels = sample_rate, channels
        self._window.append(mono)
        self._window_samples += len(mono)
        # Keep exactly the last second: that is what `dominant_hz` describes.
        while self._window and self._window_samples - len(self._window[0]) >= sample_rate:
            self._window_samples -= len(self._window.popleft())

    def last_second(self) -> FloatArray:
        """Mono samples of the last second (fewer right after the start)."""
        if not self._window:
            return np.zeros(0)
        return np.concatenate(list(self._window))[-self.sample_rate :]

    @property
    def dominant_hz(self) -> float | None:
        """Strongest frequency of the last second of decoded audio."""
        return dominant_frequency(self.last_second(), self.sample_rate)


@dataclass
class VideoStats:
    """Decoded video figures of one track, including the stamped counter and capture time."""

    frames: int = 0
    width: int = 0
    height: int = 0
    first_frame_at: float | None = None  # time.monotonic()
    last_frame_at: float | None = None
    stamped_frames: int = 0
    first_counter: int | None = None
    last_counter: int | None = None
    gaps: int = 0  # stamped counters skipped (lost or dropped frames)
    out_of_order: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=300), repr=False)

    def add(self, luma: npt.NDArray[np.uint8], now_ns: int | None = None) -> None:
        """Record one decoded frame given its luma plane."""
        self.last_frame_at = time.monotonic()
        if self.first_frame_at is None:
            self.first_frame_at = self.last_frame_at
        self.frames += 1
        self.height, self.width = luma.shape
        found = read_stamp(luma)
        if found is None:
            return
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        self.stamped_frames += 1
        if self.first_counter is None:
            self.first_counter = found.counter
        if self.last_counter is not None:
            if found.counter <= self.last_counter:
                self.out_of_order += 1
            else:
                self.gaps += found.counter - self.last_counter - 1
        if self.last_counter is None or found.counter > self.last_counter:
            self.last_counter = found.counter
        self.latencies_ms.append((now_ns - found.capture_time_ns) / 1e6)

    @property
    def latency_ms(self) -> float | None:
        """Median capture-to-decode latency of the recent stamped frames."""
        return float(np.median(list(self.latencies_ms))) if self.latencies_ms else None


@dataclass
class TrackStats:
    """Everything the double measured for one published track."""

    kind: str  # "audio" | "video"
    packets_fn: Callable[[], int] = field(default=lambda: 0, repr=False)
    bytes_fn: Callable[[], int] = field(default=lambda: 0, repr=False)
    audio: AudioStats = field(default_factory=AudioStats)
    video: VideoStats = field(default_factory=VideoStats)

    @property
    def packets(self) -> int:
        """RTP packets received for this track (0 for tracks the double generates)."""
        return self.packets_fn()

    @property
    def payload_bytes(self) -> int:
        """RTP payload bytes received for this track (what its bitrate is made of)."""
        return self.bytes_fn()

    def idle_for(self) -> float:
        """Seconds since the last decoded frame (inf before the first)."""
        last = self.audio.last_frame_at if self.kind == "audio" else self.video.last_frame_at
        return float("inf") if last is None else time.monotonic() - last

    @property
    def decoded_frames(self) -> int:
        """Decoded audio or video frames, whichever this track carries."""
        return self.audio.frames if self.kind == "audio" else self.video.frames
