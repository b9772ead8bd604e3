"""Where the layers come from and how they stack: `load`, `layer_files`, the fault-time GPIO."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.config.checks import profile_problems, validate
from appliance.config.layers import (
    ENV_PREFIX,
    Layer,
    check_layer,
    env_layer,
    env_name,
    merge_layers,
    parse_layer,
)
from appliance.config.schema import (
    DEFAULT_DEVICE_FILE,
    SECTIONS,
    Config,
    GpioConfig,
    LiveKitConfig,
)
from appliance.errors import ConfigError

DEFAULT_CONFIG_FILE = Path("/etc/appliance/appliance.toml")
# appliance.service has `LoadCredential=appliance:/etc/appliance/credentials`: systemd loads the
# folder file by file and names each credential "<id>_<file name>".
CREDENTIAL_ID = "appliance"
CREDENTIALS_DIR = Path("/etc/appliance/credentials")


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
    from_file = merge_layers(earlier).get("device", {}).get("file")
    path, chosen_by = ((Path(from_env), env_name("device.file")) if from_env
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
    names = [env_name(f"{section}.{key}") for section, table in env_values.items()
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
    cfg = _build(merge_layers([layer for _, layer in layers]))
    problems = validate(cfg, origin)
    unmute_from = origin.get("remote.allow_unmute")
    if cfg.remote.allow_unmute and unmute_from != str(device.path):
        problems.append(f"{unmute_from}: `remote.allow_unmute`: may only be set in the per-device "
                        "file (it lets a remote operator turn a microphone or camera on)")
    problems += [f"{origin.get('gpio.profile', 'defaults')}: {p}" for p in profile_problems(cfg)]
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
            merged.update(check_layer({"gpio": gpio}, str(path))[0].get("gpio", {}))
    env_values, _ = env_layer(env)
    merged.update(env_values.get("gpio", {}))
    try:
        gpio = GpioConfig(**merged)
    except TypeError:
        return GpioConfig()
    return gpio
