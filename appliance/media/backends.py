"""Choosing devices from the configuration, and describing what is there for `appliance check`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.config import Config
from appliance.errors import DeviceError
from appliance.media.audio import (
    AlsaCapture,
    AlsaPlayback,
    AudioCapture,
    AudioPlayback,
    ToneCapture,
)
from appliance.media.encoded import SoftwareH264Camera
from appliance.media.pattern import CameraFaults, TestPatternCamera
from appliance.media.picam import Picamera2H264, Picamera2Raw, list_cameras
from appliance.media.v4l2 import V4l2Camera, list_video_devices
from appliance.media.video import EncodedCamera, RawCamera

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class CameraChoice:
    """A resolved camera backend: how to make the device, and whether it yields H.264."""

    backend: str  # picamera2 | v4l2 | test
    factory: Callable[[], RawCamera | EncodedCamera]
    encoded: bool
    why: str
    faults: CameraFaults | None = None  # test backend only: unplug/replug on request (demo)


def resolve_camera(cfg: Config) -> CameraChoice | None:
    """Pick the camera backend (`auto`: picamera2, then V4L2, then none). Blocking probe."""
    cam = cfg.camera
    h264 = cam.encoding == "h264"
    backend = cam.backend
    if backend == "none":
        return None
    if backend == "test":
        faults = CameraFaults()  # shared by every re-acquired instance, like one physical cable
        if h264:
            return CameraChoice("test", lambda: SoftwareH264Camera(TestPatternCamera(faults)),
                                True, "test pattern, H.264 by libx264", faults)
        return CameraChoice("test", lambda: TestPatternCamera(faults), False, "test pattern",
                            faults)
    if backend in ("auto", "picamera2"):
        cameras = list_cameras()
        if cameras or backend == "picamera2":
            model = cameras[0].get("Model", "?") if cameras else "not found yet"
            return CameraChoice("picamera2", Picamera2H264 if h264 else Picamera2Raw, h264,
                                f"picamera2 camera 0 ({model})")
    if backend == "v4l2" or (backend == "auto" and os.path.exists(cam.device)):
        input_format = cam.v4l2_format or None
        if h264:
            # A webcam's raw frames go through libx264 (no hardware encoder off the ISP).
            return CameraChoice("v4l2", lambda: SoftwareH264Camera(
                V4l2Camera(cam.device, input_format=input_format)), True,
                f"V4L2 {cam.device}, H.264 by libx264")
        return CameraChoice("v4l2", lambda: V4l2Camera(cam.device, input_format=input_format),
                            False, f"V4L2 {cam.device}")
    return None


def microphone_factory(cfg: Config) -> Callable[[], AudioCapture] | None:
    mic = cfg.microphone
    if mic.backend == "none":
        return None
    if mic.backend == "test":
        hz = mic.tone_hz
        return lambda: ToneCapture(hz)
    return lambda: AlsaCapture(mic.device)


def speaker_factory(cfg: Config) -> Callable[[], AudioPlayback] | None:
    spk = cfg.speaker
    if spk.backend == "none":
        return None
    return lambda: AlsaPlayback(spk.device)


@dataclass(frozen=True)
class AlsaDevices:
    """The sound cards and PCM names ALSA offers; `problem` says why none could be listed."""

    cards: tuple[str, ...] = ()
    capture: tuple[str, ...] = ()
    playback: tuple[str, ...] = ()
    problem: str = ""


def list_alsa() -> AlsaDevices:
    """The machine's ALSA cards and PCMs as pyalsaaudio sees them (`aplay -l`, `arecord -L`)."""
    try:
        import alsaaudio
    except ImportError as exc:
        return AlsaDevices(problem=f"pyalsaaudio is not installed ({exc}): cannot list them")
    alsa: Any = alsaaudio
    try:
        cards = []
        for index in alsa.card_indexes():
            short, long = alsa.card_name(index)
            cards.append(f"card {index}: {short} ({long})")
        return AlsaDevices(tuple(cards), tuple(alsa.pcms(alsa.PCM_CAPTURE)),
                           tuple(alsa.pcms(alsa.PCM_PLAYBACK)))
    except alsa.ALSAAudioError as exc:
        return AlsaDevices(problem=f"ALSA could not list them: {exc}")


def _alsa_lines(alsa: AlsaDevices) -> list[str]:
    if alsa.problem:
        return [f"ALSA devices: {alsa.problem}"]
    lines = ["ALSA sound cards:" + ("" if alsa.cards else
             " none (plug in a USB sound card or speaker; the Pi's own headphone/HDMI audio "
             "needs `dtparam=audio=on` in config.txt)")]
    lines += [f"  {card}" for card in alsa.cards]
    for what, pcms in (("capture", alsa.capture), ("playback", alsa.playback)):
        lines.append(f"ALSA {what} PCMs:" + ("" if pcms else " none"))
        lines += [f"  {pcm}" for pcm in pcms]
    return lines


def describe_machine() -> list[str]:
    """Human lines for `appliance check`: the cameras and sound devices this machine has."""
    lines: list[str] = []
    cameras = list_cameras()
    if cameras:
        for info in cameras:
            lines.append(f"picamera2 camera {info.get('Num', '?')}: {info.get('Model', '?')} "
                         f"({info.get('Id', '?')})")
    else:
        lines.append("picamera2 cameras: none (no CSI camera, or picamera2 not installed)")
    videos = list_video_devices()
    lines.append("V4L2 devices: " + (", ".join(videos) if videos else "none"))
    return lines + _alsa_lines(list_alsa())


def describe_media(cfg: Config) -> list[str]:
    """Human lines for `appliance check`: what exists, and what this configuration would use."""
    lines = describe_machine()
    try:
        choice = resolve_camera(cfg)
    except DeviceError as exc:
        choice = None
        lines.append(f"camera probe failed: {exc}")
    cam = cfg.camera
    size = f"{cam.width}x{cam.height}@{cam.fps} {cam.encoding}"
    if choice is None:
        why = "disabled" if cam.backend == "none" else "no camera found"
        lines.append(f"camera (backend {cam.backend}): none: {why}")
    else:
        lines.append(f"camera (backend {cam.backend}): would use {choice.why}, {size}")
    alsa = list_alsa()
    for role, section, what, pcms in (("microphone", cfg.microphone, "capture", alsa.capture),
                                      ("speaker", cfg.speaker, "playback", alsa.playback)):
        if section.backend == "none":
            lines.append(f"{role}: none (disabled)")
        elif section.backend == "test":
            lines.append(f"{role}: test tone {cfg.microphone.tone_hz:g} Hz")
        else:
            base = section.device.split(":")[0]
            known = section.device in pcms or base in pcms or base in ("hw", "plughw")
            note = "" if known else " (not listed by ALSA: check the name)"
            lines.append(f"{role}: would use ALSA {what} device {section.device!r}{note}")
    return lines
