"""The configuration's shape: a frozen dataclass per section, its secret keys, plain-data views."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_DEVICE_FILE = Path("/boot/firmware/appliance.toml")
REDACTED = "***"

CameraBackend = Literal["auto", "picamera2", "v4l2", "test", "none"]
CameraEncoding = Literal["raw", "h264"]
MicrophoneBackend = Literal["alsa", "test", "none"]
SpeakerBackend = Literal["alsa", "none"]
PinFactory = Literal["auto", "lgpio", "mock"]


def _secret() -> Any:
    return field(default=None, metadata={"secret": True})


@dataclass(frozen=True)
class LiveKitConfig:
    url: str = ""
    room: str = ""
    identity: str = ""  # empty means: the hostname
    name: str = ""  # empty means: the identity
    token: str | None = _secret()
    api_key: str | None = None
    api_secret: str | None = _secret()
    api_secret_file: Path | None = None
    token_url: str | None = None
    device_key_file: Path | None = None
    token_ttl: float = 6 * 3600.0


@dataclass(frozen=True)
class CameraConfig:
    backend: CameraBackend = "auto"
    device: str = "/dev/video0"
    width: int = 1280
    height: int = 720
    fps: int = 30
    encoding: CameraEncoding = "raw"
    v4l2_format: str = "mjpeg"  # empty: let the driver choose
    degrade_after: float = 10.0  # seconds of sustained POOR before stepping the camera down
    restore_after: float = 30.0  # seconds of sustained GOOD/EXCELLENT before stepping back up


@dataclass(frozen=True)
class MicrophoneConfig:
    backend: MicrophoneBackend = "alsa"
    device: str = "default"
    tone_hz: float = 440.0  # the `test` backend's synthetic tone


@dataclass(frozen=True)
class SpeakerConfig:
    backend: SpeakerBackend = "alsa"
    device: str = "default"


@dataclass(frozen=True)
class AudioConfig:
    echo_cancellation: bool = True
    noise_suppression: bool = True
    auto_gain_control: bool = True
    high_pass_filter: bool = True


@dataclass(frozen=True)
class GpioConfig:
    profile: str = "default"
    pin_factory: PinFactory = "auto"
    mute_hold: float = 2.0
    leave_hold: float = 5.0
    bounce_time: float = 0.05


@dataclass(frozen=True)
class ReconnectConfig:
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    auth_backoff_max: float = 300.0
    stable_after: float = 60.0
    media_stall_timeout: float = 10.0
    removed_stay_out: float = 300.0  # after an operator removed the kiosk from its room
    probe_interval: float = 1.25  # mean seconds between /rtc/validate probes while out (0 = off)


@dataclass(frozen=True)
class RemoteConfig:
    operators: str = "operator-*"  # comma-separated identity patterns that may call kiosk RPCs
    attributes: bool = True  # publish health as participant attributes
    allow_unmute: bool = False  # remote unmute / camera-on; only the per-device file may set it


@dataclass(frozen=True)
class WatchdogConfig:
    max_time_outside_room: float = 0.0  # 0 = off


@dataclass(frozen=True)
class ControlConfig:
    socket: Path = Path("/run/appliance/control.sock")


@dataclass(frozen=True)
class DeviceConfig:
    file: Path = DEFAULT_DEVICE_FILE


@dataclass(frozen=True)
class Config:
    livekit: LiveKitConfig = field(default_factory=LiveKitConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    microphone: MicrophoneConfig = field(default_factory=MicrophoneConfig)
    speaker: SpeakerConfig = field(default_factory=SpeakerConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)
    reconnect: ReconnectConfig = field(default_factory=ReconnectConfig)
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)

    def __repr__(self) -> str:
        return f"Config({redacted_dict(self)!r})"

    @property
    def token_source(self) -> Literal["static", "local", "endpoint"]:
        lk = self.livekit
        if lk.token is not None:
            return "static"
        if lk.token_url is not None:
            return "endpoint"
        return "local"


SECTIONS: dict[str, type[Any]] = {
    f.name: typing.get_type_hints(Config)[f.name] for f in dataclasses.fields(Config)
}
SECRET_KEYS = frozenset(
    f"{section}.{f.name}"
    for section, cls in SECTIONS.items()
    for f in dataclasses.fields(cls)
    if f.metadata.get("secret")
)
# Files whose *contents* are secrets: they must be private to the service user.
SECRET_FILE_KEYS = ("livekit.api_secret_file", "livekit.device_key_file")


def redacted_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    """The configuration as plain data with every secret replaced by `***`."""
    out: dict[str, dict[str, Any]] = {}
    for section in SECTIONS:
        table = dataclasses.asdict(getattr(cfg, section))
        for key, value in table.items():
            if f"{section}.{key}" in SECRET_KEYS and value is not None:
                table[key] = REDACTED
            elif isinstance(value, Path):
                table[key] = str(value)
        out[section] = table
    return out


def to_toml(data: Mapping[str, Mapping[str, Any]]) -> str:
    """Render plain two-level data as TOML (what `appliance check` prints)."""
    lines: list[str] = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            if value is None:
                lines.append(f"# {key} is not set")
            elif isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, int | float):
                lines.append(f"{key} = {value!r}")
            else:
                escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
                lines.append(f'{key} = "{escaped}"')
        lines.append("")
    return "\n".join(lines)
