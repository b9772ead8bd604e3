"""Boot an appliance image under qemu-system-aarch64 and collect SELFTEST lines from its console.

Used by tests/image/test_boot.py and bench/image_bench.py. The guest has no network at all
(`-nic none`); the only channel is the serial console on our stdout pipe. Every wait is bounded
by a hard wall-clock deadline after which qemu is killed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
DISK_ID = "4b696f73"
SELFTEST = Path(__file__).with_name("selftest.sh")
HOST_TOOLS = ("qemu-system-aarch64", "mcopy", "mkfs.vfat", "sfdisk", "mkfs.ext4", "mmdebstrap",
              "bmaptool")


@dataclass
class BootResult:
    lines: list[str] = field(default_factory=list)
    selftest: dict[str, str] = field(default_factory=dict)
    timed_out: bool = False
    seconds: float = 0.0
    returncode: int | None = None
    marks: dict[str, float] = field(default_factory=dict)  # first time a console text appeared

    def value(self, key: str) -> str:
        return self.selftest.get(key, "")


def missing_tools() -> list[str]:
    return [t for t in HOST_TOOLS if shutil.which(t) is None]


def put_boot_file(image: Path, name: str, data: bytes) -> None:
    sys.path.insert(0, str(PROJECT))
    from appliance.provision import fatimage

    part = fatimage.find_fat_partition(image)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fatimage.write_file(image, part, data, name, tmpdir=Path(tmp))


def boot(image: Path, kernel: Path, initrd: Path, *, timeout: float, log: Path | None = None,
         watch: tuple[str, ...] = ("SELFTEST end",), memory_mib: int = 1024) -> BootResult:
    """Boot with selftest.sh as the systemd.run= unit; stop at 'SELFTEST end' or the deadline."""
    cmdline = (f"root=PARTUUID={DISK_ID}-02 rw rootwait console=ttyAMA0 "
               "systemd.run=\"/bin/sh /boot/firmware/selftest.sh\" "
               "systemd.run_success_action=poweroff systemd.run_failure_action=poweroff "
               # no login prompt fighting over the serial console
               "systemd.mask=serial-getty@ttyAMA0.service systemd.show_status=auto")
    cmd = [
        "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", "2",
        "-m", str(memory_mib), "-nographic", "-no-reboot", "-nic", "none",
        "-kernel", str(kernel), "-initrd", str(initrd), "-append", cmdline,
        "-drive", f"file={image},if=virtio,format=raw,cache=unsafe",
    ]
    result = BootResult()
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    done = threading.Event()
    sink = log.open("w", encoding="utf-8", errors="replace") if log else None

    def reader() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            elapsed = time.monotonic() - started
            result.lines.append(line)
            if sink:
                sink.write(f"[{elapsed:7.1f}] {line}\n")
                sink.flush()
            if "SELFTEST " in line:
                body = line.split("SELFTEST ", 1)[1]
                for token in body.split(" "):
                    key, eq, value = token.partition("=")
                    if eq and key not in result.selftest:
                        result.selftest[key] = value
                # keep whole text values (status lines have spaces)
                for whole in ("status_text", "status_after_crashes", "exposure"):
                    if body.startswith(f"{whole}="):
                        result.selftest[whole] = body[len(whole) + 1:]
            for mark in watch:
                if mark in line and mark not in result.marks:
                    result.marks[mark] = elapsed
            if "SELFTEST end" in line:
                done.set()
        done.set()

    thread = threading.Thread(target=reader, name="qemu-console", daemon=True)
    thread.start()
    finished = done.wait(timeout)
    if not finished:
        result.timed_out = True
    # give the guest a moment to power off by itself, then make sure qemu is gone
    try:
        proc.wait(timeout=30 if finished else 0.1)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    thread.join(timeout=5)
    if sink:
        sink.close()
    result.returncode = proc.returncode
    result.seconds = time.monotonic() - started
    return result


def build_image(out_dir: Path, *, log: Path | None = None) -> Path:
    """Run image/build into out_dir (root needed); returns the image path."""
    cmd = [str(PROJECT / "image" / "build"), "-o", str(out_dir)]
    with (log.open("w") if log else open(os.devnull, "w")) as sink:
        subprocess.run(cmd, check=True, stdout=sink, stderr=subprocess.STDOUT)
    return out_dir / "kiosk-arm64.img"
