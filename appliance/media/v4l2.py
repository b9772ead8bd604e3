"""USB webcams through PyAV's v4l2 input (YUYV or MJPEG), converted by libswscale to I420."""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Iterator
from typing import Any

import av

from appliance.errors import DeviceError
from appliance.media.video import RawConsumer, RawFrame, U8Array, VideoMode

log = logging.getLogger(__name__)


def list_video_devices() -> list[str]:
    """/dev/video* nodes (capture and codec nodes alike; `appliance check` shows them all)."""
    return sorted(glob.glob("/dev/video*"), key=lambda p: (len(p), p))


class V4l2Camera:
    """Frames from a V4L2 node; `input_format` is FFmpeg's name ("mjpeg", "yuyv422") or None.

    `container_format` defaults to "v4l2"; tests use "lavfi" with a testsrc graph as the
    `device`, which drives the same demux -> decode -> convert path without a webcam.
    """

    def __init__(self, device: str, *, input_format: str | None = "mjpeg",
                 container_format: str = "v4l2") -> None:
        self.device = device
        self.name = f"v4l2:{device}" if container_format == "v4l2" else f"{container_format}"
        self.input_format = input_format
        self.container_format = container_format
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._mode: VideoMode | None = None

    def open(self, mode: VideoMode) -> None:
        options = {}
        if self.container_format == "v4l2":
            options = {"video_size": f"{mode.width}x{mode.height}", "framerate": str(mode.fps)}
            if self.input_format:
                options["input_format"] = self.input_format
        try:
            container = av.open(self.device, format=self.container_format, options=options)
        except (av.FFmpegError, OSError) as exc:
            if self.input_format and self.container_format == "v4l2":
                # Not every webcam offers MJPEG at every size: let the driver pick.
                log.info("%s: %s unavailable (%s); trying the default format", self.name,
                         self.input_format, exc)
                options.pop("input_format", None)
                try:
                    container = av.open(self.device, format="v4l2", options=options)
                except (av.FFmpegError, OSError) as exc2:
                    raise DeviceError(f"cannot open {self.device}: {exc2}") from exc2
            else:
                raise DeviceError(f"cannot open {self.device}: {exc}") from exc
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # MJPEG decode on more than one core when it can
            self._frames = container.decode(stream)
        except (av.FFmpegError, IndexError) as exc:
            container.close()
            raise DeviceError(f"{self.device} has no video stream: {exc}") from exc
        self._container = container
        self._mode = mode

    def read(self, consume: RawConsumer) -> None:
        frames, mode = self._frames, self._mode
        if frames is None or mode is None:
            raise DeviceError(f"{self.name} is not open")
        try:
            frame = next(frames)
        except StopIteration:
            raise DeviceError(f"{self.name}: stream ended") from None
        except (av.FFmpegError, OSError) as exc:
            raise DeviceError(f"{self.name}: read failed: {exc}") from exc
        now = time.monotonic_ns()
        # libswscale converts (and scales if the camera gave another size) in native code;
        # to_ndarray packs the planes into one contiguous (h*3/2, w) array.
        array: U8Array = frame.to_ndarray(format="yuv420p", width=mode.width,
                                          height=mode.height)
        consume(RawFrame(array.reshape(-1), mode.width, mode.height, now))

    def interrupt(self) -> None:
        return None  # a read returns within one frame period

    def close(self) -> None:
        container, self._container = self._container, None
        self._frames = None
        if container is not None:
            container.close()
