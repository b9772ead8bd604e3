"""Small synthetic disk images (MBR + FAT + filler) made with the real tools, in milliseconds."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

TOOLS = ("mkfs.vfat", "fsck.fat", "sfdisk", "mcopy", "mtype", "mdir")
MIB = 1024 * 1024
FAT_START = 1 * MIB
FAT_SIZE = 16 * MIB
IMAGE_SIZE = 24 * MIB


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if not missing:
        return
    why = f"missing tools {missing} (apt-get install dosfstools mtools fdisk bmap-tools)"
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


def make_image(path: Path, *, files: dict[str, bytes] | None = None) -> Path:
    """MBR disk: p1 FAT16 at 1 MiB (16 MiB), p2 "Linux" filled with a pattern."""
    require_tools(*TOOLS)
    filler = bytes(range(256)) * (IMAGE_SIZE // 256)
    path.write_bytes(filler)
    layout = (
        "label: dos\nlabel-id: 0x4b696f73\nunit: sectors\n"
        f"start={FAT_START // 512}, size={FAT_SIZE // 512}, type=c, bootable\n"
        f"start={(FAT_START + FAT_SIZE) // 512}, type=83\n"
    )
    subprocess.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(path)],
                   input=layout.encode(), check=True, capture_output=True)
    fat = path.with_suffix(".fat")
    subprocess.run(["mkfs.vfat", "-C", "-n", "BOOT", str(fat), str(FAT_SIZE // 1024)],
                   check=True, capture_output=True)
    env = dict(os.environ, MTOOLSRC=os.devnull, MTOOLS_SKIP_CHECK="1")
    for name, data in (files or {"config.txt": b"camera_auto_detect=1\n"}).items():
        src = path.parent / f"src-{name}"
        src.write_bytes(data)
        subprocess.run(["mcopy", "-i", str(fat), str(src), f"::/{name}"], check=True, env=env)
    with path.open("r+b") as out:
        out.seek(FAT_START)
        out.write(fat.read_bytes())
    fat.unlink()
    return path


def outside_fat(image: Path) -> bytes:
    data = image.read_bytes()
    return data[:FAT_START] + data[FAT_START + FAT_SIZE:]


def fat_bytes(image: Path) -> bytes:
    return image.read_bytes()[FAT_START:FAT_START + FAT_SIZE]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path / "kiosk.img")


def write_private(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.fixture
def device_file(tmp_path: Path) -> Path:
    return write_private(
        tmp_path / "kiosk-07.toml",
        '[livekit]\nidentity = "kiosk-07"\nroom = "lobby"\napi_key = "APIkey"\n'
        'api_secret = "s3cret-value-123"\n\n[camera]\nwidth = 640\nheight = 480\n',
    )


def run_cli(*argv: str) -> int:
    """`appliance provision ARGV...` in this process; its exit status."""
    import argparse

    from appliance.provision import command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["provision", *argv])
    code: int = args.func(args)
    return code
