"""`appliance provision`: write per-device files into images; `--import-boot-file` at first boot."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from appliance.errors import ConfigError
from appliance.provision import enrol, fatimage
from appliance.provision.bmap import BmapError, mapped_extents, update_region
from appliance.provision.devices import DeviceFile, load_device_file, load_fleet

log = logging.getLogger(__name__)

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65  # the image is not what we expected
EX_CANTCREAT = 73
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
            "  appliance provision kiosk.img --fleet devices/ --output-dir out/ "
            "--enrol-file enrol.jsonl\n"
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
    parser.add_argument("--enrol-file", type=Path, metavar="FILE.jsonl",
                        help="fleet tokens: give every device without a token source of its "
                             "own a new device key, written only onto its image (as "
                             f"{enrol.KEY_PATH}), and append its import row (key id and argon2 "
                             "hash, never the key) here for `appliance fleet import`")
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
                 bmap_out: Path | None, wifi: bytes | None = None,
                 key: bytes | None = None) -> float:
    """Write one device file (and its key) into `image`, refresh its bmap; returns seconds."""
    started = time.perf_counter()
    part = fatimage.find_fat_partition(image)
    with tempfile.TemporaryDirectory(prefix="appliance-provision-") as tmp:
        if key is not None:  # first: appliance.toml never names a key that is not there
            fatimage.write_file(image, part, key, enrol.KEY_NAME, tmpdir=Path(tmp))
        fatimage.write_file(image, part, device.data, BOOT_NAME, tmpdir=Path(tmp))
        if wifi is not None:
            fatimage.write_file(image, part, wifi, WIFI_NAME, tmpdir=Path(tmp))
    if bmap_in is not None and bmap_out is not None:
        update_region(bmap_in, image, bmap_out, part.offset, part.size)
    return time.perf_counter() - started


def _check_only(image: Path | None, devices: list[DeviceFile], enrolling: bool) -> int:
    """`--check`: the device files are valid; an image, when given, has a FAT boot partition."""
    for dev in devices:
        would = " (would be enrolled)" if enrolling and enrol.wants_key(dev) else ""
        print(f"ok: {dev.source} ({dev.name}){would}")
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
        problems = (enrol.plan_problems(devices) if args.enrol_file is not None
                    else enrol.missing_key_problems(devices))
        if problems:
            raise ConfigError(problems)
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
        return _check_only(args.image, devices, args.enrol_file is not None)
    if args.fleet is not None and args.output_dir is None:
        print("error: --fleet needs --output-dir", file=sys.stderr)
        return EX_USAGE
    try:
        part = fatimage.find_fat_partition(args.image)
    except fatimage.ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EX_DATAERR
    log.debug("FAT partition %d at byte %d (%d bytes)", part.index, part.offset, part.size)
    if args.enrol_file is None:
        return _write_all(args, devices, wifi, None)
    created = not args.enrol_file.exists()
    try:
        rows = args.enrol_file.open("a", encoding="utf-8")
    except OSError as exc:
        print(f"error: {args.enrol_file}: cannot append to it ({exc.strerror}); nothing written",
              file=sys.stderr)
        return EX_CANTCREAT
    with rows:
        code = _write_all(args, devices, wifi, rows)
        empty = rows.tell() == 0
    if created and empty:
        args.enrol_file.unlink()  # nothing was enrolled: leave no file behind
    return code


def _write_all(args: argparse.Namespace, devices: list[DeviceFile], wifi: bytes | None,
               rows: IO[str] | None) -> int:
    """Write every device's image; a device's import row follows only its finished image."""
    bmap_in = _bmap_for(args.image)
    if args.device_file:
        jobs = [(devices[0], args.output or args.image, args.output is not None)]
    else:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        jobs = [(dev, args.output_dir / f"{dev.name}.img", True) for dev in devices]
    for dev, target, copy in jobs:
        enrolment = enrol.enrol(dev) if rows is not None and enrol.wants_key(dev) else None
        bmap_out = target.with_name(target.name + ".bmap") if copy and bmap_in else bmap_in
        copied = 0.0
        try:
            if copy:
                copy_started = time.perf_counter()
                copy_sparse(args.image, target)
                copied = time.perf_counter() - copy_started
            if enrolment is not None:
                os.chmod(target, 0o600)  # it is about to hold a device key
            took = write_device(target, enrolment.device if enrolment else dev, bmap_in,
                                bmap_out, wifi, enrolment.key if enrolment else None)
        except (fatimage.ImageError, BmapError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            if copy and target.is_file():  # a half-written copy is no image: remove it
                target.unlink()
                if bmap_out is not None and bmap_out != bmap_in:
                    bmap_out.unlink(missing_ok=True)
            return EX_DATAERR
        note = ""
        if enrolment is not None and rows is not None:
            enrol.append_row(rows, enrolment.row)
            note = f"; enrolled with key {enrolment.row['key_id']} -> {args.enrol_file}"
        if args.device_file:
            print(f"{target}: wrote /{BOOT_NAME} for {dev.name} ({took * 1000:.0f} ms){note}")
        else:
            print(f"{target}: {dev.name} (copy {copied:.1f} s, provision {took * 1000:.0f} ms)"
                  f"{note}")
    return EX_OK
