"""Camera pipeline: a device thread feeding rtc.VideoSource (raw) or EncodedVideoSource (h264)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from livekit import rtc

from appliance.errors import DeviceError
from appliance.media.progress import Progress
from appliance.media.threads import device_thread
from appliance.media.video import EncodedCamera, RawCamera, RawFrame, VideoMode, to_video_frame

log = logging.getLogger(__name__)

TRACK_NAME = "camera"
# How often the encoder feedback (keyframe requests, target bitrate) is collected: an FFI round
# trip per access unit would be wasted work, and a keyframe 100 ms later is not noticed.
FEEDBACK_INTERVAL_NS = 100_000_000


class CameraPipeline:
    """One acquisition of a camera: device + LiveKit source + a fresh track, until lost or closed.

    Blocking device calls live on one dedicated thread; the event loop only creates the source
    and track and learns about loss through `lost` (resolved with a reason, never raised).
    """

    def __init__(self, device: RawCamera | EncodedCamera, mode: VideoMode, *, encoded: bool,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.device = device
        self.encoded = encoded
        self.mode = mode
        self.sent = Progress()  # frames (raw) or access units (h264) handed to the SDK
        self.keyframes_requested = 0
        self.lost: asyncio.Future[str] = loop.create_future()
        self._loop = loop
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._wanted: VideoMode | None = mode  # None: paused (audio only)
        self._stopping = False
        self._closed = False
        self._feedback_due_ns = 0
        self.source: rtc.VideoSource | rtc.EncodedVideoSource
        if encoded:
            self.source = rtc.EncodedVideoSource(mode.width, mode.height)
        else:
            self.source = rtc.VideoSource(mode.width, mode.height)
        self.track = rtc.LocalVideoTrack.create_video_track(TRACK_NAME, self.source)
        self._thread = device_thread(self._run, "camera")

    @classmethod
    async def open(cls, device: RawCamera | EncodedCamera, mode: VideoMode, *,
                   encoded: bool) -> CameraPipeline:
        """Open the device (in a thread) and start feeding; DeviceError if it cannot open."""
        await asyncio.to_thread(device.open, mode)
        try:
            pipeline = cls(device, mode, encoded=encoded, loop=asyncio.get_running_loop())
        except BaseException:
            await asyncio.to_thread(device.close)
            raise
        pipeline._thread.start()
        log.info("camera %s open at %s (%s)", device.name, mode.label,
                 "h264" if encoded else "raw")
        return pipeline

    def set_mode(self, mode: VideoMode | None) -> None:
        """Switch capture size (the device reopens between frames) or pause with None.

        Pausing does not mute the track: the session mutes it (so subscribers see the camera as
        muted, not frozen) and so knows the mute is its own.
        """
        with self._wake:
            if mode == self._wanted:
                return
            self._wanted = mode
            # Interrupt before the thread can act on the change: interrupting after it reopened
            # the device would leave the new session interrupted (the test camera then spins).
            self.device.interrupt()
            self._wake.notify_all()

    def set_muted(self, muted: bool) -> bool:
        """Mute/unmute the track in LiveKit; True if its flag flipped (an echo will follow)."""
        if bool(self.track.muted) == muted:
            return False
        if muted:
            self.track.mute()
        else:
            self.track.unmute()
        return True

    def _run(self) -> None:
        reason = ""
        opened: VideoMode | None = self.mode
        try:
            while True:
                with self._wake:
                    while self._wanted is None and not self._stopping:
                        if opened is not None:
                            break
                        self._wake.wait()
                    if self._stopping:
                        return
                    wanted = self._wanted
                if wanted != opened:
                    self.device.close()
                    opened = None
                    if wanted is None:
                        continue
                    self.device.open(wanted)
                    opened = self.mode = wanted
                    log.info("camera %s now at %s", self.device.name, wanted.label)
                self._capture_one()
        except (DeviceError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
        except Exception as exc:  # a driver bug must not kill the kiosk: treat as device loss
            log.exception("camera thread failed")
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            self.device.close()
            if reason and not self._stopping:
                self._loop.call_soon_threadsafe(self._set_lost, reason)

    def _capture_one(self) -> None:
        if isinstance(self.source, rtc.EncodedVideoSource):
            device: EncodedCamera = self.device  # type: ignore[assignment]
            for unit in device.read():
                self.source.capture_frame(rtc.EncodedVideoFrame(
                    data=unit.data, width=unit.width, height=unit.height,
                    codec=rtc.VideoCodec.H264,
                    frame_type=(rtc.EncodedFrameType.ENCODED_FRAME_KEY if unit.keyframe
                                else rtc.EncodedFrameType.ENCODED_FRAME_DELTA),
                    timestamp_us=unit.timestamp_us))
                self.sent.add()
            now = time.monotonic_ns()
            if now < self._feedback_due_ns:
                return
            self._feedback_due_ns = now + FEEDBACK_INTERVAL_NS
            feedback = self.source.take_feedback()
            if feedback.keyframe_requested:
                self.keyframes_requested += 1
                device.request_keyframe()
            if feedback.rate_control is not None:
                device.set_bitrate(feedback.rate_control.target_bitrate_bps)
        else:
            raw: RawCamera = self.device  # type: ignore[assignment]
            raw.read(self._publish_raw)

    def _publish_raw(self, frame: RawFrame) -> None:
        assert isinstance(self.source, rtc.VideoSource)
        self.source.capture_frame(to_video_frame(frame))
        self.sent.add()

    def _set_lost(self, reason: str) -> None:
        if not self.lost.done():
            log.warning("camera %s lost: %s", self.device.name, reason)
            self.lost.set_result(reason)

    async def aclose(self) -> None:
        """Stop the thread, close the device and release the source; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self.device.interrupt()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        await self.source.aclose()
