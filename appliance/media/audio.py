"""Audio devices: ALSA capture/playback through pyalsaaudio, and a synthetic test tone."""

from __future__ import annotations

import errno
import logging
import math
import threading
import time
from typing import Any, Protocol

import numpy as np

from appliance.errors import DeviceError

log = logging.getLogger(__name__)

RATE = 48_000
FRAME_SAMPLES = RATE // 100  # 10 ms: what the APM and the mixer work in
FRAME_BYTES = FRAME_SAMPLES * 2  # mono S16
PERIODS = 4


class AudioCapture(Protocol):
    """A 48 kHz mono S16 source read in 10 ms frames. Blocking: call from a thread."""

    name: str
    overruns: int

    def open(self) -> None: ...

    def read(self) -> bytes:
        """Exactly one 10 ms frame (FRAME_BYTES); DeviceError when the device failed."""

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


class AudioPlayback(Protocol):
    """A 48 kHz mono S16 sink written in 10 ms frames. Blocking: call from a thread."""

    name: str
    underruns: int

    def open(self) -> None: ...

    def write(self, frame: bytes | bytearray) -> None: ...

    def close(self) -> None: ...


def _alsa() -> Any:
    try:
        import alsaaudio
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise DeviceError(f"pyalsaaudio is not installed: {exc}") from exc
    return alsaaudio


def _open_pcm(kind: str, device: str) -> tuple[Any, int]:
    """Open a PCM at 48 kHz S16 with 10 ms periods; returns it and its channel count."""
    alsa = _alsa()
    pcm_type = alsa.PCM_CAPTURE if kind == "capture" else alsa.PCM_PLAYBACK
    try:
        pcm = alsa.PCM(pcm_type, alsa.PCM_NORMAL, rate=RATE, channels=1,
                       format=alsa.PCM_FORMAT_S16_LE, periodsize=FRAME_SAMPLES,
                       periods=PERIODS, device=device)
    except alsa.ALSAAudioError as exc:
        raise DeviceError(f"cannot open ALSA {kind} device {device!r}: {exc}") from exc
    info = pcm.info()
    # hw: devices may refuse mono or 48 kHz; plughw:/default convert. Say so instead of
    # producing chipmunk audio.
    if info.get("rate") != RATE or info.get("format_name") != "S16_LE":
        pcm.close()
        raise DeviceError(f"ALSA {kind} device {device!r} gives {info.get('rate')} Hz "
                          f"{info.get('format_name')}, need {RATE} Hz S16_LE: use plughw:")
    channels = int(info.get("channels", 1))
    if channels not in (1, 2):
        pcm.close()
        raise DeviceError(f"ALSA {kind} device {device!r} has {channels} channels; use plughw:")
    return pcm, channels


class AlsaCapture:
    """pyalsaaudio capture; overruns (-EPIPE) are counted and recovered in place."""

    def __init__(self, device: str) -> None:
        self.name = f"alsa:{device}"
        self.device = device
        self.overruns = 0
        self._pcm: Any = None
        self._channels = 1
        self._pending = bytearray()

    def open(self) -> None:
        self._pcm, self._channels = _open_pcm("capture", self.device)
        self._pending = bytearray()

    def read(self) -> bytes:
        pcm = self._pcm
        if pcm is None:
            raise DeviceError(f"{self.name} is not open")
        want = FRAME_BYTES * self._channels
        alsa = _alsa()
        while len(self._pending) < want:
            try:
                length, data = pcm.read()
            except alsa.ALSAAudioError as exc:
                raise DeviceError(f"{self.name}: read failed: {exc}") from exc
            if length == -errno.EPIPE:
                # Overrun: pyalsaaudio already re-prepared the PCM; the lost audio is gone.
                self.overruns += 1
                log.debug("%s: overrun %d", self.name, self.overruns)
                continue
            if length < 0:
                raise DeviceError(f"{self.name}: read error {length}")
            self._pending += data
        chunk = bytes(self._pending[:want])
        del self._pending[:want]
        if self._channels == 2:
            return np.frombuffer(chunk, dtype="<i2")[::2].tobytes()
        return chunk

    def interrupt(self) -> None:
        return None  # a blocking read returns within one 10 ms period anyway

    def close(self) -> None:
        pcm, self._pcm = self._pcm, None
        if pcm is not None:
            pcm.close()


class AlsaPlayback:
    """pyalsaaudio playback; underruns are counted and recovered in place."""

    def __init__(self, device: str) -> None:
        self.name = f"alsa:{device}"
        self.device = device
        self.underruns = 0
        self._pcm: Any = None
        self._channels = 1

    def open(self) -> None:
        self._pcm, self._channels = _open_pcm("playback", self.device)

    def write(self, frame: bytes | bytearray) -> None:
        pcm = self._pcm
        if pcm is None:
            raise DeviceError(f"{self.name} is not open")
        if self._channels == 2:
            frame = np.repeat(np.frombuffer(frame, dtype="<i2"), 2).tobytes()
        alsa = _alsa()
        for _ in range(2):
            try:
                written = pcm.write(frame)
            except alsa.ALSAAudioError as exc:
                raise DeviceError(f"{self.name}: write failed: {exc}") from exc
            if written != -errno.EPIPE:
                if written < 0:
                    raise DeviceError(f"{self.name}: write error {written}")
                return
            # Underrun: pyalsaaudio re-prepared the PCM; write the frame once more.
            self.underruns += 1
            log.debug("%s: underrun %d", self.name, self.underruns)

    def close(self) -> None:
        pcm, self._pcm = self._pcm, None
        if pcm is not None:
            pcm.close()


class MicrophoneFaults:
    """Switches a test flips to make the test microphone fail (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fail_reads = 0
        self._fail_opens = 0
        self.opens = 0

    def fail_next_read(self, opens_failing: int = 0) -> None:
        """The next read raises an I/O error; the following `opens_failing` opens fail too."""
        with self._lock:
            self._fail_reads += 1
            self._fail_opens = opens_failing

    def check_open(self) -> None:
        with self._lock:
            self.opens += 1
            if self._fail_opens > 0:
                self._fail_opens -= 1
                raise DeviceError("test microphone missing")

    def check_read(self) -> None:
        with self._lock:
            if self._fail_reads > 0:
                self._fail_reads -= 1
                raise DeviceError("test microphone I/O error")


class ToneCapture:
    """A sine tone paced in real time: the test and demo microphone."""

    def __init__(self, hz: float = 440.0, amplitude: float = 0.3,
                 faults: MicrophoneFaults | None = None) -> None:
        self.name = f"tone:{hz:g}Hz"
        self.hz = hz
        self.amplitude = amplitude
        self.faults = faults or MicrophoneFaults()
        self.overruns = 0
        self._stop = threading.Event()
        self._sample = 0
        self._next_ns = 0
        self._open = False

    def open(self) -> None:
        self.faults.check_open()
        self._stop.clear()
        self._next_ns = time.monotonic_ns()
        self._open = True

    def read(self) -> bytes:
        if not self._open:
            raise DeviceError(f"{self.name} is not open")
        self.faults.check_read()
        delay = (self._next_ns - time.monotonic_ns()) / 1e9
        if delay > 0:
            self._stop.wait(delay)  # pacing a generator like a sound card clock
        self._next_ns += 10_000_000
        t = (self._sample + np.arange(FRAME_SAMPLES)) / RATE
        self._sample += FRAME_SAMPLES
        pcm = np.sin(2 * math.pi * self.hz * t) * (self.amplitude * 32767)
        return pcm.astype("<i2").tobytes()

    def interrupt(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._open = False
        self._stop.set()
