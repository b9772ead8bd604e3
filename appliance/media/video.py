"""Camera vocabulary: video modes, captured frames, access units and the device protocols."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from livekit import rtc

U8Array = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class VideoMode:
    """What to capture: size and frame rate."""

    width: int
    height: int
    fps: int

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}@{self.fps}"


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One I420 frame: `data` is a 1-D, contiguous, writable view of exactly one packed frame.

    It is only valid inside the consumer callback it is handed to (it may point into a camera
    buffer that goes back to the driver right after).
    """

    data: U8Array
    width: int
    height: int
    capture_ns: int  # time.monotonic_ns() when the frame was taken


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One encoded H.264 access unit in Annex B form."""

    data: bytes
    keyframe: bool
    width: int
    height: int
    timestamp_us: int  # increasing along the stream


RawConsumer = Callable[[RawFrame], None]


class RawCamera(Protocol):
    """A camera that hands out I420 frames. Every method blocks: call them from a thread."""

    name: str

    def open(self, mode: VideoMode) -> None:
        """Start capturing; raises DeviceError (and leaves nothing open) if it cannot."""

    def read(self, consume: RawConsumer) -> None:
        """Wait for the next frame and call `consume` with it; DeviceError when the device died."""

    def interrupt(self) -> None:
        """Make a blocked `read` return soon (thread-safe)."""

    def close(self) -> None:
        """Stop and release the device; safe to call twice and after a failed open."""


class EncodedCamera(Protocol):
    """A camera (plus encoder) that hands out H.264 access units. Blocking, like RawCamera."""

    name: str

    def open(self, mode: VideoMode) -> None: ...

    def read(self) -> list[AccessUnit]:
        """Wait for the next frame's access units (may be empty: the encoder is buffering)."""

    def request_keyframe(self) -> None: ...

    def set_bitrate(self, bps: int) -> None: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


def i420_size(width: int, height: int) -> int:
    """Bytes of one packed I420 frame."""
    return width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2)


def to_video_frame(frame: RawFrame) -> rtc.VideoFrame:
    """Wrap a RawFrame for `VideoSource.capture_frame` without copying the pixels.

    The SDK copies a memoryview only when it does not span its whole object, so the view is
    taken over the 1-D array itself; the one copy happens inside capture_frame (native side).
    """
    return rtc.VideoFrame(frame.width, frame.height, rtc.VideoBufferType.I420,
                          frame.data.data)


def pack_i420(src: U8Array, width: int, height: int, stride: int, out: U8Array) -> U8Array:
    """Pack a strided YUV420 buffer (rows of `stride` bytes, chroma stride // 2) into `out`.

    Needed only when the camera pads rows; vectorised numpy, one copy.
    """
    flat = src.reshape(-1)
    cw, ch = width // 2, height // 2
    y_in = flat[: height * stride].reshape(height, stride)[:, :width]
    u_off = height * stride
    v_off = u_off + ch * (stride // 2)
    u_in = flat[u_off:v_off].reshape(ch, stride // 2)[:, :cw]
    v_in = flat[v_off : v_off + ch * (stride // 2)].reshape(ch, stride // 2)[:, :cw]
    ys = width * height
    np.copyto(out[:ys].reshape(height, width), y_in)
    np.copyto(out[ys : ys + cw * ch].reshape(ch, cw), u_in)
    np.copyto(out[ys + cw * ch : ys + 2 * cw * ch].reshape(ch, cw), v_in)
    return out
