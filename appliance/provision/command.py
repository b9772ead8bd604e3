"""`appliance provision`: write per-device files into images; `--import-boot-file` at first boot."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError
from appliance.provision import fatimage
from appliance.provision.bmap import BmapError, mapped_extents, update_region
from appliance.provision.devices import DeviceFile, load_device_file, load_fleet

log = logging.getLogger(__name__)

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65  # the image is not what we expected
EX_CONFIG = 78
BOOT_NAME = "appliance.toml"
WIFI_NAME = "wpa_supplicant.conf"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "provision",
        help="write a per-device file into an image's boot partition (no root, no mounting)",
        description=(
            "Validate per-device files with the daemon's own loader, then write each one as "
            f"/{BOOT_NAME} into the FAT boot partition of a disk image using mtools. Nothing is "
            "written if any device file has a problem (exit status 78). The kiosk imports the "
            "file at its first boot and scrubs the secrets from the boot partition."
        ),
        epilog=(
            "examples:\n"
            "  appliance provision kiosk.img kiosk-07.toml\n"
            "  appliance provision kiosk.img --fleet devices/ --output-dir out/\n"
            "  appliance provision kiosk.img --fleet devices.csv --output-dir out/\n"
            "  appliance provision --check kiosk-07.toml        (validate only, no image)\n"
            "  appliance provision --check --fleet devices/     (the same for a fleet)\n"
            "  appliance provision --import-boot-file   (first-boot unit, on the device)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("image", nargs="?", type=Path, help="disk image (.img) to write into")
    parser.add_argument("device_file", nargs="?", type=Path, metavar="DEVICE.toml",
                        help="per-device file for a single device")
    parser.add_argument("--fleet", type=Path, metavar="DIR|CSV",
                        help="a folder of per-device *.toml files, or a CSV whose header names "
                             "dotted keys (livekit.identity,livekit.token,...)")
    parser.add_argument("--output-dir", type=Path, metavar="DIR",
                        help="fleet: write one image copy per device here as IDENTITY.img "
                             "(with IDENTITY.img.bmap when IMAGE has a .bmap)")
    parser.add_argument("-o", "--output", type=Path, metavar="IMG",
                        help="single device: write into a copy instead of IMAGE itself")
    parser.add_argument("--wifi", type=Path, metavar="WPA.conf",
                        help="also write this wpa_supplicant.conf (network={...} blocks) to the "
                             "boot partition; first boot moves it to wlan0's config (Zero 2 W "
                             "has no Ethernet)")
    parser.add_argument("--check", action="store_true",
                        help="only validate the device file(s) and write nothing; no IMAGE "
                             "needed (one given is checked for a FAT boot partition)")
    parser.add_argument("--import-boot-file", action="store_true",
                        help="on the device: import /boot/firmware/appliance.toml into "
                             "/etc/appliance and scrub its secrets (run by "
                             "appliance-firstboot.service)")
    parser.set_defaults(func=cmd_provision)


def _report(exc: ConfigError) -> int:
    print(f"device file error ({len(exc.problems)} problem(s)), nothing written:",
          file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)
    return EX_CONFIG


def _bmap_for(image: Path) -> Path | None:
    for candidate in (image.with_name(image.name + ".bmap"), image.with_suffix(".bmap")):
        if candidate.exists():
            return candidate
    return None


def copy_sparse(src: Path, dst: Path) -> None:
    """Copy an image keeping its holes (and sharing extents where the file system can)."""
    with src.open("rb") as fin, dst.open("wb") as fout:
        size = os.fstat(fin.fileno()).st_size
        fout.truncate(size)
        for start, end in mapped_extents(fin.fileno(), 0, size):
            pos = start
            while pos < end:
                done = os.copy_file_range(fin.fileno(), fout.fileno(), end - pos, pos, pos)
                if done == 0:
                    break
                pos += done


def write_device(image: Path, device: DeviceFile, bmap_in: Path | None,
                 bmap_out: Path | None, wifi: bytes | None = None) -> float:
    """Write one device file into `image` (and refresh its bmap); returns seconds taken."""
    started = time.perf_counter()
    part = fatimage.find_fat_partition(image)
    with tempfile.TemporaryDirectory(prefix="appliance-provision-") as tmp:
        fatimage.write_file(image, part, device.data, BOOT_NAME, tmpdir=Path(tmp))
        if wifi is not None:
            fatimage.write_file(image, part, wifi, WIFI_NAME, tmpdir=Path(tmp))
    if bmap_in is not None and bmap_out is not None:
        update_region(bmap_in, image, bmap_out, part.offset, part.size)
    return time.perf_counter() - started


def _check_only(image: Path | None, devices: list[DeviceFile]) -> int:
    """`--check`: the device files are valid; an image, when given, has a FAT boot partition."""
    for dev in devices:
        print(f"ok: {dev.source} ({dev.name})")
    if image is None:
        return EX_OK
    try:
        part = fatimage.find_fat_partition(image)
    except fatimage.ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_DATAERR
    print(f"ok: {image} (FAT boot partition {part.index}, {part.size // 1024} KiB)")
    return EX_OK


def cmd_provision(args: argparse.Namespace) -> int:
    if args.import_boot_file:
        from appliance.provision.bootimport import import_boot_file, import_wifi

        wifi_status = import_wifi()
        result = import_boot_file()
        if "rejected" in (result.status, wifi_status):
            return EX_CONFIG
        return EX_OK
    if args.check and args.device_file is None and args.fleet is None:
        # `--check DEVICE.toml`: validating needs no image, so a lone argument is the device file.
        args.image, args.device_file = None, args.image
    if (args.image is None and not args.check) or (
            (args.device_file is None) == (args.fleet is None)):
        print("usage: appliance provision IMAGE DEVICE.toml | IMAGE --fleet DIR|CSV "
              "--output-dir DIR | --check [IMAGE] DEVICE.toml | --check [IMAGE] --fleet DIR|CSV "
              "| --import-boot-file", file=sys.stderr)
        return EX_USAGE
    try:
        devices = ([load_device_file(args.device_file)] if args.device_file
                   else load_fleet(args.fleet))
    except ConfigError as exc:
        return _report(exc)
    wifi: bytes | None = None
    if args.wifi is not None:
        try:
            wifi = args.wifi.read_bytes()
        except OSError as exc:
            return _report(ConfigError([f"{args.wifi}: cannot read it ({exc.strerror})"]))
        if b"network={" not in wifi.replace(b" ", b""):
            return _report(ConfigError([f"{args.wifi}: no network={{...}} block: not a "
                                        "wpa_supplicant.conf"]))
    if args.check:
        return _check_only(args.image, devices)
    try:
        part = fatimage.find_fat_partition(args.image)
    except fatimage.ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_DATAERR
    log.debug("FAT partition %d at byte %d (%d bytes)", part.index, part.offset, part.size)
    bmap_in = _bmap_for(args.image)
    try:
        if args.device_file:
            target = args.output or args.image
            if args.output:
                copy_sparse(args.image, target)
            bmap_out = target.with_name(target.name + ".bmap") if args.output else bmap_in
            took = write_device(target, devices[0], bmap_in, bmap_out, wifi)
            print(f"{target}: wrote /{BOOT_NAME} for {devices[0].name} ({took * 1000:.0f} ms)")
            return EX_OK
        if args.output_dir is None:
            print("error: --fleet needs --output-dir", file=sys.stderr)
            return EX_USAGE
        args.output_dir.mkdir(parents=True, exist_ok=True)
        for dev in devices:
            target = args.output_dir / f"{dev.name}.img"
            copy_started = time.perf_counter()
            copy_sparse(args.image, target)
            copied = time.perf_counter() - copy_started
            bmap_out = target.with_name(target.name + ".bmap") if bmap_in else None
            took = write_device(target, dev, bmap_in, bmap_out, wifi)
            print(f"{target}: {dev.name} (copy {copied:.1f} s, provision {took * 1000:.0f} ms)")
    except (fatimage.ImageError, BmapError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_DATAERR
    return EX_OK
