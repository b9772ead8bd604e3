"""Microphone pipeline: capture thread -> AudioProcessingModule -> rtc.AudioSource."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque

from livekit import rtc

from appliance.errors import DeviceError
from appliance.media.audio import FRAME_BYTES, FRAME_SAMPLES, RATE, AudioCapture
from appliance.media.progress import Progress
from appliance.media.threads import device_thread

log = logging.getLogger(__name__)

TRACK_NAME = "microphone"
# Small on purpose: on real hardware the card paces us and this stays empty; when a test's
# file plugin delivers faster than real time, capture_frame's back-pressure paces the thread.
SOURCE_QUEUE_MS = 100
_CAPTURE_TIMEOUT = 5.0
# 10 ms frames handed to the source at once. The APM needs 10 ms frames, but each capture_frame
# costs two event-loop wake-ups and an FFI round trip whatever its length; Opus sends 20 ms
# packets anyway, so pairing frames halves that work for at most 10 ms more delay.
BATCH_FRAMES = 2
# A muted microphone on a device that never blocks sleeps this long at a time (a card that
# blocks paces the reads itself and never gets this far ahead).
MUTED_WAKE = BATCH_FRAMES * FRAME_SAMPLES / RATE - 0.001


class MicrophonePipeline:
    """One acquisition of a microphone: a capture thread feeding a fresh track, until lost."""

    def __init__(self, device: AudioCapture, apm: rtc.AudioProcessingModule | None, *,
                 muted: bool, echo_delay_ms: int | None, loop: asyncio.AbstractEventLoop) -> None:
        self.device = device
        self.sent = Progress()  # 10 ms frames handed to the source
        self.frames_dropped_muted = 0
        # First ALSA read of a batch returned -> the batch captured (so it includes the pairing).
        self.latency_ns: deque[int] = deque(maxlen=3000)
        self.lost: asyncio.Future[str] = loop.create_future()
        self._apm = apm
        self._echo_delay_ms = echo_delay_ms  # None: no echo canceller, so no delay to report
        self._loop = loop
        self._muted = muted
        self._stopping = threading.Event()
        self._closed = False
        self._clear_queue = threading.Event()  # asked by a mute; source.clear_queue() is the
        # capture thread's job, like every other use of the source
        # The source lives on the capture thread's own event loop: handing each frame to the
        # main loop (and back) cost two cross-thread wake-ups per frame; now the main loop
        # never hears of audio frames, and the thread awaits capture_frame's back-pressure.
        self._capture_loop = asyncio.new_event_loop()
        try:
            self.source = rtc.AudioSource(RATE, 1, queue_size_ms=SOURCE_QUEUE_MS,
                                          loop=self._capture_loop)
            self.track = rtc.LocalAudioTrack.create_audio_track(TRACK_NAME, self.source)
        except BaseException:
            self._capture_loop.close()
            raise
        if muted:
            self.track.mute()
        self._thread = device_thread(self._run, "microphone")

    @classmethod
    async def open(cls, device: AudioCapture, apm: rtc.AudioProcessingModule | None, *,
                   muted: bool, echo_delay_ms: int | None = None) -> MicrophonePipeline:
        """Open the device in a thread and start capturing; DeviceError if it cannot open."""
        await asyncio.to_thread(device.open)
        try:
            pipeline = cls(device, apm, muted=muted, echo_delay_ms=echo_delay_ms,
                           loop=asyncio.get_running_loop())
        except BaseException:
            await asyncio.to_thread(device.close)
            raise
        pipeline._thread.start()
        log.info("microphone %s open%s", device.name, " (muted)" if muted else "")
        return pipeline

    @property
    def muted(self) -> bool:
        return self._muted

    def set_muted(self, muted: bool) -> bool:
        """Mute for real: the track is muted in LiveKit and captured audio is dropped.

        Returns True if the track's LiveKit flag flipped (so the SDK will echo the change).
        """
        self._muted = muted
        flipped = bool(self.track.muted) != muted
        if muted:
            self.track.mute()
            self._clear_queue.set()  # what was queued before the press must not go out
        else:
            self.track.unmute()
        return flipped

    def _run(self) -> None:
        reason = ""
        due: float | None = None  # when the next muted read is due (the clock paces them)
        # One buffer for the whole capture: a view per 10 ms slot for the APM (which works in
        # place) and one frame over all of it for the source; nothing allocated per frame.
        batch = bytearray(FRAME_BYTES * BATCH_FRAMES)
        slots = [memoryview(batch)[i * FRAME_BYTES:(i + 1) * FRAME_BYTES]
                 for i in range(BATCH_FRAMES)]
        slot_frames = [rtc.AudioFrame(slot, RATE, 1, FRAME_SAMPLES) for slot in slots]
        batch_frame = rtc.AudioFrame(batch, RATE, 1, FRAME_SAMPLES * BATCH_FRAMES)
        filled = 0  # 10 ms frames in `batch`
        first_read_ns = 0
        try:
            while not self._stopping.is_set():
                if self._clear_queue.is_set():
                    self._clear_queue.clear()
                    self.source.clear_queue()
                data = self.device.read()
                read_ns = time.monotonic_ns()
                if self._muted:
                    # Keep reading so the card does not overrun, but nothing reaches the source;
                    # at the audio clock's pace, whatever the device does (a device that never
                    # blocks, like ALSA's file plugin, would otherwise spin a core).
                    self.frames_dropped_muted += 1
                    filled = 0  # half a batch from before the press must not go out either
                    now = time.monotonic()
                    due = now if due is None or due < now - 0.5 else due
                    due += FRAME_SAMPLES / RATE
                    if due - now >= MUTED_WAKE:  # one wake-up per batch, not per frame
                        self._stopping.wait(due - now)
                    continue
                due = None
                if filled == 0:
                    first_read_ns = read_ns
                slots[filled][:] = data
                if self._apm is not None:
                    if self._echo_delay_ms is not None:
                        self._apm.set_stream_delay_ms(self._echo_delay_ms)
                    self._apm.process_stream(slot_frames[filled])
                filled += 1
                if filled < BATCH_FRAMES:
                    continue
                filled = 0
                if self._muted or self._stopping.is_set():
                    continue
                # No copy: the buffer is not written again before capture_frame has returned.
                self._capture_loop.run_until_complete(self._capture(batch_frame))
                self.latency_ns.append(time.monotonic_ns() - first_read_ns)
                self.sent.add(BATCH_FRAMES)
        except (DeviceError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
        except Exception as exc:  # the SDK refused or stopped taking audio: the device is lost
            if not self._stopping.is_set():
                log.exception("microphone thread failed")
                reason = f"{type(exc).__name__}: {exc}"
        finally:
            self.device.close()
            self._capture_loop.close()
            if reason and not self._stopping.is_set():
                self._loop.call_soon_threadsafe(self._set_lost, reason)

    async def _capture(self, frame: rtc.AudioFrame) -> None:
        async with asyncio.timeout(_CAPTURE_TIMEOUT):  # the SDK stopped taking audio
            await self.source.capture_frame(frame)

    def _set_lost(self, reason: str) -> None:
        if not self.lost.done():
            log.warning("microphone %s lost: %s", self.device.name, reason)
            self.lost.set_result(reason)

    async def aclose(self) -> None:
        """Stop the thread, close the device, release the source; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self.device.interrupt()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        await self.source.aclose()
