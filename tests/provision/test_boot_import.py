"""First-boot import: device file -> /etc/appliance + credentials, scrubbed boot partition."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from appliance.config import load, loader
from appliance.provision.bootimport import (
    ImportPaths,
    ImportResult,
    hostname_for,
    import_boot_file,
    import_wifi,
)

SECRET = "s3cret-value-123"


@pytest.fixture
def paths(tmp_path: Path) -> ImportPaths:
    boot = tmp_path / "boot"
    boot.mkdir()
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n")
    return ImportPaths(boot_file=boot / "appliance.toml", etc_dir=etc / "appliance",
                       state_dir=tmp_path / "var", hostname_file=etc / "hostname",
                       hosts_file=etc / "hosts", wifi_conf=etc / "wpa" / "wlan0.conf")


def put(paths: ImportPaths, text: str) -> None:
    paths.boot_file.write_text(text)


GOOD = (f'[livekit]\nidentity = "Kiosk 07"\nroom = "lobby"\nurl = "wss://lk.example"\n'
        f'api_key = "APIkey"\napi_secret = "{SECRET}"\n')


def run(paths: ImportPaths, hostnames: list[str] | None = None) -> ImportResult:
    applied = hostnames if hostnames is not None else []
    return import_boot_file(paths, apply_hostname=applied.append, owner=lambda: None)


def test_import_moves_secrets_into_credentials_and_scrubs(paths: ImportPaths) -> None:
    applied: list[str] = []
    result = import_boot_file(paths, apply_hostname=applied.append, owner=lambda: None)
    assert result.status == "nothing"
    put(paths, GOOD)
    result = import_boot_file(paths, apply_hostname=applied.append, owner=lambda: None)
    assert result.status == "imported"
    cred = paths.credentials_dir / "livekit.api_secret"
    assert cred.read_text() == SECRET
    assert stat.S_IMODE(cred.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.credentials_dir.stat().st_mode) == 0o700
    device = tomllib.loads(paths.device_toml.read_text())
    assert device["livekit"]["api_secret_file"] == (
        "$CREDENTIALS_DIRECTORY/appliance_livekit.api_secret")
    assert "api_secret" not in device["livekit"]
    assert SECRET not in paths.device_toml.read_text()
    # boot partition: original gone, redacted reference copy left behind
    assert not paths.boot_file.exists()
    assert SECRET not in paths.imported.read_text()
    assert 'identity = "Kiosk 07"' in paths.imported.read_text()
    # identity -> hostname
    assert applied == ["kiosk-07"]
    assert paths.hostname_file.read_text() == "kiosk-07\n"
    assert "127.0.1.1\tkiosk-07" in paths.hosts_file.read_text()
    assert "debian" not in paths.hosts_file.read_text()


def test_imported_config_loads_with_systemd_credentials(
    paths: ImportPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(paths, GOOD)
    run(paths)
    creds = tmp_path / "run-credentials"  # what systemd builds from LoadCredential=
    creds.mkdir()
    target = creds / "appliance_livekit.api_secret"
    target.write_bytes((paths.credentials_dir / "livekit.api_secret").read_bytes())
    target.chmod(0o400)
    # The loader expands $CREDENTIALS_DIRECTORY from the process environment.
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = load(paths.device_toml, None, {})
    assert cfg.livekit.api_secret_file == target
    assert cfg.livekit.identity == "Kiosk 07"


def test_imported_config_checks_by_hand_outside_the_service(
    paths: ImportPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `sudo appliance check` on the kiosk: no $CREDENTIALS_DIRECTORY, so the loader reads the
    # file that LoadCredential= would hand the service.
    put(paths, GOOD)
    run(paths)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setattr(loader, "CREDENTIALS_DIR", paths.credentials_dir)
    cfg = load(paths.device_toml, None, {})
    assert cfg.livekit.api_secret_file == paths.credentials_dir / "livekit.api_secret"


def test_import_is_idempotent(paths: ImportPaths) -> None:
    put(paths, GOOD)
    run(paths)
    snapshot = {p: p.read_bytes() for p in paths.etc_dir.rglob("*") if p.is_file()}
    assert run(paths).status == "nothing"  # second boot: nothing to do
    put(paths, GOOD)  # same file dropped again
    assert run(paths).status == "imported"
    assert {p: p.read_bytes() for p in paths.etc_dir.rglob("*") if p.is_file()} == snapshot


def test_bad_file_keeps_previous_config_and_marks_fault(paths: ImportPaths) -> None:
    put(paths, GOOD)
    run(paths)
    snapshot = {p: p.read_bytes() for p in paths.etc_dir.rglob("*") if p.is_file()}
    put(paths, f'[livekit]\nidentty = "x"\ntoken = "{SECRET}"\n')
    result = run(paths)
    assert result.status == "rejected"
    assert "livekit.identty" in paths.fault_file.read_text()
    assert {p: p.read_bytes() for p in paths.etc_dir.rglob("*") if p.is_file()} == snapshot
    assert not paths.boot_file.exists()
    rejected = paths.rejected.read_text()
    assert rejected.startswith("# REJECTED at first boot:") and SECRET not in rejected
    # a good file later clears the fault
    put(paths, GOOD)
    run(paths)
    assert not paths.fault_file.exists()


def test_unparseable_file_is_redacted_too(paths: ImportPaths) -> None:
    put(paths, f'[livekit\n  api_secret = "{SECRET}"\n')
    assert run(paths).status == "rejected"
    assert SECRET not in paths.rejected.read_text()
    assert "not valid TOML" in paths.fault_file.read_text()


def test_token_stays_in_device_layer_when_loader_has_no_token_file(paths: ImportPaths) -> None:
    put(paths, f'[livekit]\nidentity = "k1"\ntoken = "{SECRET}"\n')
    run(paths)
    text = paths.device_toml.read_text()
    assert SECRET in text  # no livekit.token_file in this config version
    assert stat.S_IMODE(paths.device_toml.stat().st_mode) == 0o600
    assert SECRET not in paths.imported.read_text()


def test_secret_file_on_boot_partition_is_moved(paths: ImportPaths) -> None:
    key = paths.boot_file.parent / "device.key"
    key.write_bytes(b"KEYDATA")
    put(paths, f'[livekit]\nidentity = "k1"\ntoken_url = "https://tok.example/t"\n'
               f'device_key_file = "{key}"\n')
    run(paths)
    assert not key.exists()
    assert (paths.credentials_dir / "livekit.device_key").read_bytes() == b"KEYDATA"
    device = tomllib.loads(paths.device_toml.read_text())
    assert device["livekit"]["device_key_file"].endswith("appliance_livekit.device_key")


def test_stale_secrets_of_a_previous_file_are_removed(paths: ImportPaths) -> None:
    put(paths, GOOD)
    run(paths)
    put(paths, '[livekit]\nidentity = "k1"\n')
    run(paths)
    assert list(paths.credentials_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("identity", "host"),
    [("Kiosk 07", "kiosk-07"), ("lobby.east", "lobby-east"), ("***", ""), ("x" * 80, "x" * 63)],
)
def test_hostname_for(identity: str, host: str) -> None:
    assert hostname_for(identity) == host


WPA = 'network={\n    ssid="kiosk-net"\n    psk="wifi-pass-1234"\n}\n'


def test_wifi_file_moves_to_wlan0_config(paths: ImportPaths) -> None:
    wifi = paths.wifi_boot_file
    wifi.write_text(WPA)
    assert import_wifi(paths) == "imported"
    assert not wifi.exists()
    conf = paths.wifi_conf
    assert "wifi-pass-1234" in conf.read_text() and "ctrl_interface" in conf.read_text()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert import_wifi(paths) == "nothing"


def test_bad_wifi_file_is_rejected_and_zeroed(paths: ImportPaths) -> None:
    paths.wifi_boot_file.write_text("ssid=oops psk=wifi-pass-1234\n")
    assert import_wifi(paths) == "rejected"
    rejected = paths.wifi_boot_file.with_name("wpa_supplicant.conf.rejected")
    assert "wifi-pass-1234" not in rejected.read_text()
    assert not paths.wifi_conf.exists()
