"""`appliance provision --enrol-file`: a fresh fleet device key per image, and its import row."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from appliance.provision.devices import DeviceFile

# The key's file on the boot partition, beside appliance.toml. The first boot
# (bootimport.import_boot_file) moves a `device_key_file` that lies there into
# /etc/appliance/credentials (0600) and scrubs it from the partition.
KEY_NAME = "device_key"
KEY_PATH = f"/boot/firmware/{KEY_NAME}"
# Token sources of their own: such a device needs no fleet key.
OWN_SOURCES = ("token", "api_key", "api_secret", "api_secret_file")


@dataclass(frozen=True)
class Enrolment:
    """One device's key (only ever written onto its image) and its row for `fleet import`."""

    device: DeviceFile  # the device file naming KEY_PATH as its `device_key_file`
    key: bytes
    row: dict[str, str]


def wants_key(dev: DeviceFile) -> bool:
    """Fleet tokens and no key yet: no token source of its own, no key file elsewhere."""
    lk = dev.layer.get("livekit", {})
    if any(lk.get(k) is not None for k in OWN_SOURCES):
        return False
    key_file = lk.get("device_key_file")
    return key_file is None or str(key_file) == KEY_PATH


def missing_key_problems(devices: list[DeviceFile]) -> list[str]:
    """Without --enrol-file: a device that names a token service but no key cannot get a token."""
    return [f"{dev.source}: `livekit.token_url` without `livekit.device_key_file`: add "
            "--enrol-file FILE (provision makes the key) or set `device_key_file`"
            for dev in devices
            if dev.layer.get("livekit", {}).get("token_url") is not None
            and wants_key(dev) and dev.layer["livekit"].get("device_key_file") is None]


def plan_problems(devices: list[DeviceFile]) -> list[str]:
    """What the registry needs from a device file it enrols: an identity and a room."""
    problems = []
    for dev in devices:
        if not wants_key(dev):
            continue
        lk = dev.layer.get("livekit", {})
        for key in ("identity", "room"):
            if not lk.get(key):
                problems.append(f"{dev.source}: `livekit.{key}`: required to enrol the device "
                                "with the fleet service (--enrol-file)")
    if any(wants_key(dev) for dev in devices):
        try:
            import appliance.fleet.keys  # noqa: F401  (argon2 comes with the fleet extra)
        except ImportError as exc:
            problems.append(f"--enrol-file needs the fleet extra ({exc.name} is missing): "
                            "pip install '.[fleet]'")
    return problems


def _with_key_path(data: bytes) -> bytes:
    """The device file naming KEY_PATH; keeps the operator's text and comments when it can."""
    raw: dict[str, Any] = tomllib.loads(data.decode("utf-8"))
    if raw.get("livekit", {}).get("device_key_file") == KEY_PATH:
        return data
    wanted = {**raw, "livekit": {**raw.get("livekit", {}), "device_key_file": KEY_PATH}}
    line = f'device_key_file = "{KEY_PATH}"  # written by appliance provision --enrol-file\n'
    text = data.decode("utf-8")
    header = re.search(r"^\[livekit\][ \t]*(#[^\n]*)?(\n|$)", text, re.M)
    if header is not None:
        end = header.end()
        candidate = text[:end] + ("" if text[:end].endswith("\n") else "\n") + line + text[end:]
    else:
        candidate = text + ("" if text.endswith("\n") or not text else "\n") + "[livekit]\n" + line
    try:
        if tomllib.loads(candidate) == wanted:
            return candidate.encode()
    except tomllib.TOMLDecodeError:
        pass
    # Dotted keys or an inline table: the text cannot take one more line, so render it anew.
    from appliance.config.schema import to_toml

    return to_toml(wanted).encode()


def enrol(dev: DeviceFile) -> Enrolment:
    """A new key for `dev` (argon2 hash in the row: some 15 ms), the device file pointing at it."""
    from appliance.fleet.keys import import_row

    lk = dev.layer["livekit"]
    profile = dev.layer.get("gpio", {}).get("profile", "")
    key, row = import_row(lk["identity"], lk["room"], display_name=lk.get("name", ""),
                          profile=profile if isinstance(profile, str) else "")
    layer = {**dev.layer, "livekit": {**lk, "device_key_file": Path(KEY_PATH)}}
    device = dataclasses.replace(dev, data=_with_key_path(dev.data), layer=layer)
    return Enrolment(device, (key + "\n").encode(), row)


def append_row(out: IO[str], row: dict[str, str]) -> None:
    """One JSON line, on disk before the next image starts (the file is the registry's input)."""
    out.write(json.dumps(row) + "\n")
    out.flush()
    os.fsync(out.fileno())
