"""Camera backends: fake-Picamera2 contract (raw + h264), software H.264, V4L2 path via lavfi."""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np
import pytest
from fake_picamera2 import H264Encoder, Picamera2, Replay, install, uninstall

from appliance.config import CameraConfig, Config
from appliance.errors import DeviceError
from appliance.media import picam
from appliance.media.backends import resolve_camera
from appliance.media.encoded import SoftwareH264Camera
from appliance.media.pattern import TestPatternCamera
from appliance.media.picam import Picamera2H264, Picamera2Raw
from appliance.media.stamp import read_stamp
from appliance.media.v4l2 import V4l2Camera
from appliance.media.video import RawFrame, VideoMode

MODE = VideoMode(640, 360, 30)


@pytest.fixture
def fake_picamera2() -> Iterator[None]:
    install()
    yield
    uninstall()


def test_picamera2_missing_is_a_device_error() -> None:
    uninstall()
    with pytest.raises(DeviceError, match="picamera2"):
        Picamera2Raw().open(MODE)
    assert picam.list_cameras() == []


def test_raw_contract_yuv420_zero_copy(fake_picamera2: None) -> None:
    cam = Picamera2Raw()
    cam.open(MODE)
    fake = Picamera2.opened[-1]
    assert fake.camera_config is not None
    assert fake.camera_config["main"] == {"size": (640, 360), "format": "YUV420", "stride": 640}
    assert fake.camera_config["controls"] == {"FrameRate": 30.0}
    seen: list[RawFrame] = []
    for _ in range(3):
        cam.read(seen.append)
    # The frame handed on is a view of the camera's own buffer: no copy, no conversion.
    assert all(np.shares_memory(f.data, fake.buffers[(i + 1) % len(fake.buffers)])
               for i, f in enumerate(seen))
    assert all(f.data.flags.c_contiguous and f.data.ndim == 1 for f in seen)
    assert fake.released == fake.captured == fake.mapped == 3
    cam.close()
    cam.close()
    assert fake.closed and not fake.started


def test_replayed_frames_come_in_turn_at_the_frame_rate(fake_picamera2: None) -> None:
    # The media bench's raw lane: recorded frames through the Pi's own raw path.
    frames = [np.full((MODE.height * 3 // 2, MODE.width), v, dtype=np.uint8) for v in (1, 2)]
    Picamera2.replay = Replay(frames=frames)
    cam = Picamera2Raw()
    cam.open(MODE)
    seen: list[int] = []
    for _ in range(4):
        cam.read(lambda f: seen.append(int(f.data[0])))
    captured = Picamera2.opened[-1].captured
    cam.close()
    assert seen == [2, 1, 2, 1] and captured == 4


def test_replayed_h264_restarts_at_its_idr_on_a_forced_keyframe(fake_picamera2: None) -> None:
    # The media bench's h264 lane: a recorded clip through the hardware-encoder path.
    clip = [(b"\x00\x00\x00\x01" + f"F{i}".encode(), i == 0) for i in range(100)]
    Picamera2.replay = Replay(clip=clip)
    cam = Picamera2H264()
    cam.open(MODE)
    units = [u for _ in range(4) for u in cam.read()]
    assert [u.data[4:] for u in units] == [b"F0", b"F1", b"F2", b"F3"]
    assert [u.keyframe for u in units] == [True, False, False, False]
    cam.request_keyframe()
    after: list[bytes] = []
    while b"F0" not in after and len(after) < 40:  # the clip would loop only after 96 more
        after += [u.data[4:] for u in cam.read()]
    cam.close()
    # What was queued before the request goes on in order; then the clip restarts at its IDR.
    restart = after.index(b"F0")
    assert after[:restart] == [f"F{i}".encode() for i in range(4, 4 + restart)]
    stamps = [u.timestamp_us for u in units]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_raw_contract_padded_stride_is_packed(fake_picamera2: None) -> None:
    Picamera2.stride_pad = 64
    cam = Picamera2Raw()
    cam.open(VideoMode(320, 240, 30))
    frames: list[bytes] = []
    cam.read(lambda f: frames.append(f.data.tobytes()))
    cam.close()
    assert len(frames[0]) == 320 * 240 * 3 // 2
    assert Picamera2.opened[-1].released == 1


def test_raw_contract_no_camera(fake_picamera2: None) -> None:
    Picamera2.cameras, saved = [], Picamera2.cameras
    try:
        with pytest.raises(DeviceError, match="no camera"):
            Picamera2Raw().open(MODE)
    finally:
        Picamera2.cameras = saved


def test_h264_contract(fake_picamera2: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(picam, "_BITRATE_RESTART_GAP", 0.0)
    cam = Picamera2H264()
    cam.open(MODE)
    fake = Picamera2.opened[-1]
    assert fake.camera_config is not None and fake.camera_config["main"]["format"] == "YUV420"
    enc = H264Encoder.instances[-1]
    assert enc.repeat and enc.bitrate and enc.iperiod == 300
    units = [u for _ in range(3) for u in cam.read()]
    assert units[0].keyframe and not units[1].keyframe
    assert units[0].data.startswith(b"\x00\x00\x00\x01")
    assert {(u.width, u.height) for u in units} == {(640, 360)}
    assert [u.timestamp_us for u in units] == sorted(u.timestamp_us for u in units)
    cam.request_keyframe()
    assert enc.keyframes_forced == 1
    assert any(u.keyframe for _ in range(3) for u in cam.read())
    cam.set_bitrate(enc.bitrate * 3)  # a big change restarts the encoder with the new target
    assert H264Encoder.instances[-1] is not enc
    assert H264Encoder.instances[-1].bitrate == (enc.bitrate or 0) * 3
    cam.set_bitrate((enc.bitrate or 0) * 3 + 1000)  # small change: left alone
    assert len(H264Encoder.instances) == 2
    cam.close()
    assert fake.closed


def test_auto_prefers_picamera2(fake_picamera2: None) -> None:
    choice = resolve_camera(Config(camera=CameraConfig(backend="auto", encoding="h264")))
    assert choice is not None and choice.backend == "picamera2" and choice.encoded


def test_auto_without_any_camera_is_none() -> None:
    uninstall()
    cfg = Config(camera=CameraConfig(backend="auto", device="/dev/video-nonexistent"))
    assert resolve_camera(cfg) is None


def test_software_h264_decodes_with_stamps() -> None:
    cam = SoftwareH264Camera(TestPatternCamera())
    cam.open(VideoMode(320, 240, 60))
    decoder = av.CodecContext.create("h264", "r")
    units = []
    for i in range(12):
        if i == 6:
            cam.request_keyframe()
        units += cam.read()
    cam.set_bitrate(300_000)
    units += cam.read()
    cam.close()
    assert units[0].keyframe and sum(u.keyframe for u in units) == 2
    stamps = []
    for unit in units:
        for frame in decoder.decode(av.Packet(unit.data)):
            assert (frame.width, frame.height) == (320, 240)
            y = frame.to_ndarray(format="yuv420p")[:240]
            stamps.append(read_stamp(y))
    assert [s.counter for s in stamps if s] == list(range(len(stamps)))
    assert len(stamps) >= 12


def test_v4l2_path_via_lavfi() -> None:
    cam = V4l2Camera("testsrc2=size=320x240:rate=30", input_format=None,
                     container_format="lavfi")
    cam.open(VideoMode(640, 360, 30))  # the source is 320x240: libswscale scales natively
    frames: list[RawFrame] = []
    for _ in range(3):
        cam.read(frames.append)
    cam.close()
    cam.close()
    assert all(len(f.data) == 640 * 360 * 3 // 2 and f.data.flags.writeable for f in frames)


def test_v4l2_missing_device() -> None:
    with pytest.raises(DeviceError, match="video-nonexistent"):
        V4l2Camera("/dev/video-nonexistent").open(MODE)


