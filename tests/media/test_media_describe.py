"""`appliance check` lines: cameras, V4L2 nodes, ALSA PCMs, and what the config would use."""

from __future__ import annotations

from fake_picamera2 import install, uninstall
from media_helpers import AlsaFiles

from appliance.config import CameraConfig, Config, MicrophoneConfig, SpeakerConfig
from appliance.media import describe_media


def test_describe_with_alsa_and_test_camera(alsa_files: AlsaFiles) -> None:
    cfg = Config(camera=CameraConfig(backend="test", width=640, height=360, fps=30),
                 microphone=MicrophoneConfig(backend="alsa", device="kiosk_mic"),
                 speaker=SpeakerConfig(backend="alsa", device="missing_spk"))
    lines = describe_media(cfg)
    text = "\n".join(lines)
    assert "camera (backend test): would use test pattern, 640x360@30 raw" in text
    assert any(line.startswith("ALSA capture PCMs:") and "kiosk_mic" in line for line in lines)
    assert "microphone: would use ALSA capture device 'kiosk_mic'" in text
    assert "speaker: would use ALSA playback device 'missing_spk' (not listed" in text
    assert any(line.startswith("V4L2 devices:") for line in lines)


def test_describe_picamera2_and_none() -> None:
    install()
    try:
        cfg = Config(camera=CameraConfig(backend="auto", encoding="h264"),
                     microphone=MicrophoneConfig(backend="none"),
                     speaker=SpeakerConfig(backend="none"))
        text = "\n".join(describe_media(cfg))
    finally:
        uninstall()
    assert "picamera2 camera 0: imx708" in text
    assert "would use picamera2 camera 0 (imx708), 1280x720@30 h264" in text
    assert "microphone: none (disabled)" in text and "speaker: none (disabled)" in text
