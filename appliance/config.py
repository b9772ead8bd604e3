"""Configuration: frozen dataclasses from layered TOML and env, with one clear error per problem."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import os
import socket
import stat
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from appliance.claims import token_claims, token_room_identity
from appliance.errors import ConfigError
from appliance.files import CONFIG_LIMIT, TOML_DEPTH_LIMIT, read_regular, toml_depth

DEFAULT_CONFIG_FILE = Path("/etc/appliance/appliance.toml")
DEFAULT_DEVICE_FILE = Path("/boot/firmware/appliance.toml")
ENV_PREFIX = "APPLIANCE_"
# appliance.service has `LoadCredential=appliance:/etc/appliance/credentials`: systemd loads the
# folder file by file and names each credential "<id>_<file name>".
CREDENTIAL_ID = "appliance"
CREDENTIALS_DIR = Path("/etc/appliance/credentials")
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

Layer = dict[str, dict[str, Any]]

# Every number's accepted range (inclusive), with its unit; the README's reference shows these.
# Finite always: NaN and infinity are refused for every number.
RANGES: dict[str, tuple[float, float, str]] = {
    "livekit.token_ttl": (60, 30 * 86400, "s"),
    "camera.width": (16, 7680, "px"),
    "camera.height": (16, 4320, "px"),
    "camera.fps": (1, 120, "fps"),
    "camera.degrade_after": (0.1, 3600, "s"),
    "camera.restore_after": (0.1, 3600, "s"),
    "microphone.tone_hz": (20, 20000, "Hz"),
    "gpio.mute_hold": (0.1, 20, "s"),  # the control socket's hold is capped at 30 s
    "gpio.leave_hold": (0.1, 20, "s"),
    "gpio.bounce_time": (0.001, 1, "s"),
    "reconnect.backoff_initial": (0.05, 600, "s"),
    "reconnect.backoff_max": (0.05, 3600, "s"),
    "reconnect.auth_backoff_max": (0.05, 86400, "s"),
    "reconnect.stable_after": (1, 86400, "s"),
    "reconnect.media_stall_timeout": (1, 3600, "s"),
    "reconnect.removed_stay_out": (0, 7 * 86400, "s"),
    "reconnect.probe_interval": (0, 60, "s (0 = off)"),
    "watchdog.max_time_outside_room": (0, 7 * 86400, "s (0 = off)"),
}


def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(f'"{a}"' for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        parts = [_describe(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(parts)
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        Path: "a file path (string)",
    }.get(tp, str(tp))


def _found(value: Any) -> str:
    kind = {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "table",
    }.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind} {text}"


def _coerce(tp: Any, value: Any) -> tuple[bool, Any]:
    """Check `value` against the annotation `tp`; returns (ok, value as the field type)."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            ok, out = _coerce(arg, value)
            if ok:
                return True, out
        return False, None
    if origin is Literal:
        return (isinstance(value, str) and value in typing.get_args(tp)), value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if tp is str:
        return isinstance(value, str), value
    if tp is Path:
        ok = isinstance(value, str) and value != ""
        return ok, Path(value) if ok else None
    return False, None


def _from_env_text(tp: Any, text: str) -> Any:
    """Environment values are strings; turn them into what TOML would have given."""
    base = tp
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        base = next(a for a in typing.get_args(tp) if a is not type(None))
    if base is bool:
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        return text
    if base in (int, float):
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text
    return text


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def _env_name(dotted: str) -> str:
    return ENV_PREFIX + dotted.replace(".", "_").upper()


def _check_layer(
    raw: Mapping[str, Any], source: str, *, from_env: bool = False
) -> tuple[Layer, list[str]]:
    """Type-check one layer; returns the converted values and the problems found."""
    out: Layer = {}
    problems: list[str] = []
    all_keys = [f"{s}.{f.name}" for s, c in SECTIONS.items() for f in dataclasses.fields(c)]
    for section, table in raw.items():
        if section not in SECTIONS:
            hint = _suggest(section, list(SECTIONS))
            if not hint:
                hint = _suggest(f"{section}", all_keys)
            problems.append(f"{source}: unknown section `[{section}]`{hint}")
            continue
        if not isinstance(table, dict):
            problems.append(f"{source}: `{section}`: expected a table, found {_found(table)}")
            continue
        hints = _hints(SECTIONS[section])
        for key, value in table.items():
            dotted = f"{section}.{key}"
            where = f"`{_env_name(dotted)}` (`{dotted}`)" if from_env else f"`{dotted}`"
            if key not in hints:
                hint = _suggest(dotted, all_keys)
                problems.append(f"{source}: unknown key {where}{hint}")
                continue
            ok, converted = _coerce(hints[key], value)
            if not ok:
                shown = REDACTED if dotted in SECRET_KEYS else _found(value)
                problems.append(
                    f"{source}: {where}: expected {_describe(hints[key])}, found {shown}"
                )
                continue
            out.setdefault(section, {})[key] = converted
    return out, problems


def _check_private(path: Path, what: str) -> str | None:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"{what} {path}: cannot read it ({exc.strerror})"
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return (
            f"{what} {path} is readable by group or others (mode {stat.filemode(mode)}); "
            f"it holds a secret: run `chmod 600 {path}`"
        )
    return None


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A small regular TOML file as a dict; ConfigError (never a traceback) for anything else."""
    data = read_regular(path, what, limit=CONFIG_LIMIT)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    depth = toml_depth(text)
    if depth > TOML_DEPTH_LIMIT:
        raise ConfigError([f"{path}: arrays or tables nested {depth} deep; a {what} needs a "
                           f"few levels (at most {TOML_DEPTH_LIMIT})"])
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{path}: nested too deeply to parse"]) from None


def parse_layer(path: Path, *, check_permissions: bool = True) -> Layer:
    """Read and validate one TOML file (config or per-device file) on its own.

    Raises ConfigError listing every problem (unknown keys, wrong types, a secret in a file that
    group or others can read). Used by the loader and by provisioning before anything is written.
    """
    raw = read_toml(path, "configuration file")
    layer, problems = _check_layer(raw, str(path))
    holds_secret = any(k.split(".")[1] in layer.get(k.split(".")[0], {}) for k in SECRET_KEYS)
    if check_permissions and holds_secret:
        problem = _check_private(path, "configuration file")
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError(problems)
    return layer


def env_layer(env: Mapping[str, str]) -> tuple[Layer, list[str]]:
    """`APPLIANCE_<SECTION>_<KEY>` variables as a layer (section names have no underscore)."""
    raw: dict[str, dict[str, Any]] = {}
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        if section not in SECTIONS or not key:
            continue  # not ours (APPLIANCE_NETNS and friends)
        hints = _hints(SECTIONS[section])
        raw.setdefault(section, {})[key] = (
            _from_env_text(hints[key], text) if key in hints else text
        )
    return _check_layer(raw, "environment", from_env=True)


def _merge(layers: list[Layer]) -> Layer:
    merged: Layer = {}
    for layer in layers:
        for section, table in layer.items():
            merged.setdefault(section, {}).update(table)
    return merged


def _validate(cfg: Config, origin: Mapping[str, str]) -> list[str]:
    """Checks that span keys or need more than a type: ranges, required keys, token source."""
    problems: list[str] = []

    def bad(key: str, why: str) -> None:
        problems.append(f"{origin.get(key, 'defaults')}: `{key}`: {why}")

    lk = cfg.livekit
    if not lk.url:
        bad("livekit.url", 'required, found nothing (e.g. url = "wss://example.livekit.cloud")')
    else:
        why = _url_problem(lk.url, ("ws", "wss", "http", "https"))
        if why:
            bad("livekit.url", why)
    if not lk.room:
        bad("livekit.room", "required, found nothing")
    for key in ("token", "api_key", "api_secret", "token_url"):
        if getattr(lk, key) == "":
            bad(f"livekit.{key}", "empty; remove the key or give it a value")
    sources = []
    if lk.token is not None:
        sources.append("`livekit.token`")
    if lk.api_key is not None or lk.api_secret is not None or lk.api_secret_file is not None:
        sources.append("`livekit.api_key` + `livekit.api_secret`/`livekit.api_secret_file`")
    if lk.token_url is not None or lk.device_key_file is not None:
        sources.append("`livekit.token_url` + `livekit.device_key_file`")
    if not sources:
        problems.append(
            "livekit: no token source: set exactly one of `livekit.token`, "
            "`livekit.api_key` + `livekit.api_secret` (or `api_secret_file`), "
            "or `livekit.token_url` + `livekit.device_key_file`"
        )
    elif len(sources) > 1:
        problems.append(
            "livekit: more than one token source, set exactly one: " + "; ".join(sources)
        )
    else:
        if lk.api_key is not None or lk.api_secret is not None or lk.api_secret_file is not None:
            if lk.api_key is None:
                bad("livekit.api_key", "required with `livekit.api_secret`, found nothing")
            if (lk.api_secret is None) == (lk.api_secret_file is None):
                bad(
                    "livekit.api_secret",
                    "set exactly one of `livekit.api_secret` and `livekit.api_secret_file`",
                )
        if lk.token_url is not None or lk.device_key_file is not None:
            if lk.token_url is None:
                bad("livekit.token_url", "required with `livekit.device_key_file`")
            elif lk.token_url:
                why = _url_problem(lk.token_url, ("http", "https"))
                if why:
                    bad("livekit.token_url", why)
            if lk.device_key_file is None:
                bad("livekit.device_key_file", "required with `livekit.token_url`")
    for key in SECRET_FILE_KEYS:
        path = getattr(lk, key.split(".")[1])
        if path is not None:
            problem = _secret_file_problem(path, f"`{key}`:")
            if problem:
                problems.append(f"{origin.get(key, 'defaults')}: {problem}")
    if lk.token:
        problems += [f"{origin.get('livekit.token', 'defaults')}: `livekit.token`: {why}"
                     for why in _static_token_problems(lk.token, lk.room, lk.identity)]
    for key, (low, high, unit) in RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if not math.isfinite(value):
            bad(key, f"expected a finite number, found {value}")
        elif not low <= value <= high:
            bad(key, f"expected {_num(low)}..{_num(high)} {unit}, found {_num(value)}")
    for key in ("width", "height"):
        if getattr(cfg.camera, key) % 2:
            bad(f"camera.{key}", f"expected an even number (I420), found "
                f"{getattr(cfg.camera, key)}")
    rc = cfg.reconnect
    if rc.backoff_max < rc.backoff_initial:
        bad(
            "reconnect.backoff_max",
            f"expected at least `reconnect.backoff_initial` "
            f"({rc.backoff_initial:g}), found {rc.backoff_max:g}",
        )
    patterns = [p.strip() for p in cfg.remote.operators.split(",")]
    if cfg.remote.operators.strip() and not all(patterns):
        bad("remote.operators", "expected comma-separated identity patterns (e.g. "
            f'"operator-*,ops-laptop"), found an empty one in {cfg.remote.operators!r}')
    if 0 < rc.probe_interval < 0.2:
        bad("reconnect.probe_interval", "expected 0 (off) or at least 0.2 s, found "
            f"{rc.probe_interval:g}")
    if 0 < cfg.watchdog.max_time_outside_room < 10:
        bad("watchdog.max_time_outside_room", "expected 0 (off) or at least 10 s, found "
            f"{cfg.watchdog.max_time_outside_room:g}")
    return problems


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """Why `url` cannot be used (None if it can): a scheme of `schemes`, a host, a valid port."""
    names = [f"{s}://" for s in schemes]
    want = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" or {names[-1]}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        return f"not a valid URL ({exc}): {url!r}"
    if parts.scheme not in schemes or not parts.hostname:
        return f"expected a URL starting {want} and naming a host, found {url!r}"
    return None


def _secret_file_problem(path: Path, what: str) -> str | None:
    """A secret file must be a regular, readable, non-empty file that only its owner can read."""
    from appliance.session.tokens import read_secret  # the very reader `run` uses

    try:
        read_secret(path, what)
    except ConfigError as exc:
        return exc.problems[0]
    return _check_private(path, what)


def _static_token_problems(token: str, room: str, identity: str) -> list[str]:
    """A static token must be a JWT whose room grant and identity match the configuration."""
    if token_claims(token) is None:
        return ["not a LiveKit access token (a JWT with three dot-separated parts)"]
    token_room, token_identity = token_room_identity(token)
    problems = []
    if token_room is not None and room and token_room != room:
        problems.append(f"grants room {token_room!r}, but `livekit.room` is {room!r}: the kiosk "
                        "would sit in the token's room while claiming the configured one")
    if token_identity is not None and identity and token_identity != identity:
        problems.append(f"is for identity {token_identity!r}, but `livekit.identity` is "
                        f"{identity!r}")
    return problems


def _profile_problems(cfg: Config) -> list[str]:
    """The board profile `gpio.profile` names must exist and parse (as `run` will need it)."""
    from appliance.devices.profiles import load_profile

    try:
        load_profile(cfg.gpio.profile)
    except ConfigError as exc:
        return exc.problems
    return []


def _build(merged: Layer) -> Config:
    sections = {name: cls(**merged.get(name, {})) for name, cls in SECTIONS.items()}
    lk: LiveKitConfig = sections["livekit"]
    identity = lk.identity or socket.gethostname()
    lk = dataclasses.replace(
        lk,
        identity=identity,
        name=lk.name or identity,
        api_secret_file=_expand(lk.api_secret_file),
        device_key_file=_expand(lk.device_key_file),
    )
    sections["livekit"] = lk
    return Config(**sections)


def _expand(path: Path | None) -> Path | None:
    """Allow `$CREDENTIALS_DIRECTORY/name` so systemd's LoadCredential= can hand us secrets.

    Outside the service (`sudo appliance check` on a kiosk) that variable is unset: a name the
    unit's `LoadCredential=appliance:/etc/appliance/credentials` would provide is read from
    that folder instead, so the check sees the very file the service gets.
    """
    if path is None:
        return None
    text = str(path)
    if not os.environ.get("CREDENTIALS_DIRECTORY"):
        for prefix in ("$CREDENTIALS_DIRECTORY/", "${CREDENTIALS_DIRECTORY}/"):
            if text.startswith(prefix + CREDENTIAL_ID + "_"):
                return CREDENTIALS_DIR / text[len(prefix) + len(CREDENTIAL_ID) + 1:]
    return Path(os.path.expandvars(text))


@dataclass(frozen=True)
class LayerFile:
    """A file the loader looks for, why that path, and whether it is there."""

    role: str  # "configuration file" or "per-device file"
    path: Path
    chosen_by: str  # "--config", "the default path", "`device.file`", ...
    required: bool  # named explicitly: it must exist
    exists: bool

    def describe(self) -> str:
        state = ("used" if self.exists else "not found" if self.required
                 else "not found, skipped")
        return f"{self.role} {self.path} ({self.chosen_by}): {state}"


def _config_file(config_file: Path | None) -> LayerFile:
    if config_file is not None:
        return LayerFile("configuration file", config_file, "--config", True,
                         config_file.exists())
    return LayerFile("configuration file", DEFAULT_CONFIG_FILE,
                     "the default path; --config FILE names another", False,
                     DEFAULT_CONFIG_FILE.exists())


def _device_file(device_file: Path | None, env_values: Layer, earlier: list[Layer]) -> LayerFile:
    """The per-device file: --device-file (must exist), else `device.file`, else the default.

    `device.file` may come from the environment or from the configuration file (`earlier`).
    """
    if device_file is not None:
        return LayerFile("per-device file", device_file, "--device-file", True,
                         device_file.exists())
    from_env = env_values.get("device", {}).get("file")
    from_file = _merge(earlier).get("device", {}).get("file")
    path, chosen_by = ((Path(from_env), _env_name("device.file")) if from_env
                       else (Path(from_file), "`device.file`") if from_file
                       else (DEFAULT_DEVICE_FILE, "the default path"))
    return LayerFile("per-device file", path, chosen_by, False, path.exists())


def layer_files(
    config_file: Path | None = None,
    device_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> list[str]:
    """Which files `load` looks for and uses, and the environment settings, as lines to show."""
    env = os.environ if env is None else env
    env_values, _ = env_layer(env)
    config = _config_file(config_file)
    earlier: list[Layer] = []
    if config.exists:
        with contextlib.suppress(ConfigError):  # load() reports it and ignores its device.file
            earlier.append(parse_layer(config.path))
    names = [_env_name(f"{section}.{key}") for section, table in env_values.items()
             for key in table]
    return [config.describe(), _device_file(device_file, env_values, earlier).describe(),
            "environment: " + (", ".join(names) if names else
                               f"no {ENV_PREFIX}<SECTION>_<KEY> settings")]


def load(
    config_file: Path | None = None,
    device_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Defaults < config file < per-device file < environment; ConfigError lists every problem.

    `config_file` None means the default path, used only if it exists; an explicit path must exist.
    `device_file` None means `device.file` from the layers before it, used only if it exists.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    layers: list[tuple[str, Layer]] = []
    env_values, env_problems = env_layer(env)

    config = _config_file(config_file)
    if config.required or config.exists:
        try:
            layers.append((str(config.path), parse_layer(config.path)))
        except ConfigError as exc:
            problems += exc.problems
    device = _device_file(device_file, env_values, [layer for _, layer in layers])
    if device.required or device.exists:
        try:
            layers.append((str(device.path), parse_layer(device.path)))
        except ConfigError as exc:
            problems += exc.problems
    layers.append(("environment", env_values))
    problems += env_problems
    if problems:
        raise ConfigError(problems)

    origin = {f"{s}.{k}": src for src, layer in layers for s, t in layer.items() for k in t}
    cfg = _build(_merge([layer for _, layer in layers]))
    problems = _validate(cfg, origin)
    unmute_from = origin.get("remote.allow_unmute")
    if cfg.remote.allow_unmute and unmute_from != str(device.path):
        problems.append(f"{unmute_from}: `remote.allow_unmute`: may only be set in the per-device "
                        "file (it lets a remote operator turn a microphone or camera on)")
    problems += [f"{origin.get('gpio.profile', 'defaults')}: {p}" for p in _profile_problems(cfg)]
    if problems:
        raise ConfigError(problems)
    return cfg


def load_gpio_best_effort(
    config_file: Path | None = None,
    device_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> GpioConfig:
    """The `[gpio]` section from whatever layers still parse, for showing a configuration fault.

    A broken configuration must not leave the kiosk dark: the fault pattern needs only the pins.
    Files that are not TOML are skipped, and so is every `[gpio]` value of the wrong type;
    mistakes elsewhere in a file do not matter here.
    """
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    for path in (config_file or DEFAULT_CONFIG_FILE, device_file or DEFAULT_DEVICE_FILE):
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        gpio = raw.get("gpio")
        if isinstance(gpio, dict):
            merged.update(_check_layer({"gpio": gpio}, str(path))[0].get("gpio", {}))
    env_values, _ = env_layer(env)
    merged.update(env_values.get("gpio", {}))
    try:
        gpio = GpioConfig(**merged)
    except TypeError:
        return GpioConfig()
    return gpio


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
