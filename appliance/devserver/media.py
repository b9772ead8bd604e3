"""Media plumbing: read each published track once, measure it, and copy it to every subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import math
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from appliance.devserver.stats import TrackStats
from appliance.media.stamp import stamp

log = logging.getLogger(__name__)

AUDIO_RATE = 48000
AUDIO_PTIME = 0.02
VIDEO_CLOCK = 90000
# Bounded queues per subscriber: a slow encoder drops old frames instead of piling up latency.
_QUEUE_FRAMES = {"audio": 10, "video": 2}


class ForwardTrack(MediaStreamTrack):
    """What one subscriber's sender reads: frames a Fanout copies in, re-timed from zero."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._queue: asyncio.Queue[npt.NDArray[np.int16] | npt.NDArray[np.uint8] | None]
        self._queue = asyncio.Queue(maxsize=_QUEUE_FRAMES[kind])
        self._samples = 0
        self._start: float | None = None

    def push(self, data: npt.NDArray[np.int16] | npt.NDArray[np.uint8] | None) -> None:
        """Queue a frame (interleaved s16 stereo audio, or an I420 array); None ends the track."""
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(data)

    async def recv(self) -> AudioFrame | VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        data = await self._queue.get()
        if data is None:
            self.stop()
            raise MediaStreamError
        # Fresh frames and timestamps per subscriber: the encoders run in threads, so sharing
        # one frame object between subscribers would race on its pts.
        if self.kind == "audio":
            audio = AudioFrame.from_ndarray(data, format="s16", layout="stereo")
            audio.sample_rate = AUDIO_RATE
            audio.pts = self._samples
            audio.time_base = fractions.Fraction(1, AUDIO_RATE)
            self._samples += audio.samples
            return audio
        video = VideoFrame.from_ndarray(data.astype(np.uint8, copy=False), format="yuv420p")
        now = time.monotonic()
        self._start = now if self._start is None else self._start
        video.pts = int((now - self._start) * VIDEO_CLOCK)
        video.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return video


class Fanout:
    """Reads one source track, updates its TrackStats, and copies frames to ForwardTracks."""

    def __init__(self, source: MediaStreamTrack, stats: TrackStats, *, measure: bool,
                 on_change: Callable[[], None], name: str) -> None:
        self.source = source
        self.kind = source.kind
        self.stats = stats
        self._measure = measure
        self._on_change = on_change
        self._outputs: list[ForwardTrack] = []
        self._task = asyncio.create_task(self._run(), name=f"devserver-fanout-{name}")

    def subscribe(self) -> ForwardTrack:
        """A new output track for one subscriber."""
        out = ForwardTrack(self.kind)
        self._outputs.append(out)
        return out

    def unsubscribe(self, out: ForwardTrack) -> None:
        """Stop feeding one output (its sender sees the track end)."""
        if out in self._outputs:
            self._outputs.remove(out)
            out.push(None)

    async def _run(self) -> None:
        try:
            while True:
                frame = await self.source.recv()
                if not isinstance(frame, AudioFrame | VideoFrame):
                    continue  # encoded packets never come from the tracks the double reads
                data = self._convert(frame)
                for out in self._outputs:
                    out.push(data)
                if self._measure:
                    self._on_change()
        except MediaStreamError:
            log.debug("source %s ended", self.source.id)
        finally:
            for out in self._outputs:
                out.push(None)
            self._outputs.clear()
            self._on_change()

    def _convert(
        self, frame: AudioFrame | VideoFrame
    ) -> npt.NDArray[np.int16] | npt.NDArray[np.uint8]:
        if isinstance(frame, AudioFrame):
            pcm = frame.to_ndarray()
            channels = len(frame.layout.channels)
            interleaved = pcm.reshape(-1, channels) if pcm.shape[0] == 1 else pcm.T
            if self._measure:
                self.stats.audio.add(interleaved.mean(axis=1), frame.sample_rate, channels)
            if frame.format.name != "s16" or frame.sample_rate != AUDIO_RATE:
                return to_stereo_s16(interleaved, frame.sample_rate)
            stereo = interleaved if channels == 2 else np.repeat(interleaved[:, :1], 2, axis=1)
            return np.ascontiguousarray(stereo, dtype=np.int16).reshape(1, -1)
        i420 = np.asarray(frame.to_ndarray(format="yuv420p"), dtype=np.uint8)
        if self._measure:
            self.stats.video.add(i420[: frame.height, : frame.width])
        return i420

    async def aclose(self) -> None:
        """Stop reading the source and end every output (safe to call twice)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def to_stereo_s16(interleaved: npt.NDArray[np.generic], rate: int) -> npt.NDArray[np.int16]:
    """Crude conversion of any decoded audio to 48 kHz interleaved s16 stereo (1 x 2n array)."""
    mono = interleaved.astype(np.float64).mean(axis=1)
    if np.issubdtype(interleaved.dtype, np.floating):
        mono = mono * 32767.0
    if rate != AUDIO_RATE and len(mono) > 1:
        n = int(len(mono) * AUDIO_RATE / rate)
        mono = np.interp(np.linspace(0, len(mono) - 1, n), np.arange(len(mono)), mono)
    pcm = np.clip(mono, -32768, 32767).astype(np.int16)
    return np.repeat(pcm, 2).reshape(1, -1)


class ToneTrack(MediaStreamTrack):
    """A sine tone at `hz`, 48 kHz stereo, paced in real time (the far end's microphone)."""

    kind = "audio"

    def __init__(self, hz: float, amplitude: float = 0.3) -> None:
        super().__init__()
        self.hz = hz
        self._amplitude = amplitude
        self._samples = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        n = int(AUDIO_RATE * AUDIO_PTIME)
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            # Pacing a generator (not test synchronisation): one frame per 20 ms of wall time.
            await asyncio.sleep(max(0.0, self._start + self._samples / AUDIO_RATE - now))
        t = (self._samples + np.arange(n)) / AUDIO_RATE
        pcm = (np.sin(2 * math.pi * self.hz * t) * self._amplitude * 32767).astype(np.int16)
        frame = AudioFrame.from_ndarray(np.repeat(pcm, 2).reshape(1, -1), format="s16",
                                        layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        self._samples += n
        return frame


class PatternTrack(MediaStreamTrack):
    """A moving test pattern with the stamped counter and capture time (the far end's camera)."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            await asyncio.sleep(max(0.0, self._start + self._count / self.fps - now))
        w, h = self.width, self.height
        i420 = np.full((h * 3 // 2, w), 128, dtype=np.uint8)
        i420[:h] = 60
        bar = (self._count * 4) % w
        i420[:h, bar : bar + w // 10] = 200
        stamp((i420[:h], i420[h : h + h // 4].reshape(h // 2, w // 2),
               i420[h + h // 4 :].reshape(h // 2, w // 2)), self._count, time.monotonic_ns())
        frame = VideoFrame.from_ndarray(i420, format="yuv420p")
        frame.pts = int(self._count * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame
