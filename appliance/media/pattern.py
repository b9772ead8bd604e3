"""Test-pattern camera: a synthetic I420 picture stamped with frame counter and capture time."""

from __future__ import annotations

import threading
import time

import numpy as np

from appliance.errors import DeviceError
from appliance.media.stamp import band_height, stamp
from appliance.media.video import RawConsumer, RawFrame, U8Array, VideoMode, i420_size

_RING = 3  # frames in flight: the one being captured never aliases the one being converted


class CameraFaults:
    """Switches a test flips to make the test camera fail like real hardware (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lose_next = False
        self._unplugged = False
        self.opens = 0

    def lose(self) -> None:
        """The next read fails as if the cable was pulled, and opens fail until `replug`."""
        with self._lock:
            self._lose_next = True
            self._unplugged = True

    def replug(self) -> None:
        with self._lock:
            self._unplugged = False

    def check_open(self) -> None:
        with self._lock:
            self.opens += 1
            if self._unplugged:
                raise DeviceError("test camera unplugged")

    def check_read(self) -> None:
        with self._lock:
            if self._lose_next:
                self._lose_next = False
                raise DeviceError("test camera lost")


class TestPatternCamera:
    """Frames paced by the monotonic clock at the mode's fps; each carries a devserver stamp."""

    __test__ = False  # not a pytest class

    def __init__(self, faults: CameraFaults | None = None) -> None:
        self.name = "test pattern"
        self.faults = faults or CameraFaults()
        self._stop = threading.Event()
        self._mode: VideoMode | None = None
        self._ring: list[U8Array] = []
        self._count = 0
        self._next_ns = 0
        self._row = np.zeros(0, dtype=np.uint8)

    def open(self, mode: VideoMode) -> None:
        self.faults.check_open()
        self._stop.clear()
        self._mode = mode
        size = i420_size(mode.width, mode.height)
        self._ring = [self._background(mode) for _ in range(_RING)]
        assert all(len(buf) == size for buf in self._ring)
        self._next_ns = time.monotonic_ns()
        self._row = np.linspace(40, 200, mode.width, dtype=np.uint8)

    @staticmethod
    def _background(mode: VideoMode) -> U8Array:
        # Built once per open: per frame only the stamp band and a moving bar are written.
        w, h = mode.width, mode.height
        buf = np.empty(i420_size(w, h), dtype=np.uint8)
        y = buf[: w * h].reshape(h, w)
        y[:] = np.linspace(40, 200, w, dtype=np.uint8)[np.newaxis, :]
        buf[w * h :] = 128
        return buf

    def read(self, consume: RawConsumer) -> None:
        mode = self._mode
        if mode is None:
            raise DeviceError("test camera is not open")
        self.faults.check_read()
        # Pace like a sensor: wait for the next frame time (interruptible, never drifts).
        period_ns = 1_000_000_000 // mode.fps
        delay = (self._next_ns - time.monotonic_ns()) / 1e9
        if delay > 0 and self._stop.wait(delay):
            return
        self._next_ns = max(self._next_ns + period_ns, time.monotonic_ns() - period_ns)
        w, h = mode.width, mode.height
        buf = self._ring[self._count % _RING]
        y = buf[: w * h].reshape(h, w)
        top = band_height(w)
        bar_w = max(2, w // 16)
        x = (self._count * 8) % (w - bar_w)
        stripe = y[top:, :]
        stripe[:] = self._row  # erase last frame's bar
        stripe[:, x : x + bar_w] = 235
        cw = w // 2
        planes = (y, buf[w * h : w * h + cw * (h // 2)].reshape(h // 2, cw),
                  buf[w * h + cw * (h // 2) :].reshape(h // 2, cw))
        now = time.monotonic_ns()
        stamp(planes, self._count, now)
        self._count += 1
        consume(RawFrame(buf, w, h, now))

    def interrupt(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        self._mode = None
        self._ring = []
