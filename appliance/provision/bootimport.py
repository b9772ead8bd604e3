"""First boot: import the per-device file from the boot partition, then scrub its secrets."""

from __future__ import annotations

import logging
import os
import pwd
import re
import socket
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.config.layers import parse_layer
from appliance.config.loader import CREDENTIAL_ID
from appliance.config.schema import SECRET_FILE_KEYS, SECRET_KEYS, to_toml
from appliance.errors import ConfigError
from appliance.provision.devices import field_names

log = logging.getLogger(__name__)

CONFIG_FAULT = "config-fault"
SERVICE_USER = "appliance"
WIFI_NAME = "wpa_supplicant.conf"


@dataclass(frozen=True)
class ImportPaths:
    """Where the import reads and writes (tests point these into a temporary folder)."""

    boot_file: Path = Path("/boot/firmware/appliance.toml")
    etc_dir: Path = Path("/etc/appliance")
    state_dir: Path = Path("/var/lib/appliance")
    hostname_file: Path = Path("/etc/hostname")
    hosts_file: Path = Path("/etc/hosts")
    wifi_conf: Path = Path("/etc/wpa_supplicant/wpa_supplicant-wlan0.conf")

    @property
    def wifi_boot_file(self) -> Path:
        return self.boot_file.with_name(WIFI_NAME)

    @property
    def device_toml(self) -> Path:
        return self.etc_dir / "device.toml"

    @property
    def credentials_dir(self) -> Path:
        return self.etc_dir / "credentials"

    @property
    def fault_file(self) -> Path:
        return self.state_dir / CONFIG_FAULT

    @property
    def imported(self) -> Path:
        return self.boot_file.with_name(self.boot_file.name + ".imported")

    @property
    def rejected(self) -> Path:
        return self.boot_file.with_name(self.boot_file.name + ".rejected")


@dataclass
class ImportResult:
    """What happened, for the log and for tests."""

    status: str  # "nothing", "imported" or "rejected"
    problems: list[str] = field(default_factory=list)
    credentials: list[str] = field(default_factory=list)
    hostname: str | None = None


def _write(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Atomically replace `path` (temp file in the same folder, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT honours the umask; we want exactly `mode`
        if owner is not None:
            os.fchown(fd, *owner)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


def _overwrite_in_place(path: Path) -> None:
    """Zero a file's bytes where they lie (same clusters on FAT) before it is renamed/removed.

    Deleting alone leaves the secret in free clusters of the removable card. (Flash wear
    levelling may still keep old copies inside the card: rotate secrets that matter.)
    """
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.write(b"\0" * size)
        fh.flush()
        os.fsync(fh.fileno())


def hostname_for(identity: str) -> str:
    """A valid host name (RFC 1123 label) derived from the identity; '' if nothing is left."""
    name = re.sub(r"[^a-z0-9-]+", "-", identity.lower()).strip("-")
    return name[:63].rstrip("-")


def _set_hostname(paths: ImportPaths, name: str, apply: Callable[[str], None] | None) -> None:
    _write(paths.hostname_file, f"{name}\n".encode(), 0o644)
    try:
        hosts = paths.hosts_file.read_text()
    except FileNotFoundError:
        hosts = "127.0.0.1\tlocalhost\n"
    line = f"127.0.1.1\t{name}"
    if re.search(r"^127\.0\.1\.1\s.*$", hosts, re.M):
        hosts = re.sub(r"^127\.0\.1\.1\s.*$", line, hosts, count=1, flags=re.M)
    else:
        hosts = hosts.rstrip("\n") + f"\n{line}\n"
    _write(paths.hosts_file, hosts.encode(), 0o644)
    if apply is not None:
        apply(name)


def _redact_text(text: str) -> str:
    """Blank secret values line by line (works on files that are not even valid TOML)."""
    keys = sorted({k.split(".")[1] for k in SECRET_KEYS})
    pattern = re.compile(r"^(\s*)(" + "|".join(map(re.escape, keys)) + r")(\s*=).*$", re.M)
    return pattern.sub(r"\1# \2 removed from the boot partition (secret)", text)


def _service_owner() -> tuple[int, int] | None:
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def import_boot_file(
    paths: ImportPaths | None = None,
    *,
    apply_hostname: Callable[[str], None] | None = socket.sethostname,
    owner: Callable[[], tuple[int, int] | None] = _service_owner,
) -> ImportResult:
    """Import the per-device file; idempotent; a bad file leaves the previous config in place."""
    paths = paths or ImportPaths()
    if not paths.boot_file.exists():
        log.info("%s: nothing to import", paths.boot_file)
        return ImportResult("nothing")
    try:
        parse_layer(paths.boot_file, check_permissions=False)  # FAT has no permissions
        raw: dict[str, Any] = tomllib.loads(paths.boot_file.read_text(encoding="utf-8"))
    except ConfigError as exc:
        return _reject(paths, exc.problems)

    secrets: dict[str, bytes] = {}
    device: dict[str, dict[str, Any]] = {s: dict(t) for s, t in raw.items()}
    livekit = device.setdefault("livekit", {})
    known = field_names("livekit")
    token_inline = False
    for dotted in sorted(SECRET_KEYS):
        section, key = dotted.split(".")
        value = device.get(section, {}).get(key)
        if value is None:
            continue
        file_key = f"{key}_file"
        if file_key in field_names(section):
            secrets[dotted] = str(value).encode()
            del device[section][key]
            device[section][file_key] = f"$CREDENTIALS_DIRECTORY/{CREDENTIAL_ID}_{dotted}"
        else:
            token_inline = True  # this config version has no `<key>_file`: stays in device.toml
    # Secret *files* that were put on the boot partition come along too.
    boot_dir = paths.boot_file.parent.resolve()
    moved_files: list[Path] = []
    for dotted in SECRET_FILE_KEYS:
        section, key = dotted.split(".")
        value = device.get(section, {}).get(key)
        if not isinstance(value, str) or key not in known:
            continue
        src = Path(value)
        if src.resolve().parent != boot_dir:
            continue  # already a path on the device: the loader checks it at run time
        try:
            secrets[dotted.removesuffix("_file")] = src.read_bytes()
        except OSError as exc:
            return _reject(paths, [f"{paths.boot_file}: `{dotted}`: cannot read {src} "
                                   f"({exc.strerror})"])
        device[section][key] = (
            f"$CREDENTIALS_DIRECTORY/{CREDENTIAL_ID}_{dotted.removesuffix('_file')}"
        )
        moved_files.append(src)
    if not livekit:
        del device["livekit"]

    # 1. secrets: root-only files that appliance.service receives through LoadCredential=.
    paths.credentials_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.credentials_dir, 0o700)
    wanted = {name for name in secrets}
    for stale in paths.credentials_dir.iterdir():
        if stale.name not in wanted and not stale.name.startswith("."):
            stale.unlink()  # a secret from a previous device file must not linger
    for name, data in secrets.items():
        _write(paths.credentials_dir / name, data, 0o600)
    # 2. the device layer (no secrets unless this loader version cannot take them from files).
    text = to_toml(device).encode()
    if token_inline:
        _write(paths.device_toml, text, 0o600, owner())
    else:
        _write(paths.device_toml, text, 0o644)
    # 3. identity -> host name.
    result = ImportResult("imported", credentials=sorted(secrets))
    identity = device.get("livekit", {}).get("identity")
    if isinstance(identity, str) and hostname_for(identity):
        result.hostname = hostname_for(identity)
        _set_hostname(paths, result.hostname, apply_hostname)
    # 4. scrub the boot partition: zero the bytes in place, keep a redacted copy for reference.
    redacted = _redact_text(paths.boot_file.read_text(encoding="utf-8"))
    _overwrite_in_place(paths.boot_file)
    for src in moved_files:
        _overwrite_in_place(src)
        src.unlink()
    _write(paths.imported, redacted.encode(), 0o644)
    paths.boot_file.unlink()
    paths.fault_file.unlink(missing_ok=True)
    log.info("imported %s -> %s (%d secret(s) -> %s)%s", paths.boot_file, paths.device_toml,
             len(secrets), paths.credentials_dir,
             f", hostname {result.hostname}" if result.hostname else "")
    return result


def _reject(paths: ImportPaths, problems: list[str]) -> ImportResult:
    """Keep the previous configuration, tell the daemon (LED) and the operator (file, log)."""
    for problem in problems:
        log.error("rejected device file: %s", problem)
    log.error("%s rejected; keeping the previous configuration in %s",
              paths.boot_file, paths.etc_dir)
    message = "".join(f"{p}\n" for p in problems)
    paths.state_dir.mkdir(parents=True, exist_ok=True)
    _write(paths.fault_file, message.encode(), 0o644)
    try:
        original = paths.boot_file.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        original = ""
    header = "".join(f"# REJECTED at first boot: {p}\n" for p in problems)
    _write(paths.rejected, (header + _redact_text(original)).encode(), 0o644)
    _overwrite_in_place(paths.boot_file)
    paths.boot_file.unlink()
    return ImportResult("rejected", problems=list(problems))


def import_wifi(paths: ImportPaths | None = None) -> str:
    """Move a wpa_supplicant.conf from the boot partition to wlan0's config (0600), scrubbed.

    Returns "nothing", "imported" or "rejected". wpa_supplicant@wlan0.service starts only when
    its config exists (image drop-in), after the first-boot unit.
    """
    paths = paths or ImportPaths()
    src = paths.wifi_boot_file
    if not src.exists():
        return "nothing"
    try:
        text = src.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        text, problem = "", f"{src}: cannot read it ({exc})"
    else:
        problem = "" if "network={" in text.replace(" ", "") else (
            f"{src}: no network={{...}} block: not a wpa_supplicant.conf")
    if problem:
        log.error("rejected Wi-Fi file: %s", problem)
        _overwrite_in_place(src)
        src.replace(src.with_name(src.name + ".rejected"))
        return "rejected"
    if "ctrl_interface" not in text:
        text = "ctrl_interface=/run/wpa_supplicant\n" + text
    _write(paths.wifi_conf, text.encode(), 0o600)
    _overwrite_in_place(src)
    src.unlink()
    log.info("imported %s -> %s (removed from the boot partition)", src, paths.wifi_conf)
    return "imported"
