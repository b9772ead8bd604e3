"""Speaker: remote audio tracks mixed in 10 ms frames, played via ALSA and fed to the APM."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from livekit import rtc

from appliance.errors import DeviceError
from appliance.media.audio import FRAME_SAMPLES, RATE, AudioPlayback
from appliance.media.progress import Progress
from appliance.media.threads import device_thread

log = logging.getLogger(__name__)

PREBUFFER_FRAMES = 3  # 30 ms of jitter cushion before a feed starts (again) to play
MAX_QUEUED_FRAMES = 20  # beyond 200 ms behind, drop the oldest audio: latency beats gaps
RETRY_INITIAL, RETRY_MAX = 1.0, 30.0  # reopening a missing speaker (USB plugged in later)
_PERIOD_NS = 10_000_000
# The SDK hands remote audio over in 20 ms frames, each one FFI event and one wake-up of the
# event loop: half as many as 10 ms frames cost, for 10 ms more delay. The mixer splits them.
STREAM_FRAME_MS = 20

I16Array = npt.NDArray[np.int16]


class _Feed:
    """One remote track: an AudioStream reader task filling a bounded queue of 10 ms frames."""

    def __init__(self, track: rtc.Track, wake: threading.Event) -> None:
        self.sid = track.sid
        self.track = track
        self.queue: deque[I16Array] = deque(maxlen=MAX_QUEUED_FRAMES)
        self.playing = False
        self._wake = wake
        self._stream = rtc.AudioStream.from_track(track=track, sample_rate=RATE, num_channels=1,
                                                  frame_size_ms=STREAM_FRAME_MS)
        self._task = asyncio.create_task(self._read(), name=f"speaker-feed-{track.sid}")

    async def _read(self) -> None:
        async for event in self._stream:
            pcm = np.frombuffer(event.frame.data, dtype=np.int16)
            # 10 ms frames for the mixer; a final short one is filled so it always sums 10 ms.
            for start in range(0, len(pcm), FRAME_SAMPLES):
                part = pcm[start:start + FRAME_SAMPLES]
                self.queue.append(part.copy() if len(part) == FRAME_SAMPLES
                                  else np.resize(part, FRAME_SAMPLES))
            self._wake.set()

    def take(self) -> I16Array | None:
        """The next frame, or None while (re)filling the jitter cushion."""
        if not self.playing:
            if len(self.queue) < PREBUFFER_FRAMES:
                return None
            self.playing = True
        if not self.queue:
            self.playing = False  # starved: rebuild the cushion instead of crackling
            return None
        return self.queue.popleft()

    async def aclose(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._stream.aclose()


def _mix(frames: list[I16Array]) -> bytearray:
    """Sum 10 ms frames with clipping (one talker, the usual case, is passed through)."""
    if len(frames) == 1:
        return bytearray(frames[0])
    mixed = np.zeros(FRAME_SAMPLES, dtype=np.int32)
    for pcm in frames:
        mixed += pcm
    return bytearray(np.clip(mixed, -32768, 32767).astype(np.int16))


class Speaker:
    """Mixes every remote audio track and plays it; no device means silence, never a crash.

    The playback thread is paced by the monotonic clock at one frame per 10 ms, and yields to
    the card when a write blocks (the card's clock is then the master). Every frame written is
    also handed to the APM's reverse stream so echo cancellation hears what the room hears.
    """

    def __init__(self, factory: Callable[[], AudioPlayback] | None,
                 apm: rtc.AudioProcessingModule | None) -> None:
        self._factory = factory
        self._apm = apm
        self._feeds: dict[str, _Feed] = {}
        self._retiring: set[asyncio.Task[None]] = set()  # replaced feeds, closing
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.device: AudioPlayback | None = None
        self.played = Progress()
        self.underruns = 0

    def start(self) -> None:
        if self._factory is None or self._thread is not None:
            return
        self._thread = device_thread(self._run, "speaker")
        self._thread.start()

    def add_track(self, track: rtc.Track) -> None:
        """Play a remote audio track (call on the event loop).

        After the SDK rejoins by itself the same publication comes back as a new track object,
        possibly before the old one's unsubscription was handled: the new one replaces it.
        """
        if self._closed:
            return
        old = self._feeds.get(track.sid)
        if old is not None:
            if old.track is track:
                return
            self._retire(old)
        self._feeds[track.sid] = _Feed(track, self._wake)
        log.info("speaker: playing %s (%d remote tracks)", track.sid, len(self._feeds))

    async def remove_track(self, sid: str, track: rtc.Track | None = None) -> None:
        """Stop playing `sid` (only if it is still `track`'s feed, when a track is given)."""
        feed = self._feeds.get(sid)
        if feed is None or (track is not None and feed.track is not track):
            return
        del self._feeds[sid]
        await feed.aclose()

    def _retire(self, feed: _Feed) -> None:
        task = asyncio.get_running_loop().create_task(feed.aclose())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def _open(self) -> AudioPlayback | None:
        delay = RETRY_INITIAL
        while not self._stop.is_set():
            assert self._factory is not None
            try:
                device = self._factory()
                device.open()
                log.info("speaker %s open", device.name)
                return device
            except (DeviceError, OSError) as exc:
                log.warning("no speaker (%s); retrying in %.0f s", exc, delay)
            self._stop.wait(delay)  # backoff timer; stop wakes it
            delay = min(delay * 2, RETRY_MAX)
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            device = self._open()
            if device is None:
                return
            self.device = device
            try:
                self._play(device)
            except (DeviceError, OSError) as exc:
                log.warning("speaker %s lost: %s", device.name, exc)
            finally:
                self.underruns += device.underruns
                device.close()
                self.device = None

    def _play(self, device: AudioPlayback) -> None:
        next_ns = time.monotonic_ns()
        while not self._stop.is_set():
            feeds = list(self._feeds.values())
            if not any(feed.queue for feed in feeds):
                # Idle: nothing to play. Wait for audio instead of writing silence forever.
                self._wake.clear()
                if not self._wake.wait(0.05):
                    continue
                next_ns = time.monotonic_ns()
            delay = (next_ns - time.monotonic_ns()) / 1e9
            if delay > 0 and self._stop.wait(delay):
                return
            next_ns += _PERIOD_NS
            out = _mix([pcm for feed in feeds if (pcm := feed.take()) is not None])
            if self._apm is not None:
                self._apm.process_reverse_stream(rtc.AudioFrame(out, RATE, 1, FRAME_SAMPLES))
            before = time.monotonic_ns()
            device.write(out)
            self.played.add()
            if time.monotonic_ns() - before > _PERIOD_NS // 2:
                next_ns = time.monotonic_ns()  # the card blocked us: follow its clock

    async def aclose(self) -> None:
        """Stop playback and every feed; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        for sid in list(self._feeds):
            await self.remove_track(sid)
        await asyncio.gather(*self._retiring, return_exceptions=True)
        if self._thread is not None and self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
