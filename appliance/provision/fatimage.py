"""Find the FAT boot partition inside a disk image and read/write files there with mtools."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from appliance.errors import ApplianceError

SECTOR = 512
# MBR partition types that hold a FAT file system (FAT12/16/32, CHS or LBA, EFI system).
FAT_MBR_TYPES = frozenset({0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E, 0xEF})
GPT_PROTECTIVE = 0xEE
# GPT partition types that hold FAT: EFI system partition, Microsoft basic data.
FAT_GPT_TYPES = frozenset({
    uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b"),
    uuid.UUID("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"),
})


class ImageError(ApplianceError, OSError):
    """The image has no usable FAT partition, or mtools failed on it."""


@dataclass(frozen=True)
class Partition:
    """A byte range of the image holding a FAT file system."""

    index: int  # 1-based partition number, 0 for a bare file system image
    offset: int  # bytes from the start of the image
    size: int  # bytes


def _looks_like_fat(boot_sector: bytes) -> bool:
    if len(boot_sector) < SECTOR or boot_sector[510:512] != b"\x55\xaa":
        return False
    return boot_sector[54:59] in (b"FAT12", b"FAT16") or boot_sector[82:87] == b"FAT32"


def find_fat_partition(image: Path) -> Partition:
    """The first FAT partition of an MBR or GPT disk image (or the whole file if it is bare FAT)."""
    try:
        with image.open("rb") as fh:
            mbr = fh.read(SECTOR)
            size = os.fstat(fh.fileno()).st_size
            if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
                raise ImageError(f"{image}: no partition table (no boot signature in sector 0)")
            entries = [mbr[446 + 16 * i: 462 + 16 * i] for i in range(4)]
            types = [entry[4] for entry in entries]
            if GPT_PROTECTIVE in types:
                return _find_gpt(fh, image)
            for number, entry in enumerate(entries, start=1):
                ptype = entry[4]
                start, sectors = struct.unpack_from("<II", entry, 8)
                if ptype in FAT_MBR_TYPES and sectors:
                    part = Partition(number, start * SECTOR, sectors * SECTOR)
                    if part.offset + part.size > size:
                        raise ImageError(
                            f"{image}: partition {number} ends past the end of the file "
                            "(truncated image?)"
                        )
                    return part
            if _looks_like_fat(mbr):
                return Partition(0, 0, size)
    except OSError as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"{image}: cannot read image ({exc.strerror})") from None
    raise ImageError(f"{image}: no FAT partition found (MBR types {[hex(t) for t in types]})")


def _find_gpt(fh: BinaryIO, image: Path) -> Partition:
    fh.seek(SECTOR)
    header = fh.read(92)
    if header[:8] != b"EFI PART":
        raise ImageError(f"{image}: protective MBR but no GPT header")
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    fh.seek(entries_lba * SECTOR)
    table = fh.read(count * entry_size)
    for number in range(count):
        entry = table[number * entry_size: (number + 1) * entry_size]
        if len(entry) < 48:
            break
        ptype = uuid.UUID(bytes_le=entry[:16])
        first, last = struct.unpack_from("<QQ", entry, 32)
        if ptype in FAT_GPT_TYPES:
            return Partition(number + 1, first * SECTOR, (last - first + 1) * SECTOR)
    raise ImageError(f"{image}: no FAT (EFI system or basic data) partition in the GPT")


def _mtools_env() -> dict[str, str]:
    env = dict(os.environ)
    # No user or system mtoolsrc surprises, no complaints about odd geometries.
    env["MTOOLSRC"] = os.devnull
    env["MTOOLS_SKIP_CHECK"] = "1"
    return env


def _run(args: list[str], what: str) -> subprocess.CompletedProcess[bytes]:
    if shutil.which(args[0]) is None:
        raise ImageError(f"{args[0]} not found: install mtools (apt-get install mtools)")
    proc = subprocess.run(args, capture_output=True, env=_mtools_env(), check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip()
        raise ImageError(f"{what} failed: {detail or f'exit status {proc.returncode}'}")
    return proc


def _target(image: Path, part: Partition) -> str:
    return f"{image}@@{part.offset}"


def write_file(image: Path, part: Partition, data: bytes, name: str, *, tmpdir: Path) -> None:
    """Write `data` as ::/name in the partition, replacing any file of that name."""
    src = tmpdir / "payload"
    fd = os.open(src, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    _run(["mcopy", "-i", _target(image, part), "-D", "o", "-o", str(src), f"::/{name}"],
         f"writing {name} into {image}")


def read_file(image: Path, part: Partition, name: str) -> bytes:
    """Contents of ::/name in the partition."""
    proc = _run(["mtype", "-i", _target(image, part), f"::/{name}"], f"reading {name}")
    return proc.stdout


def delete_file(image: Path, part: Partition, name: str) -> None:
    """Remove ::/name from the partition (an error if it is not there)."""
    _run(["mdel", "-i", _target(image, part), f"::/{name}"], f"deleting {name}")


def list_files(image: Path, part: Partition) -> list[str]:
    """Names in the partition's root directory."""
    proc = _run(["mdir", "-b", "-i", _target(image, part), "::/"], "listing")
    return [line.rsplit("/", 1)[-1] for line in proc.stdout.decode().splitlines() if line]
