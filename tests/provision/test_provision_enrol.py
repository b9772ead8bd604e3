"""`appliance provision --enrol-file`: a key onto each image, its import row for the registry."""

from __future__ import annotations

import asyncio
import json
import stat
import tomllib
from pathlib import Path

import pytest
from provision_images import make_image, run_cli, write_private

from appliance.config import Config, LiveKitConfig
from appliance.config.layers import parse_layer
from appliance.fleet import keys
from appliance.provision import fatimage
from appliance.provision.bootimport import ImportPaths, import_boot_file
from appliance.provision.command import BOOT_NAME, EX_CANTCREAT, EX_CONFIG, EX_DATAERR
from appliance.provision.enrol import KEY_NAME, KEY_PATH

FLEET_DEVICE = ('# kiosk {n}: fleet tokens (token_url comes with the image)\n'
                '[livekit]\nidentity = "kiosk-{n}"\nroom = "{room}"\nname = "Desk {n}"\n\n'
                '[gpio]\nprofile = "default"\n')


def on_image(image: Path, name: str) -> bytes:
    return fatimage.read_file(image, fatimage.find_fat_partition(image), name)


def rows_of(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def devices(tmp_path: Path) -> Path:
    folder = tmp_path / "devices"
    folder.mkdir()
    write_private(folder / "k1.toml", FLEET_DEVICE.format(n=1, room="lobby"))
    # The example's form: device_key_file names the slot on the boot partition provision fills.
    write_private(folder / "k2.toml", '[livekit]\nidentity = "kiosk-2"\nroom = "hall"\n'
                                      f'token_url = "https://t.example/token"\n'
                                      f'device_key_file = "{KEY_PATH}"\n')
    # Its own token source: not a fleet-token kiosk, not enrolled.
    write_private(folder / "k3.toml", '[livekit]\nidentity = "kiosk-3"\ntoken = "t3"\n')
    return folder


def test_fleet_keys_go_onto_the_images_and_rows_into_the_enrol_file(
        image: Path, devices: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, enrol_file = tmp_path / "out", tmp_path / "enrol.jsonl"
    assert run_cli(str(image), "--fleet", str(devices), "--output-dir", str(out),
                   "--enrol-file", str(enrol_file)) == 0
    rows = rows_of(enrol_file)
    assert [(r["identity"], r["room"]) for r in rows] == [("kiosk-1", "lobby"), ("kiosk-2", "hall")]
    assert rows[0]["display_name"] == "Desk 1" and rows[0]["profile"] == "default"
    printed = capsys.readouterr().out
    for row in rows:
        copy = out / f"{row['identity']}.img"
        key = on_image(copy, KEY_NAME).decode().strip()
        assert keys.split_key(key) == (row["key_id"], key.split(".", 2)[2])
        assert keys.verify_secret(row["key_hash"], key.split(".", 2)[2])
        assert key not in enrol_file.read_text() and key not in printed
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        text = on_image(copy, BOOT_NAME).decode()
        assert tomllib.loads(text)["livekit"]["device_key_file"] == KEY_PATH
        assert f"enrolled with key {row['key_id']}" in printed
    # The operator's comments survive the added line.
    assert on_image(out / "kiosk-1.img", BOOT_NAME).decode().startswith("# kiosk 1: fleet")
    assert KEY_NAME not in fatimage.list_files(out / "kiosk-3.img",
                                               fatimage.find_fat_partition(out / "kiosk-3.img"))
    # Provisioning again appends fresh keys (`fleet import` re-keys).
    assert run_cli(str(image), "--fleet", str(devices), "--output-dir", str(out),
                   "--enrol-file", str(enrol_file)) == 0
    again = rows_of(enrol_file)
    assert len(again) == 4 and again[2]["key_id"] != rows[0]["key_id"]


def test_single_device_copy_is_enrolled(image: Path, tmp_path: Path) -> None:
    device = write_private(tmp_path / "kiosk-9.toml",
                           '[livekit]\nidentity = "kiosk-9"\nroom = "lobby"\n')
    copy, enrol_file = tmp_path / "kiosk-9.img", tmp_path / "enrol.jsonl"
    assert run_cli(str(image), str(device), "-o", str(copy), "--enrol-file",
                   str(enrol_file)) == 0
    (row,) = rows_of(enrol_file)
    assert on_image(copy, KEY_NAME).decode().startswith(f"fk1.{row['key_id']}.")
    assert KEY_NAME not in fatimage.list_files(image, fatimage.find_fat_partition(image))


def test_check_says_which_devices_would_be_enrolled(devices: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    enrol_file = tmp_path / "enrol.jsonl"
    assert run_cli("--check", "--fleet", str(devices), "--enrol-file", str(enrol_file)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.endswith("(would be enrolled)") for line in lines] == [True, True, False]
    assert not enrol_file.exists()


@pytest.mark.parametrize(("text", "expected"), [
    ('[livekit]\nidentity = "kiosk-5"\n', "`livekit.room`: required to enrol"),
    ('[livekit]\nroom = "lobby"\n', "`livekit.identity`: required to enrol"),
])
def test_a_device_the_registry_cannot_take_writes_nothing(
        image: Path, devices: Path, tmp_path: Path, text: str, expected: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_private(devices / "k5.toml", text)
    out, enrol_file = tmp_path / "out", tmp_path / "enrol.jsonl"
    assert run_cli(str(image), "--fleet", str(devices), "--output-dir", str(out),
                   "--enrol-file", str(enrol_file)) == EX_CONFIG
    err = capsys.readouterr().err
    assert "nothing written" in err and expected in err and "k5.toml" in err
    assert not out.exists() and not enrol_file.exists()


def test_token_url_without_a_key_needs_the_enrol_file(image: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    device = write_private(tmp_path / "k.toml", '[livekit]\nidentity = "k"\nroom = "r"\n'
                                                'token_url = "https://t.example/token"\n')
    assert run_cli(str(image), str(device), "-o", str(tmp_path / "k.img")) == EX_CONFIG
    assert "add --enrol-file" in capsys.readouterr().err
    assert not (tmp_path / "k.img").exists()


def test_a_failed_image_gains_no_row(image: Path, devices: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out, enrol_file = tmp_path / "out", tmp_path / "enrol.jsonl"
    (out / "kiosk-2.img").mkdir(parents=True)  # the second copy cannot be written
    assert run_cli(str(image), "--fleet", str(devices), "--output-dir", str(out),
                   "--enrol-file", str(enrol_file)) == EX_DATAERR
    assert "error:" in capsys.readouterr().err
    assert [r["identity"] for r in rows_of(enrol_file)] == ["kiosk-1"]
    assert not (out / "kiosk-3.img").exists()


def test_an_enrol_file_that_cannot_be_written_writes_nothing(image: Path, devices: Path,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli(str(image), "--fleet", str(devices), "--output-dir", str(out),
                   "--enrol-file", str(tmp_path / "no" / "such" / "enrol.jsonl")) == EX_CANTCREAT
    assert not out.exists()


def test_the_enrol_file_imports_and_the_imaged_key_gets_a_token(
        devices: Path, tmp_path: Path) -> None:
    """The whole path: provision, `fleet import`, first-boot import, the kiosk's token request."""
    from appliance.cli import main

    image = make_image(tmp_path / "golden.img")
    out, enrol_file = tmp_path / "out", tmp_path / "enrol.jsonl"
    assert run_cli(str(image), "--fleet", str(devices), "--output-dir", str(out),
                   "--enrol-file", str(enrol_file)) == 0
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    assert main(["fleet", "--db", db, "import", str(enrol_file)]) == 0
    # First boot, with the boot partition's files in a folder standing for /boot/firmware.
    boot = tmp_path / "boot"
    boot.mkdir()
    copy = out / "kiosk-1.img"
    (boot / KEY_NAME).write_bytes(on_image(copy, KEY_NAME))
    (boot / BOOT_NAME).write_text(on_image(copy, BOOT_NAME).decode().replace(
        KEY_PATH, str(boot / KEY_NAME)))
    paths = ImportPaths(boot_file=boot / BOOT_NAME, etc_dir=tmp_path / "etc",
                        state_dir=tmp_path / "var", hostname_file=tmp_path / "hostname",
                        hosts_file=tmp_path / "hosts", wifi_conf=tmp_path / "wlan0.conf")
    result = import_boot_file(paths, apply_hostname=None, owner=lambda: None)
    assert result.status == "imported" and result.credentials == ["livekit.device_key"]
    assert not (boot / KEY_NAME).exists()
    assert parse_layer(paths.device_toml)["livekit"]["identity"] == "kiosk-1"
    credential = paths.credentials_dir / "livekit.device_key"
    assert asyncio.run(_token_claims(db, credential)) == ("kiosk-1", "lobby")


async def _token_claims(db: str, key_file: Path) -> tuple[str, str]:
    from aiohttp import web
    from livekit import api

    from appliance.fleet.service import FleetService, FleetSettings
    from appliance.fleet.store import Store
    from appliance.session.tokens import TokenSource

    api_key, api_secret = "fleetkey", "fleet-test-secret-0123456789abcdef0123456789"
    store = Store(db)
    await store.migrate()
    service = FleetService(store, FleetSettings("ws://127.0.0.1:9", api_key, api_secret,
                                                poll_interval=3600.0))
    runner = web.AppRunner(service.app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        cfg = Config(livekit=LiveKitConfig(
            url="ws://unused.invalid", room="lobby", identity="kiosk-1",
            token_url=f"http://127.0.0.1:{port}/token", device_key_file=key_file))
        source = TokenSource(cfg)
        try:
            _, token = await source.get()
        finally:
            await source.aclose()
    finally:
        await runner.cleanup()
        await store.aclose()
    claims = api.TokenVerifier(api_key, api_secret).verify(token)
    assert claims.video is not None
    return claims.identity, claims.video.room


def test_csv_fleet_rows_are_enrolled(image: Path, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.csv"
    fleet.write_text("livekit.identity,livekit.room,livekit.token\n"
                     "kiosk-a,lobby,\nkiosk-b,hall,static-token\n")
    out, enrol_file = tmp_path / "out", tmp_path / "enrol.jsonl"
    assert run_cli(str(image), "--fleet", str(fleet), "--output-dir", str(out),
                   "--enrol-file", str(enrol_file)) == 0
    assert [(r["identity"], r["room"]) for r in rows_of(enrol_file)] == [("kiosk-a", "lobby")]
    text = on_image(out / "kiosk-a.img", BOOT_NAME).decode()
    assert parse_layer_text(tmp_path, text)["livekit"]["device_key_file"] == Path(KEY_PATH)


def parse_layer_text(tmp_path: Path, text: str) -> dict[str, dict[str, object]]:
    """The daemon's own loader on a device file read back from an image."""
    return parse_layer(write_private(tmp_path / "read-back.toml", text))
