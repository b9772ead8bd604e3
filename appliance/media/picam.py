"""Raspberry Pi CSI cameras via picamera2: raw YUV420 without conversion, or hardware H.264."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import numpy as np

from appliance.errors import DeviceError
from appliance.media.video import (
    AccessUnit,
    RawConsumer,
    RawFrame,
    U8Array,
    VideoMode,
    i420_size,
    pack_i420,
)

log = logging.getLogger(__name__)

_BUFFERS = 4  # libcamera buffers: enough to encode one while the next one fills
_READ_TIMEOUT = 2.0  # seconds without a frame at >= 1 fps means the camera is gone
_BITRATE_RESTART_GAP = 5.0  # restarting the hardware encoder costs a keyframe: not too often


def import_picamera2() -> Any:
    """The picamera2 module; DeviceError off a Pi (it needs Raspberry Pi OS's libcamera)."""
    try:
        import picamera2
    except ImportError as exc:
        raise DeviceError(f"picamera2 is not available: {exc}") from exc
    return picamera2


def list_cameras() -> list[dict[str, Any]]:
    """picamera2's `global_camera_info()`; empty when picamera2 is missing or finds nothing."""
    try:
        module = import_picamera2()
        return list(module.Picamera2.global_camera_info())
    except (DeviceError, RuntimeError, OSError) as exc:
        log.debug("picamera2 cameras: %s", exc)
        return []


class _Picamera2Base:
    def __init__(self, camera_num: int = 0) -> None:
        self.camera_num = camera_num
        self.name = f"picamera2:{camera_num}"
        self._cam: Any = None
        self._mode: VideoMode | None = None

    def _open_camera(self, mode: VideoMode) -> Any:
        module = import_picamera2()
        if not module.Picamera2.global_camera_info():
            raise DeviceError("picamera2 finds no camera")
        try:
            cam = module.Picamera2(self.camera_num)
        except (RuntimeError, IndexError, OSError) as exc:
            raise DeviceError(f"cannot open camera {self.camera_num}: {exc}") from exc
        try:
            # YUV420 is I420: the ISP hands it to us ready for WebRTC, no colour conversion.
            config = cam.create_video_configuration(
                main={"size": (mode.width, mode.height), "format": "YUV420"},
                controls={"FrameRate": float(mode.fps)}, buffer_count=_BUFFERS)
            cam.configure(config)
        except (RuntimeError, ValueError, OSError) as exc:
            cam.close()
            raise DeviceError(f"camera {self.camera_num} refuses {mode.label}: {exc}") from exc
        self._mode = mode
        return cam

    def interrupt(self) -> None:
        return None  # capture_request returns within one frame period

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is None:
            return
        try:
            cam.stop()
        except (RuntimeError, OSError) as exc:
            log.warning("%s: stop failed: %s", self.name, exc)
        finally:
            cam.close()


class Picamera2Raw(_Picamera2Base):
    """YUV420 frames mapped from the camera's own buffers straight into capture_frame."""

    def __init__(self, camera_num: int = 0) -> None:
        super().__init__(camera_num)
        self._packed: U8Array | None = None
        self._stride = 0

    def open(self, mode: VideoMode) -> None:
        cam = self._open_camera(mode)
        try:
            cam.start()
            self._stride = int(cam.stream_configuration("main")["stride"])
        except (RuntimeError, OSError, KeyError) as exc:
            cam.close()
            raise DeviceError(f"{self.name}: cannot start: {exc}") from exc
        self._cam = cam
        # Rows padded to the ISP's alignment need one repacking copy; unpadded ones none.
        self._packed = (None if self._stride == mode.width
                        else np.empty(i420_size(mode.width, mode.height), dtype=np.uint8))

    def read(self, consume: RawConsumer) -> None:
        cam, mode = self._cam, self._mode
        if cam is None or mode is None:
            raise DeviceError(f"{self.name} is not open")
        module = import_picamera2()
        try:
            request = cam.capture_request()
        except (RuntimeError, OSError) as exc:
            raise DeviceError(f"{self.name}: capture failed: {exc}") from exc
        now = time.monotonic_ns()
        try:
            with module.MappedArray(request, "main") as mapped:
                array: U8Array = mapped.array
                if self._packed is None:
                    data = array.reshape(-1)[: i420_size(mode.width, mode.height)]
                else:
                    data = pack_i420(array, mode.width, mode.height, self._stride, self._packed)
                consume(RawFrame(data, mode.width, mode.height, now))
        finally:
            request.release()


class _QueueOutput:
    """A picamera2 Output: access units from the encoder thread into a queue we read."""

    def __init__(self, base: type) -> None:
        self.queue: queue.Queue[AccessUnit] = queue.Queue(maxsize=30)
        self.output = self._make(base)

    def _make(self, base: type) -> Any:
        outer = self

        class QueueOutput(base):  # type: ignore[misc]
            def outputframe(self, frame: bytes, keyframe: bool = True,
                            timestamp: int | None = None, packet: Any = None,
                            audio: bool = False) -> None:
                if audio:
                    return
                outer.put(frame, keyframe, timestamp)

        return QueueOutput()

    def put(self, frame: bytes, keyframe: bool, timestamp: int | None) -> None:
        unit = AccessUnit(bytes(frame), keyframe, 0, 0,
                          timestamp if timestamp is not None else time.monotonic_ns() // 1000)
        try:
            self.queue.put_nowait(unit)
        except queue.Full:
            log.warning("picamera2 h264: consumer behind, dropping an access unit")


class Picamera2H264(_Picamera2Base):
    """picamera2's hardware H.264 encoder: the CPU never touches a pixel."""

    def __init__(self, camera_num: int = 0) -> None:
        super().__init__(camera_num)
        self._encoder: Any = None
        self._output: _QueueOutput | None = None
        self._bitrate = 0
        self._last_restart = 0.0
        self._lock = threading.Lock()

    def open(self, mode: VideoMode) -> None:
        from appliance.media.encoded import default_bitrate

        cam = self._open_camera(mode)
        try:
            import picamera2.encoders as encoders
            import picamera2.outputs as outputs

            self._output = _QueueOutput(outputs.Output)
            self._bitrate = default_bitrate(mode)
            self._encoder = encoders.H264Encoder(bitrate=self._bitrate, repeat=True,
                                                 iperiod=mode.fps * 10)
            cam.start_encoder(self._encoder, self._output.output)
            cam.start()
        except (RuntimeError, OSError, ImportError) as exc:
            cam.close()
            raise DeviceError(f"{self.name}: cannot start the H.264 encoder: {exc}") from exc
        self._cam = cam
        self._last_restart = time.monotonic()

    def read(self) -> list[AccessUnit]:
        output, mode = self._output, self._mode
        if output is None or mode is None:
            raise DeviceError(f"{self.name} is not open")
        try:
            unit = output.queue.get(timeout=_READ_TIMEOUT)
        except queue.Empty:
            raise DeviceError(f"{self.name}: no frame for {_READ_TIMEOUT:g} s") from None
        return [AccessUnit(unit.data, unit.keyframe, mode.width, mode.height,
                           unit.timestamp_us)]

    def request_keyframe(self) -> None:
        if self._encoder is not None:
            self._encoder.force_key_frame()

    def set_bitrate(self, bps: int) -> None:
        # The V4L2 encoder takes its bitrate at start only: restart it for big changes, rarely.
        cam, encoder = self._cam, self._encoder
        if cam is None or encoder is None or bps <= 0:
            return
        if abs(bps - self._bitrate) < self._bitrate // 3:
            return
        if time.monotonic() - self._last_restart < _BITRATE_RESTART_GAP:
            return
        import picamera2.encoders as encoders

        assert self._output is not None
        log.info("%s: bitrate %d -> %d (encoder restart)", self.name, self._bitrate, bps)
        cam.stop_encoder(encoder)
        self._bitrate = bps
        self._encoder = encoders.H264Encoder(bitrate=bps, repeat=True,
                                             iperiod=(self._mode.fps if self._mode else 30) * 10)
        cam.start_encoder(self._encoder, self._output.output)
        self._last_restart = time.monotonic()

    def close(self) -> None:
        cam, encoder = self._cam, self._encoder
        self._encoder = None
        if cam is not None and encoder is not None:
            try:
                cam.stop_encoder(encoder)
            except (RuntimeError, OSError) as exc:
                log.warning("%s: stop_encoder failed: %s", self.name, exc)
        super().close()
