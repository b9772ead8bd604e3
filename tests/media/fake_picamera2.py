"""A fake `picamera2` module: only the documented API subset the media layer uses, strictly.

Signatures follow picamera2 (Picamera2, MappedArray, encoders.H264Encoder, outputs.Output);
anything else is absent, so using an undocumented call fails the contract tests.

With a `Replay` installed it also plays recorded media through that API at the sensor's frame
rate (bench/media_room_bench.py): decoded I420 frames for the raw path, pre-encoded H.264 access
units for the hardware-encoder path, so the kiosk runs exactly the code it runs on a Pi.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


@dataclass
class Replay:
    """Recorded media for the fake sensor: what a real camera and its encoder would hand out.

    `frames`: I420 frames, each (height * 3 // 2, width) uint8, mapped in turn by MappedArray.
    `clip`: Annex B access units with their keyframe flags; clip[0] is a keyframe. The encoder
    plays them in a loop and answers a forced keyframe by restarting at clip[0].
    """

    frames: list[Any] = field(default_factory=list)
    clip: list[tuple[bytes, bool]] = field(default_factory=list)


class FrameClock:
    """The sensor's frame clock: deadlines at a fixed period, not sleeps that drift."""

    def __init__(self, fps: float) -> None:
        self.period = 1 / fps
        self.due = time.monotonic()

    def wait(self, stop: threading.Event) -> bool:
        """Wait for the next frame time; False if `stop` was set meanwhile (stop wakes it)."""
        now = time.monotonic()
        self.due = max(self.due + self.period, now - self.period)  # never a burst after a stall
        return not stop.wait(max(0.0, self.due - now))


class Output:
    """picamera2.outputs.Output: encoders call outputframe(frame, keyframe, timestamp, ...)."""

    def __init__(self, pts: Any = None) -> None:
        self.recording = False

    def start(self) -> None:
        self.recording = True

    def stop(self) -> None:
        self.recording = False

    def outputframe(self, frame: bytes, keyframe: bool = True, timestamp: int | None = None,
                    packet: Any = None, audio: bool = False) -> None:
        raise NotImplementedError


class H264Encoder:
    """picamera2.encoders.H264Encoder(bitrate, repeat, iperiod, framerate, ...)."""

    instances: ClassVar[list[H264Encoder]] = []

    def __init__(self, bitrate: int | None = None, repeat: bool = True,
                 iperiod: int | None = None, framerate: float | None = None,
                 enable_sps_framerate: bool = False, qp: int | None = None,
                 profile: str | None = None) -> None:
        self.bitrate, self.repeat, self.iperiod = bitrate, repeat, iperiod
        self.keyframes_forced = 0
        self._force = True  # the first frame of a stream is always a keyframe
        H264Encoder.instances.append(self)

    def force_key_frame(self) -> None:
        self.keyframes_forced += 1
        self._force = True

    def next_is_key(self) -> bool:
        key, self._force = self._force, False
        return key


class CompletedRequest:
    def __init__(self, cam: Picamera2, index: int) -> None:
        self.picam2 = cam
        self.config = cam.camera_config
        self.index = index
        self.released = False

    def release(self) -> None:
        assert not self.released, "request released twice"
        self.released = True
        self.picam2.released += 1


class MappedArray:
    """picamera2.MappedArray(request, stream, reshape=True, write=True): a view of the buffer."""

    def __init__(self, request: CompletedRequest, stream: str, reshape: bool = True,
                 write: bool = True) -> None:
        assert stream == "main"
        self._request = request
        self.array: Any = None

    def __enter__(self) -> MappedArray:
        assert not self._request.released, "mapped a released request"
        cam = self._request.picam2
        recorded = Picamera2.replay.frames if Picamera2.replay is not None else None
        buffers = recorded or cam.buffers
        self.array = buffers[self._request.index % len(buffers)]
        cam.mapped += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.array = None


class Picamera2:
    cameras: ClassVar[list[dict[str, Any]]] = [{"Model": "imx708", "Num": 0, "Id": "/base/fake"}]
    opened: ClassVar[list[Picamera2]] = []
    stride_pad = 0  # extra bytes per row, like an ISP with alignment
    replay: ClassVar[Replay | None] = None  # recorded media, paced at the frame rate

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        return list(Picamera2.cameras)

    def __init__(self, camera_num: int = 0, verbose_console: Any = None, tuning: Any = None,
                 allocator: Any = None) -> None:
        if camera_num >= len(Picamera2.cameras):
            raise IndexError("camera not found")
        self.camera_config: dict[str, Any] | None = None
        self.started = self.closed = False
        self.released = self.mapped = self.captured = 0
        self.buffers: list[Any] = []
        self.encoder: H264Encoder | None = None
        self.output: Output | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clock: FrameClock | None = None
        Picamera2.opened.append(self)

    def create_video_configuration(self, main: dict[str, Any] | None = None, lores: Any = None,
                                   raw: Any = None, transform: Any = None,
                                   colour_space: Any = None, buffer_count: int = 6,
                                   controls: dict[str, Any] | None = None,
                                   display: str = "main", encode: str = "main",
                                   queue: bool = True, sensor: Any = None,
                                   use_case: str = "video") -> dict[str, Any]:
        main = dict(main or {})
        main.setdefault("format", "XBGR8888")
        main.setdefault("size", (1280, 720))
        return {"use_case": use_case, "main": main, "buffer_count": buffer_count,
                "controls": dict(controls or {})}

    def configure(self, camera_config: dict[str, Any] | None = None) -> None:
        assert camera_config is not None and not self.started
        cfg = camera_config["main"]
        w, h = cfg["size"]
        cfg["stride"] = w + Picamera2.stride_pad
        self.camera_config = camera_config
        stride = cfg["stride"]
        self.buffers = [np.full((h * 3 // 2, stride), 16 + i, dtype=np.uint8)
                        for i in range(camera_config["buffer_count"])]

    def stream_configuration(self, name: str = "main") -> dict[str, Any]:
        assert self.camera_config is not None
        return dict(self.camera_config[name])

    def start(self, config: Any = None, show_preview: bool = False) -> None:
        assert self.camera_config is not None, "start before configure"
        self.started = True
        if self.encoder is not None:
            self._start_encoding()

    def capture_request(self, wait: Any = None, signal_function: Any = None,
                        flush: Any = None) -> CompletedRequest:
        assert self.started
        if Picamera2.replay is not None:
            if self._clock is None:
                self._clock = FrameClock(self.camera_config["controls"].get("FrameRate", 30.0))
            self._clock.wait(self._stop)  # stop() (and close()) wake it
        self.captured += 1
        return CompletedRequest(self, self.captured)

    def start_encoder(self, encoder: H264Encoder | None = None, output: Output | None = None,
                      pts: Any = None, quality: Any = None, name: str | None = None) -> None:
        assert isinstance(encoder, H264Encoder) and isinstance(output, Output)
        self.encoder, self.output = encoder, output
        if self.started:
            self._start_encoding()

    def stop_encoder(self, encoders: Any = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._thread = None
        self.encoder = None

    def _start_encoding(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._encode, daemon=True)
        self._thread.start()

    def _encode(self) -> None:
        assert self.camera_config is not None
        clock = FrameClock(self.camera_config["controls"].get("FrameRate", 30.0))
        clip = Picamera2.replay.clip if Picamera2.replay is not None else []
        n = at = 0
        while clock.wait(self._stop):
            enc, out = self.encoder, self.output
            if enc is None or out is None:
                return
            key = enc.next_is_key()
            if clip:
                # A forced keyframe restarts the recording at its first IDR: still a valid stream.
                at = 0 if key else at
                unit, key = clip[at]
                at = (at + 1) % len(clip)
                # Like the V4L2 encoder: the sensor timestamp of the frame, in microseconds.
                out.outputframe(unit, key, time.monotonic_ns() // 1000)
                continue
            nal = b"\x00\x00\x00\x01" + (b"\x67\x42" if key else b"\x41\x9a") + bytes([n % 256])
            out.outputframe(nal, key, n * 33_333)
            n += 1

    def stop(self) -> None:
        self.stop_encoder()
        self.started = False

    def close(self) -> None:
        self.stop()
        self.closed = True


def install() -> types.ModuleType:
    """Put the fake into sys.modules as `picamera2`, `picamera2.encoders`, `picamera2.outputs`."""
    module = types.ModuleType("picamera2")
    encoders = types.ModuleType("picamera2.encoders")
    outputs = types.ModuleType("picamera2.outputs")
    module.Picamera2 = Picamera2  # type: ignore[attr-defined]
    module.MappedArray = MappedArray  # type: ignore[attr-defined]
    encoders.H264Encoder = H264Encoder  # type: ignore[attr-defined]
    outputs.Output = Output  # type: ignore[attr-defined]
    module.encoders = encoders  # type: ignore[attr-defined]
    module.outputs = outputs  # type: ignore[attr-defined]
    sys.modules.update({"picamera2": module, "picamera2.encoders": encoders,
                        "picamera2.outputs": outputs})
    Picamera2.opened.clear()
    H264Encoder.instances.clear()
    Picamera2.stride_pad = 0
    Picamera2.replay = None
    return module


def uninstall() -> None:
    for name in ("picamera2", "picamera2.encoders", "picamera2.outputs"):
        sys.modules.pop(name, None)
