"""Software H.264 for the test camera: PyAV's libx264 turning raw frames into access units."""

from __future__ import annotations

import fractions
import logging
import time
from typing import Any

import av
import av.video.frame

from appliance.errors import DeviceError
from appliance.media.video import AccessUnit, RawCamera, RawFrame, VideoMode

log = logging.getLogger(__name__)


def default_bitrate(mode: VideoMode) -> int:
    """A starting bitrate until WebRTC's rate control says otherwise (~0.05 bit per pixel)."""
    return max(150_000, int(mode.width * mode.height * mode.fps * 0.05))


class SoftwareH264Camera:
    """Wraps a RawCamera and encodes with libx264 (ultrafast, zerolatency, constrained baseline).

    This is the off-Pi stand-in for picamera2's hardware encoder, so the pre-encoded publishing
    path (EncodedVideoSource) is exercised end to end. Keyframes come on request only (plus a
    long safety GOP), like the hardware path.
    """

    def __init__(self, raw: RawCamera) -> None:
        self.raw = raw
        self.name = f"{raw.name} + libx264"
        self._codec: Any = None
        self._mode: VideoMode | None = None
        self._keyframe_wanted = True
        self._bitrate = 0
        self._out: list[AccessUnit] = []
        self.encode_cpu_ns = 0  # thread CPU spent in libx264 (what a Pi's hardware encoder saves)

    def open(self, mode: VideoMode) -> None:
        self.raw.open(mode)
        try:
            codec = av.CodecContext.create("libx264", "w")
            codec.width, codec.height = mode.width, mode.height
            codec.pix_fmt = "yuv420p"
            codec.time_base = fractions.Fraction(1, 1_000_000)
            codec.framerate = fractions.Fraction(mode.fps, 1)
            self._bitrate = default_bitrate(mode)
            codec.bit_rate = self._bitrate
            codec.gop_size = mode.fps * 10
            codec.max_b_frames = 0  # WebRTC receivers want no reordering
            codec.options = {"preset": "ultrafast", "tune": "zerolatency",
                             "profile": "baseline", "forced-idr": "1",
                             "x264-params": "repeat-headers=1:threads=1:sliced-threads=0"}
            codec.open()
        except (av.FFmpegError, ValueError) as exc:
            self.raw.close()
            raise DeviceError(f"cannot open the H.264 encoder: {exc}") from exc
        self._codec = codec
        self._mode = mode
        self._keyframe_wanted = True

    def read(self) -> list[AccessUnit]:
        self._out = []
        self.raw.read(self._encode)
        return self._out

    def _encode(self, frame: RawFrame) -> None:
        codec = self._codec
        if codec is None:
            raise DeviceError("encoder is closed")
        # from_ndarray copies into an AVFrame: the encoder needs its own buffer anyway.
        image = av.VideoFrame.from_ndarray(
            frame.data.reshape(frame.height * 3 // 2, frame.width), format="yuv420p")
        image.pts = frame.capture_ns // 1000
        image.time_base = codec.time_base
        if self._keyframe_wanted:
            image.pict_type = av.video.frame.PictureType.I
            self._keyframe_wanted = False
        started = time.thread_time_ns()
        try:
            packets = codec.encode(image)
        except av.FFmpegError as exc:
            raise DeviceError(f"H.264 encode failed: {exc}") from exc
        self.encode_cpu_ns += time.thread_time_ns() - started
        for packet in packets:
            self._out.append(AccessUnit(bytes(packet), bool(packet.is_keyframe), frame.width,
                                        frame.height, frame.capture_ns // 1000))

    def request_keyframe(self) -> None:
        self._keyframe_wanted = True

    def set_bitrate(self, bps: int) -> None:
        # libavcodec's libx264 wrapper reconfigures x264 when bit_rate changes between frames.
        if self._codec is not None and bps > 0 and abs(bps - self._bitrate) > self._bitrate // 10:
            log.debug("h264 bitrate %d -> %d", self._bitrate, bps)
            self._bitrate = bps
            self._codec.bit_rate = bps

    def interrupt(self) -> None:
        self.raw.interrupt()

    def close(self) -> None:
        self._codec = None  # PyAV frees the encoder with the object
        self.raw.close()
