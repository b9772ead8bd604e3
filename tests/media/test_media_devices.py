"""Device backends on their own: test pattern, tone, ALSA file-plugin capture and playback."""

from __future__ import annotations

import errno
import time

import numpy as np
import pytest
from media_helpers import AlsaFiles

from appliance.devserver.stats import dominant_frequency
from appliance.errors import DeviceError
from appliance.media.audio import FRAME_BYTES, AlsaCapture, AlsaPlayback, ToneCapture
from appliance.media.pattern import CameraFaults, TestPatternCamera
from appliance.media.stamp import read_stamp
from appliance.media.video import RawFrame, VideoMode, i420_size, pack_i420


def test_pattern_frames_are_stamped_in_order_and_paced() -> None:
    cam = TestPatternCamera()
    cam.open(VideoMode(320, 240, 50))
    seen: list[RawFrame] = []
    stamps = []

    def consume(frame: RawFrame) -> None:
        seen.append(frame)
        y = frame.data[: 320 * 240].reshape(240, 320)
        stamps.append(read_stamp(y))

    start = time.monotonic()
    for _ in range(10):
        cam.read(consume)
    elapsed = time.monotonic() - start
    cam.close()
    assert [s.counter for s in stamps if s] == list(range(10))
    assert all(len(f.data) == i420_size(320, 240) and f.data.flags.writeable for f in seen)
    assert 0.15 <= elapsed < 1.0  # 10 frames at 50 fps, paced like a sensor


def test_pattern_faults() -> None:
    faults = CameraFaults()
    cam = TestPatternCamera(faults)
    cam.open(VideoMode(320, 240, 30))
    faults.lose()
    with pytest.raises(DeviceError):
        cam.read(lambda f: None)
    cam.close()
    with pytest.raises(DeviceError):
        cam.open(VideoMode(320, 240, 30))
    faults.replug()
    cam.open(VideoMode(320, 240, 30))
    cam.close()
    assert faults.opens == 3


def test_pack_strided_i420() -> None:
    w, h, stride = 6, 4, 8
    buf = np.zeros(h * stride * 3 // 2, dtype=np.uint8)
    buf[: h * stride] = 1  # Y incl. padding
    buf[h * stride : h * stride + (h // 2) * (stride // 2)] = 2
    buf[h * stride + (h // 2) * (stride // 2) :] = 3
    out = np.empty(i420_size(w, h), dtype=np.uint8)
    pack_i420(buf.reshape(-1, stride), w, h, stride, out)
    assert (out[: w * h] == 1).all()
    assert (out[w * h : w * h + 6] == 2).all() and (out[w * h + 6 :] == 3).all()


def test_tone_capture_is_the_configured_frequency() -> None:
    mic = ToneCapture(1234.0)
    mic.open()
    pcm = np.frombuffer(b"".join(mic.read() for _ in range(50)), dtype="<i2")
    mic.close()
    hz = dominant_frequency(pcm, 48000)
    assert hz is not None and abs(hz - 1234.0) < 2


def test_alsa_capture_reads_the_file(alsa_files: AlsaFiles) -> None:
    alsa_files.write_tone(440.0, 1.0)
    mic = AlsaCapture("kiosk_mic")
    mic.open()
    frames = [mic.read() for _ in range(50)]
    mic.close()
    mic.close()  # idempotent
    assert all(len(f) == FRAME_BYTES for f in frames)
    hz = dominant_frequency(np.frombuffer(b"".join(frames), dtype="<i2"), 48000)
    assert hz is not None and abs(hz - 440.0) < 2


def test_alsa_playback_writes_the_file(alsa_files: AlsaFiles) -> None:
    spk = AlsaPlayback("kiosk_spk")
    spk.open()
    t = np.arange(48000) / 48000
    pcm = (np.sin(2 * np.pi * 1000 * t) * 8000).astype("<i2").tobytes()
    for i in range(100):
        spk.write(pcm[i * FRAME_BYTES : (i + 1) * FRAME_BYTES])
    spk.close()
    played = alsa_files.played()
    assert len(played) == 48000
    hz = dominant_frequency(played, 48000)
    assert hz is not None and abs(hz - 1000.0) < 2


def test_alsa_missing_device_is_a_device_error(alsa_files: AlsaFiles) -> None:
    with pytest.raises(DeviceError, match="no_such_pcm"):
        AlsaCapture("no_such_pcm").open()
    with pytest.raises(DeviceError):
        AlsaPlayback("no_such_pcm").open()


class _XrunPcm:
    """pyalsaaudio 0.11 semantics: an xrun returns -EPIPE (already re-prepared), no raise."""

    def __init__(self) -> None:
        self.reads = self.writes = 0
        self.written: list[bytes] = []

    def read(self) -> tuple[int, bytes]:
        self.reads += 1
        if self.reads == 2:
            return -errno.EPIPE, b""
        if self.reads == 3:
            return 240, b"\x01\x00" * 240  # a short read: assembled into a full frame
        return 480, b"\x01\x00" * 480

    def write(self, data: bytes) -> int:
        self.writes += 1
        if self.writes == 1:
            return -errno.EPIPE
        self.written.append(data)
        return len(data) // 2

    def close(self) -> None:
        return None


def test_overrun_and_underrun_recovered_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    from appliance.media import audio

    pcm = _XrunPcm()
    monkeypatch.setattr(audio, "_open_pcm", lambda kind, device: (pcm, 1))
    mic = AlsaCapture("fake")
    mic.open()
    frames = [mic.read() for _ in range(3)]
    assert all(len(f) == FRAME_BYTES for f in frames) and mic.overruns == 1
    spk = AlsaPlayback("fake")
    spk.open()
    spk.write(b"\x02\x00" * 480)
    assert spk.underruns == 1 and pcm.written == [b"\x02\x00" * 480]
