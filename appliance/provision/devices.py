"""Per-device files: validate one, or expand a fleet (folder of TOML files or a CSV) into many."""

from __future__ import annotations

import csv
import dataclasses
import os
import re
import tempfile
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.config.layers import parse_layer
from appliance.config.schema import SECTIONS, to_toml
from appliance.errors import ConfigError


@dataclass(frozen=True)
class DeviceFile:
    """One validated per-device file, ready to be written into an image."""

    source: str  # what to call it in messages: a path, or "fleet.csv line 4"
    name: str  # identity, or the file stem / row number when there is none
    data: bytes  # the TOML text exactly as it goes onto the boot partition
    layer: dict[str, dict[str, Any]]


def _identity(layer: dict[str, dict[str, Any]]) -> str:
    value = layer.get("livekit", {}).get("identity", "")
    return value if isinstance(value, str) else ""


def load_device_file(path: Path, *, check_permissions: bool = True) -> DeviceFile:
    """Validate one per-device TOML file with the daemon's own loader; ConfigError if bad."""
    layer = parse_layer(path, check_permissions=check_permissions)
    return DeviceFile(str(path), _identity(layer) or path.stem, path.read_bytes(), layer)


def _cell(section: str, key: str, text: str) -> Any:
    """A CSV cell as the TOML value the field expects (the loader still checks it)."""
    hints = typing.get_type_hints(SECTIONS[section]) if section in SECTIONS else {}
    tp = hints.get(key)
    args = typing.get_args(tp) or (tp,)
    if bool in args and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if int in args and re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if float in args and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        return float(text)
    return text


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            yield reader.line_num, {k.strip(): (v or "").strip() for k, v in row.items() if k}


def load_csv(path: Path) -> list[DeviceFile]:
    """One device per row; the header names dotted keys (livekit.identity, livekit.token, ...)."""
    problems: list[str] = []
    devices: list[DeviceFile] = []
    try:
        rows = list(_rows(path))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError([f"{path}: cannot read CSV ({exc})"]) from None
    with tempfile.TemporaryDirectory(prefix="appliance-provision-") as tmp:
        for line, row in rows:
            source = f"{path} line {line}"
            data: dict[str, dict[str, Any]] = {}
            for column, text in row.items():
                if not text:
                    continue  # an empty cell means: not set for this device
                section, dot, key = column.partition(".")
                if not dot or not key:
                    problems.append(f"{path}: column `{column}`: expected section.key")
                    continue
                data.setdefault(section, {})[key] = _cell(section, key, text)
            text_toml = to_toml(data)
            tmp_file = Path(tmp) / f"row{line}.toml"
            fd = os.open(tmp_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text_toml)
            try:
                layer = parse_layer(tmp_file)
            except ConfigError as exc:
                problems += [p.replace(str(tmp_file), source) for p in exc.problems]
                continue
            devices.append(
                DeviceFile(source, _identity(layer) or f"row{line}", text_toml.encode(), layer)
            )
    if problems:
        raise ConfigError(problems)
    if not devices:
        raise ConfigError([f"{path}: no device rows"])
    return devices


def load_fleet(source: Path) -> list[DeviceFile]:
    """A folder of *.toml files or a CSV; every problem of every device in one ConfigError."""
    if source.is_dir():
        problems: list[str] = []
        devices: list[DeviceFile] = []
        files = sorted(source.glob("*.toml"))
        if not files:
            raise ConfigError([f"{source}: no *.toml device files in this folder"])
        for path in files:
            try:
                devices.append(load_device_file(path))
            except ConfigError as exc:
                problems += exc.problems
        if problems:
            raise ConfigError(problems)
    elif source.suffix.lower() == ".csv":
        devices = load_csv(source)
    else:
        raise ConfigError([f"{source}: expected a folder of *.toml files or a .csv file"])
    seen: dict[str, str] = {}
    problems = []
    for dev in devices:
        if dev.name in seen:
            problems.append(
                f"{dev.source}: `livekit.identity` {dev.name!r} is also used by {seen[dev.name]}"
            )
        seen[dev.name] = dev.source
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", dev.name):
            problems.append(
                f"{dev.source}: `livekit.identity` {dev.name!r} cannot name an image file "
                "(use letters, digits, '.', '_', '-')"
            )
    if problems:
        raise ConfigError(problems)
    return devices


def field_names(section: str) -> frozenset[str]:
    """Keys the loader knows in one section (for features that depend on the config version)."""
    cls = SECTIONS.get(section)
    return frozenset(f.name for f in dataclasses.fields(cls)) if cls else frozenset()
