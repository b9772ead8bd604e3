"""What `appliance provision --enrol-file` adds per device: a synthetic image, same run, ratio.

    .venv/bin/python bench/provision_enrol_bench.py [--devices 20]

Provisions the same fleet folder twice into copies of a small synthetic image (MBR + 16 MiB
FAT, made with mkfs.vfat/mtools as tests/provision does): once plain (device files with a
static token), once enrolling every device (a new key, its argon2 hash, the key file on the
image, the import row). Prints both per-device times and their ratio; asserts nothing.
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
sys.path.insert(0, str(PROJECT / "tests" / "provision"))

from provision_images import make_image, write_private  # noqa: E402

from appliance.provision import command  # noqa: E402


def provision(*argv: str) -> float:
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["provision", *argv])
    started = time.perf_counter()
    if args.func(args) != 0:
        raise SystemExit(f"provision {' '.join(argv)} failed")
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="enrol-bench-") as tmp_name:
        tmp = Path(tmp_name)
        image = make_image(tmp / "golden.img")
        plain, fleet = tmp / "plain", tmp / "fleet"
        plain.mkdir()
        fleet.mkdir()
        for n in range(args.devices):
            base = f'[livekit]\nidentity = "kiosk-{n:04d}"\nroom = "lobby"\n'
            write_private(plain / f"k{n:04d}.toml", base + f'token = "t{n}"\n')
            write_private(fleet / f"k{n:04d}.toml", base)
        quiet = open("/dev/null", "w")  # noqa: SIM115  (the per-device lines are not figures)
        saved, sys.stdout = sys.stdout, quiet
        plains, enrols = [], []
        try:
            # Alternating rounds, medians: the machine is shared, load comes and goes.
            for _ in range(args.rounds):
                plains.append(provision(str(image), "--fleet", str(plain), "--output-dir",
                                        str(tmp / "out-plain")))
                enrols.append(provision(str(image), "--fleet", str(fleet), "--output-dir",
                                        str(tmp / "out-fleet"), "--enrol-file",
                                        str(tmp / "e.jsonl")))
        finally:
            sys.stdout = saved
            quiet.close()
    t_plain, t_enrol = statistics.median(plains), statistics.median(enrols)
    n = args.devices
    print(f"{n} devices, synthetic 24 MiB image, median of {args.rounds} alternating rounds")
    print(f"  plain (baseline):   {t_plain / n * 1000:6.1f} ms per device")
    print(f"  with --enrol-file:  {t_enrol / n * 1000:6.1f} ms per device "
          f"(x{t_enrol / t_plain:.2f} of the baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
