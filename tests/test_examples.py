"""examples/: the breadboard kiosk and the fleet configuration pass `appliance check`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.provision.devices import load_device_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def secret_file(path: Path, text: str) -> Path:
    """A secret file as the kiosk keeps it: mode 600."""
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def no_device_file(tmp_path: Path) -> Path:
    empty = tmp_path / "no-device.toml"
    empty.touch()
    return empty


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: no APPLIANCE_* or CREDENTIALS_DIRECTORY from outside."""
    for name in list(os.environ):
        if name.startswith("APPLIANCE_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)


def test_breadboard_kiosk_passes_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    # On the kiosk the secret is /etc/appliance/credentials/api_secret; here a file in tmp.
    secret = secret_file(tmp_path / "api_secret", "example-api-secret-0123456789")
    monkeypatch.setenv("APPLIANCE_LIVEKIT_API_SECRET_FILE", str(secret))
    code = main(["check", "--config", str(EXAMPLES / "breadboard.toml"),
                 "--device-file", str(no_device_file(tmp_path))])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "# configuration OK (token source: local)" in captured.out
    assert 'profile = "default"' in captured.out


def test_breadboard_kiosk_reads_its_credential_outside_the_service(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # `sudo appliance check` on the kiosk: the file LoadCredential= hands the service.
    from appliance.config import loader

    secret_file(tmp_path / "api_secret", "example-api-secret-0123456789")
    monkeypatch.setattr(loader, "CREDENTIALS_DIR", tmp_path)
    code = main(["check", "--config", str(EXAMPLES / "breadboard.toml"),
                 "--device-file", str(no_device_file(tmp_path))])
    assert code == 0, capsys.readouterr().err
    assert f'api_secret_file = "{tmp_path}/api_secret"' in capsys.readouterr().out


def test_fleet_configuration_passes_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    # On the kiosk the key is imported from the boot partition; here a file in tmp.
    key = secret_file(tmp_path / "device_key", "example-device-key-0123456789")
    monkeypatch.setenv("APPLIANCE_LIVEKIT_DEVICE_KEY_FILE", str(key))
    code = main(["check", "--config", str(EXAMPLES / "fleet" / "appliance.toml"),
                 "--device-file", str(EXAMPLES / "fleet" / "kiosk-07.toml")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "# configuration OK (token source: endpoint)" in captured.out
    assert 'identity = "kiosk-07"' in captured.out


def test_fleet_device_file_passes_provision_check() -> None:
    device = load_device_file(EXAMPLES / "fleet" / "kiosk-07.toml")
    assert device.name == "kiosk-07"
