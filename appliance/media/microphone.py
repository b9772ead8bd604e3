"""Microphone pipeline: capture thread -> AudioProcessingModule -> rtc.AudioSource."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import deque

from livekit import rtc

from appliance.errors import DeviceError
from appliance.media.audio import FRAME_SAMPLES, RATE, AudioCapture
from appliance.media.progress import Progress

log = logging.getLogger(__name__)

TRACK_NAME = "microphone"
# Small on purpose: on real hardware the card paces us and this stays empty; when a test's
# file plugin delivers faster than real time, capture_frame's back-pressure paces the thread.
SOURCE_QUEUE_MS = 100
_CAPTURE_TIMEOUT = 5.0


class MicrophonePipeline:
    """One acquisition of a microphone: a capture thread feeding a fresh track, until lost."""

    def __init__(self, device: AudioCapture, apm: rtc.AudioProcessingModule | None, *,
                 muted: bool, echo_delay_ms: int, loop: asyncio.AbstractEventLoop) -> None:
        self.device = device
        self.sent = Progress()  # 10 ms frames handed to the source
        self.frames_dropped_muted = 0
        self.latency_ns: deque[int] = deque(maxlen=3000)  # ALSA read returned -> captured
        self.lost: asyncio.Future[str] = loop.create_future()
        self._apm = apm
        self._echo_delay_ms = echo_delay_ms
        self._loop = loop
        self._muted = muted
        self._stopping = threading.Event()
        self._closed = False
        self.source = rtc.AudioSource(RATE, 1, queue_size_ms=SOURCE_QUEUE_MS, loop=loop)
        self.track = rtc.LocalAudioTrack.create_audio_track(TRACK_NAME, self.source)
        if muted:
            self.track.mute()
        self._thread = threading.Thread(target=self._run, name=f"mic-{device.name}",
                                        daemon=True)

    @classmethod
    async def open(cls, device: AudioCapture, apm: rtc.AudioProcessingModule | None, *,
                   muted: bool, echo_delay_ms: int = 50) -> MicrophonePipeline:
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
            self.source.clear_queue()  # what was queued before the press must not go out
        else:
            self.track.unmute()
        return flipped

    def _run(self) -> None:
        reason = ""
        due: float | None = None  # when the next muted read is due (the clock paces them)
        try:
            while not self._stopping.is_set():
                data = self.device.read()
                read_ns = time.monotonic_ns()
                if self._muted:
                    # Keep reading so the card does not overrun, but nothing reaches the source;
                    # at the audio clock's pace, whatever the device does (a device that never
                    # blocks, like ALSA's file plugin, would otherwise spin a core).
                    self.frames_dropped_muted += 1
                    now = time.monotonic()
                    due = now if due is None or due < now - 0.5 else due
                    due += FRAME_SAMPLES / RATE
                    self._stopping.wait(max(0.0, due - now))
                    continue
                due = None
                frame = rtc.AudioFrame(bytearray(data), RATE, 1, FRAME_SAMPLES)
                if self._apm is not None:
                    self._apm.set_stream_delay_ms(self._echo_delay_ms)
                    self._apm.process_stream(frame)
                if self._muted or self._stopping.is_set():
                    continue
                future = asyncio.run_coroutine_threadsafe(self.source.capture_frame(frame),
                                                          self._loop)
                future.result(_CAPTURE_TIMEOUT)
                self.latency_ns.append(time.monotonic_ns() - read_ns)
                self.sent.add()
        except (DeviceError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
        except (RuntimeError, concurrent.futures.TimeoutError) as exc:
            # The loop closed under us, or the SDK stopped taking audio: the pipeline is done.
            if not self._stopping.is_set():
                log.exception("microphone thread failed")
                reason = f"{type(exc).__name__}: {exc}"
        finally:
            self.device.close()
            if reason and not self._stopping.is_set():
                self._loop.call_soon_threadsafe(self._set_lost, reason)

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
