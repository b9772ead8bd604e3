"""`appliance provision`: device files into synthetic images, checked byte for byte."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from provision_images import (
    FAT_SIZE,
    FAT_START,
    fat_bytes,
    make_image,
    outside_fat,
    require_tools,
    run_cli,
    write_private,
)

from appliance.provision import fatimage
from appliance.provision.command import BOOT_NAME, EX_CONFIG, copy_sparse
from appliance.provision.devices import load_fleet


def fsck_clean(image: Path, tmp_path: Path) -> None:
    part = tmp_path / "part.fat"
    part.write_bytes(fat_bytes(image))
    proc = subprocess.run(["fsck.fat", "-n", str(part)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_finds_the_fat_partition_of_an_mbr_image(image: Path) -> None:
    part = fatimage.find_fat_partition(image)
    assert (part.index, part.offset, part.size) == (1, FAT_START, FAT_SIZE)


def test_round_trip_leaves_everything_else_alone(image: Path, device_file: Path,
                                                 tmp_path: Path) -> None:
    before = outside_fat(image)
    started = time.perf_counter()
    assert run_cli(str(image), str(device_file)) == 0
    assert time.perf_counter() - started < 2.0
    part = fatimage.find_fat_partition(image)
    assert fatimage.read_file(image, part, BOOT_NAME) == device_file.read_bytes()
    assert fatimage.read_file(image, part, "config.txt") == b"camera_auto_detect=1\n"
    assert outside_fat(image) == before
    fsck_clean(image, tmp_path)


def test_provisioning_twice_replaces_the_file(image: Path, device_file: Path,
                                              tmp_path: Path) -> None:
    assert run_cli(str(image), str(device_file)) == 0
    other = write_private(tmp_path / "kiosk-08.toml", '[livekit]\nidentity = "kiosk-08"\n')
    assert run_cli(str(image), str(other)) == 0
    part = fatimage.find_fat_partition(image)
    assert fatimage.read_file(image, part, BOOT_NAME) == other.read_bytes()
    assert fatimage.list_files(image, part).count(BOOT_NAME) == 1
    fsck_clean(image, tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[livekit]\nidentty = "x"\n', "livekit.identty"),
        ('[livekit]\nroom = 7\n', "livekit.room"),
        ('[camera]\nwidth = "wide"\n', "camera.width"),
        ("[livekit\n", "not valid TOML"),
        ('[nosuch]\nx = 1\n', "[nosuch]"),
    ],
)
def test_invalid_device_file_writes_nothing(image: Path, tmp_path: Path, text: str,
                                            expected: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_private(tmp_path / "bad.toml", text)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    assert run_cli(str(image), str(bad)) == EX_CONFIG
    err = capsys.readouterr().err
    assert "nothing written" in err and expected in err and str(bad) in err
    assert hashlib.sha256(image.read_bytes()).hexdigest() == digest


def test_secret_in_a_world_readable_file_is_refused(image: Path, device_file: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    device_file.chmod(0o644)
    assert run_cli(str(image), str(device_file)) == EX_CONFIG
    assert "chmod 600" in capsys.readouterr().err
    assert BOOT_NAME not in fatimage.list_files(image, fatimage.find_fat_partition(image))


def test_check_only_validates(image: Path, device_file: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    assert run_cli(str(image), str(device_file), "--check") == 0
    assert hashlib.sha256(image.read_bytes()).hexdigest() == digest
    assert f"ok: {image} (FAT boot partition 1" in capsys.readouterr().out


def test_check_needs_no_image(device_file: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("--check", str(device_file)) == 0
    assert f"ok: {device_file} (kiosk-07)" in capsys.readouterr().out
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    shutil.copy(device_file, fleet / "kiosk-07.toml")
    assert run_cli("--check", "--fleet", str(fleet)) == 0
    bad = write_private(tmp_path / "bad.toml", '[livekit]\nidentty = "x"\n')
    assert run_cli("--check", str(bad)) == EX_CONFIG
    assert "livekit.identty" in capsys.readouterr().err


def test_check_of_an_image_that_is_not_one(tmp_path: Path, device_file: Path) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\0" * 4096)
    assert run_cli("--check", str(junk), str(device_file)) == 65


def test_writing_still_needs_an_image(device_file: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(str(device_file)) == 64
    assert "usage:" in capsys.readouterr().err


def test_output_copy_leaves_the_golden_image_alone(image: Path, device_file: Path,
                                                   tmp_path: Path) -> None:
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    copy = tmp_path / "copy.img"
    assert run_cli(str(image), str(device_file), "-o", str(copy)) == 0
    assert hashlib.sha256(image.read_bytes()).hexdigest() == digest
    assert outside_fat(copy) == outside_fat(image)
    part = fatimage.find_fat_partition(copy)
    assert fatimage.read_file(copy, part, BOOT_NAME) == device_file.read_bytes()


def test_not_a_disk_image(tmp_path: Path, device_file: Path) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"\0" * 4096)
    assert run_cli(str(junk), str(device_file)) == 65


def test_gpt_image(tmp_path: Path) -> None:
    """A GPT disk with an EFI system partition is found too (some boards use GPT)."""
    require_tools("sfdisk")
    img = tmp_path / "gpt.img"
    img.write_bytes(b"\0" * (8 * 1024 * 1024))
    layout = ("label: gpt\nunit: sectors\n"
              "start=2048, size=8192, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n")
    subprocess.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(img)],
                   input=layout.encode(), check=True, capture_output=True)
    part = fatimage.find_fat_partition(img)
    assert (part.index, part.offset, part.size) == (1, 2048 * 512, 8192 * 512)
    assert uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b") in fatimage.FAT_GPT_TYPES
    assert struct.calcsize("<QII") == 16


def csv_fleet(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "fleet.csv"
    path.write_text("livekit.identity,livekit.room,livekit.token,camera.fps\n"
                    + "".join(r + "\n" for r in rows))
    return path


def test_fleet_from_csv_makes_one_copy_per_device(image: Path, tmp_path: Path) -> None:
    fleet = csv_fleet(tmp_path, ["kiosk-01,lobby,tok1,30", "kiosk-02,hall,tok2,"])
    out = tmp_path / "out"
    assert run_cli(str(image), "--fleet", str(fleet), "--output-dir", str(out)) == 0
    for name, room in (("kiosk-01", "lobby"), ("kiosk-02", "hall")):
        copy = out / f"{name}.img"
        text = fatimage.read_file(copy, fatimage.find_fat_partition(copy), BOOT_NAME).decode()
        assert f'identity = "{name}"' in text and f'room = "{room}"' in text
        assert outside_fat(copy) == outside_fat(image)
        fsck_clean(copy, tmp_path)
    first = (out / "kiosk-01.img").read_bytes()
    assert b"fps = 30" in first


def test_fleet_csv_errors_name_the_line(image: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    fleet = csv_fleet(tmp_path, ["kiosk-01,lobby,tok1,fast", "kiosk-01,hall,tok2,30"])
    out = tmp_path / "out"
    assert run_cli(str(image), "--fleet", str(fleet), "--output-dir", str(out)) == EX_CONFIG
    err = capsys.readouterr().err
    assert "fleet.csv line 2" in err and "camera.fps" in err
    assert not out.exists()


def test_fleet_duplicate_identity_refused(tmp_path: Path) -> None:
    fleet = csv_fleet(tmp_path, ["kiosk-01,lobby,tok1,30", "kiosk-01,hall,tok2,30"])
    with pytest.raises(Exception, match="also used by"):
        load_fleet(fleet)


def test_fleet_folder(image: Path, tmp_path: Path) -> None:
    folder = tmp_path / "devices"
    folder.mkdir()
    for n in (1, 2, 3):
        write_private(folder / f"k{n}.toml", f'[livekit]\nidentity = "kiosk-{n}"\ntoken = "t{n}"\n')
    out = tmp_path / "out"
    assert run_cli(str(image), "--fleet", str(folder), "--output-dir", str(out)) == 0
    assert sorted(p.name for p in out.glob("*.img")) == ["kiosk-1.img", "kiosk-2.img",
                                                          "kiosk-3.img"]


def test_copy_sparse_keeps_holes(tmp_path: Path) -> None:
    src = tmp_path / "sparse.img"
    with src.open("wb") as fh:
        fh.truncate(64 * 1024 * 1024)
        fh.seek(32 * 1024 * 1024)
        fh.write(b"x" * 4096)
    dst = tmp_path / "copy.img"
    copy_sparse(src, dst)
    assert dst.read_bytes() == src.read_bytes()
    assert os.stat(dst).st_blocks * 512 < 1024 * 1024


def test_bmap_stays_valid_after_provisioning(tmp_path: Path, device_file: Path) -> None:
    require_tools("bmaptool")
    img = tmp_path / "kiosk.img"
    make_image(img)
    # Make the FAT partition sparse the way the image build does (dd conv=sparse).
    sparse = tmp_path / "sparse.img"
    subprocess.run(["dd", f"if={img}", f"of={sparse}", "bs=64k", "conv=sparse", "status=none"],
                   check=True)
    bmap = tmp_path / "sparse.img.bmap"
    subprocess.run(["bmaptool", "create", "-o", str(bmap), str(sparse)], check=True,
                   capture_output=True)
    out = tmp_path / "out"
    assert run_cli(str(sparse), str(device_file), "-o", str(out) + ".img") == 0
    flashed = tmp_path / "flashed.img"
    proc = subprocess.run(["bmaptool", "copy", "--bmap", str(out) + ".img.bmap",
                           str(out) + ".img", str(flashed)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    part = fatimage.find_fat_partition(flashed)
    assert fatimage.read_file(flashed, part, BOOT_NAME) == device_file.read_bytes()
    assert shutil.which("bmaptool")


def test_wifi_file_goes_onto_the_boot_partition(image: Path, device_file: Path,
                                                tmp_path: Path) -> None:
    wpa = write_private(tmp_path / "wpa.conf", 'network={\n ssid="x"\n psk="y"\n}\n')
    assert run_cli(str(image), str(device_file), "--wifi", str(wpa)) == 0
    part = fatimage.find_fat_partition(image)
    assert fatimage.read_file(image, part, "wpa_supplicant.conf") == wpa.read_bytes()
    fsck_clean(image, tmp_path)


def test_not_a_wifi_file_writes_nothing(image: Path, device_file: Path, tmp_path: Path) -> None:
    bad = write_private(tmp_path / "wpa.conf", "hello\n")
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    assert run_cli(str(image), str(device_file), "--wifi", str(bad)) == EX_CONFIG
    assert hashlib.sha256(image.read_bytes()).hexdigest() == digest
