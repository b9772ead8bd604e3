"""Keep a bmaptool block map valid after files were written into one region of an image."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from appliance.errors import ApplianceError

_RANGE = re.compile(r'\s*<Range chksum="([0-9a-f]+)">\s*(\d+)(?:-(\d+))?\s*</Range>\s*')
_FIELD = "<{0}>\\s*([^<]*?)\\s*</{0}>"


class BmapError(ApplianceError, ValueError):
    """The block map cannot be read or does not belong to this image."""


def _field(text: str, name: str) -> str:
    match = re.search(_FIELD.format(name), text)
    if not match:
        raise BmapError(f"bmap: no <{name}>")
    return match.group(1)


def mapped_extents(fd: int, start: int, end: int) -> list[tuple[int, int]]:
    """Byte ranges [a, b) holding data (not holes) between start and end."""
    extents: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after pos
            break
        if data >= end:
            break
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        extents.append((data, hole))
        pos = hole
    return extents


def _sha(fd: int, first: int, last: int, block: int) -> str:
    digest = hashlib.sha256()
    pos, end = first * block, (last + 1) * block
    while pos < end:
        chunk = os.pread(fd, min(1 << 20, end - pos), pos)
        if not chunk:
            break
        digest.update(chunk)
        pos += len(chunk)
    return digest.hexdigest()


def update_region(bmap_in: Path, image: Path, bmap_out: Path, start: int, size: int) -> None:
    """Rewrite `bmap_in` for `image`, re-mapping and re-hashing only bytes [start, start+size).

    The rest of the image must be unchanged since `bmap_in` was made (provisioning touches only
    the FAT partition). Takes milliseconds where `bmaptool create` would hash the whole image.
    """
    text = bmap_in.read_text()
    if _field(text, "ChecksumType") != "sha256":
        raise BmapError(f"{bmap_in}: only sha256 block maps are supported")
    block = int(_field(text, "BlockSize"))
    if start % block or size % block:
        raise BmapError(f"{bmap_in}: region not aligned to the {block}-byte block size")
    if int(_field(text, "ImageSize")) != image.stat().st_size:
        raise BmapError(f"{bmap_in}: image size differs from {image}")
    body = re.search(r"<BlockMap>(.*)</BlockMap>", text, re.S)
    if not body:
        raise BmapError(f"{bmap_in}: no <BlockMap>")
    first_blk, last_blk = start // block, (start + size) // block - 1
    ranges: list[tuple[int, int, str]] = []
    for match in _RANGE.finditer(body.group(1)):
        a = int(match.group(2))
        b = int(match.group(3) or a)
        if b < first_blk or a > last_blk:
            ranges.append((a, b, match.group(1)))
            continue
        # A range straddling the region keeps its outside parts (re-hashed below).
        if a < first_blk:
            ranges.append((a, first_blk - 1, ""))
        if b > last_blk:
            ranges.append((last_blk + 1, b, ""))
    fd = os.open(image, os.O_RDONLY)
    try:
        for lo, hi in mapped_extents(fd, start, start + size):
            ranges.append((lo // block, (hi + block - 1) // block - 1, ""))
        ranges.sort()
        merged: list[tuple[int, int, str]] = []
        for a, b, sha in ranges:
            if merged and a <= merged[-1][1] + 1 and (not sha or not merged[-1][2]):
                pa, pb, _ = merged[-1]
                merged[-1] = (pa, max(pb, b), "")
            else:
                merged.append((a, b, sha))
        final = [(a, b, sha or _sha(fd, a, b, block)) for a, b, sha in merged]
    finally:
        os.close(fd)
    lines = [
        f'        <Range chksum="{sha}"> {a}-{b} </Range>' if a != b
        else f'        <Range chksum="{sha}"> {a} </Range>'
        for a, b, sha in final
    ]
    mapped = sum(b - a + 1 for a, b, _ in final)
    out = text[: body.start(1)] + "\n" + "\n".join(lines) + "\n    " + text[body.end(1):]
    out = re.sub(_FIELD.format("MappedBlocksCount"),
                 f"<MappedBlocksCount> {mapped} </MappedBlocksCount>", out)
    zeroed = re.sub(_FIELD.format("BmapFileChecksum"),
                    f"<BmapFileChecksum> {'0' * 64} </BmapFileChecksum>", out)
    checksum = hashlib.sha256(zeroed.encode()).hexdigest()
    out = zeroed.replace("0" * 64, checksum, 1)
    tmp = bmap_out.with_name(bmap_out.name + ".tmp")
    tmp.write_text(out)
    tmp.replace(bmap_out)
