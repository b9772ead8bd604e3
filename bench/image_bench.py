"""Image lane figures: image build time, provisioning time per device, boot -> READY=1 (qemu).

    sudo .venv/bin/python bench/image_bench.py                  # build, provision, boot
    .venv/bin/python bench/image_bench.py --image-dir build/image --no-boot   # provisioning only

Prints figures; asserts nothing (timings belong here, not in tests/).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "tests" / "image"))

from qemu_harness import SELFTEST, boot, build_image, put_boot_file  # noqa: E402

from appliance.provision.command import copy_sparse, write_device  # noqa: E402
from appliance.provision.devices import load_device_file  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-dir", type=Path,
                    help="reuse an image built by image/build -o DIR instead of building")
    ap.add_argument("--devices", type=int, default=20, help="devices to provision (default 20)")
    ap.add_argument("--no-boot", action="store_true", help="skip the qemu boot")
    ap.add_argument("--boot-timeout", type=float, default=1200.0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="image-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if args.image_dir:
            out = args.image_dir
            print("image build: skipped (reusing", out, ")")
        else:
            out = tmp / "image"
            started = time.perf_counter()
            build_image(out, log=tmp / "build.log")
            print(f"image build: {time.perf_counter() - started:.0f} s "
                  "(mmdebstrap + qemu-user + assembly, 2 cores)")
        golden = out / "kiosk-arm64.img"
        bmap = golden.with_name(golden.name + ".bmap")

        work = tmp / "provision"
        work.mkdir()
        target = work / "device.img"
        copy_started = time.perf_counter()
        copy_sparse(golden, target)
        copy_s = time.perf_counter() - copy_started
        shutil_bmap = target.with_name(target.name + ".bmap")
        times = []
        for n in range(args.devices):
            dev_file = work / f"kiosk-{n:03d}.toml"
            dev_file.write_text(f'[livekit]\nidentity = "kiosk-{n:03d}"\nroom = "lobby"\n'
                                f'api_key = "K"\napi_secret = "secret-{n}"\n')
            dev_file.chmod(0o600)
            started = time.perf_counter()
            dev = load_device_file(dev_file)
            write_device(target, dev, bmap if bmap.exists() else None,
                         shutil_bmap if bmap.exists() else None)
            times.append(time.perf_counter() - started)
        print(f"provisioning per device: median {statistics.median(times) * 1000:.0f} ms, "
              f"max {max(times) * 1000:.0f} ms over {len(times)} devices "
              f"(validate + mcopy + bmap update; {golden.stat().st_size >> 20} MiB image)")
        print(f"sparse image copy (fleet form, per device): {copy_s:.2f} s")

        if not args.no_boot:
            device = work / "kiosk-07.toml"
            device.write_text('[livekit]\nidentity = "kiosk-07"\nroom = "lobby"\n'
                              'url = "ws://127.0.0.1:7880"\napi_key = "K"\n'
                              'api_secret = "bench-secret-0123456789abcdef0123"\n'
                              '[camera]\nbackend = "test"\n[microphone]\nbackend = "test"\n'
                              '[speaker]\nbackend = "none"\n[gpio]\npin_factory = "mock"\n')
            device.chmod(0o600)
            img = work / "boot.img"
            copy_sparse(golden, img)
            write_device(img, load_device_file(device), None, None)
            put_boot_file(img, "selftest.sh", SELFTEST.read_bytes())
            res = boot(img, out / "vmlinuz", out / "initrd.img", timeout=args.boot_timeout,
                       log=work / "console.log",
                       watch=("Booting Linux", "appliance_state=active", "SELFTEST end"))
            ready_us = res.value("ready_monotonic_us")
            start_us = res.value("start_monotonic_us")
            if ready_us and ready_us != "0":
                print(f"boot -> READY=1 (guest clock, kernel start -> appliance active): "
                      f"{int(ready_us) / 1e6:.1f} s; daemon start -> READY=1: "
                      f"{(int(ready_us) - int(start_us)) / 1e6:.1f} s "
                      "(qemu -M virt, cortex-a72 x2, TCG, no KVM)")
            else:
                print("boot -> READY=1: not reached", res.selftest)
            for mark, at in res.marks.items():
                print(f"  wall clock {at:6.1f} s: {mark!r} on the console")
            print(f"whole guest run incl. watchdog/stop checks: {res.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
