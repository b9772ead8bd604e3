"""`appliance check` lines: cameras, V4L2 nodes, ALSA PCMs, and what the config would use."""

from __future__ import annotations

import sys
import types

import pytest
from fake_picamera2 import install, uninstall
from media_helpers import AlsaFiles

from appliance.config import CameraConfig, Config, MicrophoneConfig, SpeakerConfig
from appliance.media import describe_media
from appliance.media.backends import describe_machine


def test_describe_with_alsa_and_test_camera(alsa_files: AlsaFiles) -> None:
    cfg = Config(camera=CameraConfig(backend="test", width=640, height=360, fps=30),
                 microphone=MicrophoneConfig(backend="alsa", device="kiosk_mic"),
                 speaker=SpeakerConfig(backend="alsa", device="missing_spk"))
    lines = describe_media(cfg)
    text = "\n".join(lines)
    assert "camera (backend test): would use test pattern, 640x360@30 raw" in text
    capture = lines.index("ALSA capture PCMs:")
    assert "  kiosk_mic" in lines[capture:lines.index("ALSA playback PCMs:")]
    assert "  kiosk_spk" in lines[lines.index("ALSA playback PCMs:"):]
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


def fake_alsa(cards: dict[int, tuple[str, str]], pcms: list[str]) -> types.ModuleType:
    """A stand-in for pyalsaaudio on a machine with the given cards."""
    module = types.ModuleType("alsaaudio")
    module.PCM_CAPTURE, module.PCM_PLAYBACK = 1, 0  # type: ignore[attr-defined]
    module.ALSAAudioError = type("ALSAAudioError", (Exception,), {})  # type: ignore[attr-defined]
    module.card_indexes = lambda: list(cards)  # type: ignore[attr-defined]
    module.card_name = lambda index: cards[index]  # type: ignore[attr-defined]
    module.pcms = lambda kind=0: list(pcms)  # type: ignore[attr-defined]
    return module


def test_sound_cards_are_listed_with_their_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "alsaaudio", fake_alsa(
        {0: ("Headphones", "bcm2835 Headphones"), 2: ("Device", "USB PnP Sound Device")},
        ["default", "plughw:CARD=Device,DEV=0"]))
    lines = describe_machine()
    assert lines[lines.index("ALSA sound cards:") + 1:][:2] == [
        "  card 0: Headphones (bcm2835 Headphones)", "  card 2: Device (USB PnP Sound Device)"]
    assert "  plughw:CARD=Device,DEV=0" in lines[lines.index("ALSA capture PCMs:"):]


def test_no_sound_card_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "alsaaudio", fake_alsa({}, []))
    lines = describe_machine()
    [cards] = [line for line in lines if line.startswith("ALSA sound cards:")]
    assert cards.startswith("ALSA sound cards: none (plug in a USB sound card")
    assert "ALSA capture PCMs: none" in lines and "ALSA playback PCMs: none" in lines


def test_without_pyalsaaudio_the_listing_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "alsaaudio", None)  # import raises ImportError
    lines = describe_machine()
    assert any(line.startswith("ALSA devices: pyalsaaudio is not installed") for line in lines)
