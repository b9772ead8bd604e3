"""The systemd units, sysusers.d and tmpfiles.d files: verified by systemd's own tools (fast)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
UNITS = PROJECT / "systemd"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        why = f"{name} not installed (apt-get install systemd)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return path


def _options(unit: str) -> dict[str, list[str]]:
    """Every `Key=value` of a unit, keys with repeated values collected in order."""
    found: dict[str, list[str]] = {}
    for line in (UNITS / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    """A root with the host's system units (targets etc.) and a stand-in for the daemon."""
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    host_units = Path("/usr/lib/systemd/system")
    if not host_units.is_dir():
        host_units = Path("/lib/systemd/system")
    shutil.copytree(host_units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "opt/appliance/venv/bin").mkdir(parents=True)
    for name in ("appliance", "python"):
        exe = root / "opt/appliance/venv/bin" / name
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    (root / "bin").mkdir()
    shutil.copy("/bin/sh", root / "bin/sh")  # ExecStopPost= runs a shell line
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in ("appliance.service", "appliance-firstboot.service"):
        shutil.copy(UNITS / unit, root / "etc/systemd/system" / unit)
    return root


def test_systemd_analyze_verify(fake_root: Path) -> None:
    tool = _tool("systemd-analyze")
    proc = subprocess.run(
        [tool, "verify", f"--root={fake_root}", "/etc/systemd/system/appliance.service",
         "/etc/systemd/system/appliance-firstboot.service"],
        capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


def test_security_exposure_stays_low(fake_root: Path) -> None:
    tool = _tool("systemd-analyze")
    proc = subprocess.run(
        [tool, "security", "--offline=true", f"--root={fake_root}", "--threshold=20",
         "/etc/systemd/system/appliance.service"], capture_output=True, text=True)
    last = proc.stdout.strip().splitlines()[-1]
    exposure = float(last.split("appliance.service:")[1].split()[0])
    assert exposure <= 2.0, proc.stdout


def test_sysusers_and_tmpfiles_apply_to_an_empty_root(tmp_path: Path) -> None:
    sysusers = _tool("systemd-sysusers")
    tmpfiles = _tool("systemd-tmpfiles")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        (root / "etc" / name).write_text("")
    basics = root / "basics.conf"
    basics.write_text("g video -\ng audio -\n")
    subprocess.run([sysusers, f"--root={root}", str(basics), str(UNITS / "appliance.sysusers")],
                   check=True, capture_output=True)
    groups = (root / "etc/group").read_text()
    assert "appliance:x:" in (root / "etc/passwd").read_text()
    for group in ("video", "audio", "gpio"):
        line = next(g for g in groups.splitlines() if g.startswith(f"{group}:"))
        assert "appliance" in line.split(":")[3]
    subprocess.run([tmpfiles, f"--root={root}", "--create", str(UNITS / "appliance.tmpfiles")],
                   check=True, capture_output=True)
    assert oct((root / "etc/appliance/credentials").stat().st_mode & 0o777) == "0o700"


def test_the_service_keeps_its_contract() -> None:
    opts = _options("appliance.service")
    assert opts["Type"] == ["notify"]
    assert opts["Restart"] == ["always"]
    assert opts["StartLimitIntervalSec"] == ["0"]
    assert opts["WatchdogSec"]
    assert "78" not in " ".join(opts.get("RestartPreventExitStatus", []))
    assert opts["DevicePolicy"] == ["closed"]
    assert sorted(opts["DeviceAllow"]) == sorted(
        f"char-{n} rw" for n in ("video4linux", "media", "dma_heap", "alsa", "gpiochip"))
    assert "PrivateDevices" not in opts
    assert opts["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"]
    assert opts["SupplementaryGroups"] == ["video audio gpio"]
    assert opts["RuntimeDirectory"] == ["appliance"]
    assert opts["LoadCredential"] == ["appliance:/etc/appliance/credentials"]
    first = _options("appliance-firstboot.service")
    assert "|/boot/firmware/appliance.toml" in first["ConditionPathExists"]


def test_every_service_option_has_a_reason() -> None:
    """Each directive (or run of related directives) sits under a comment saying why."""
    lines = (UNITS / "appliance.service").read_text().splitlines()
    uncommented = []
    for i, line in enumerate(lines):
        if not line or line.startswith(("#", "[", "Description=", "Documentation=", "WantedBy=")):
            continue
        j = i - 1
        while j >= 0 and lines[j] and not lines[j].startswith(("#", "[")):
            j -= 1  # walk up through the group this option belongs to
        if j < 0 or not lines[j].startswith("#"):
            uncommented.append(line)
    assert uncommented == []


@pytest.mark.parametrize(("status", "shown"), [("78", True), ("0", False), ("1", False)])
def test_a_config_error_exit_blinks_the_fault_leds(tmp_path: Path, status: str,
                                                   shown: bool) -> None:
    [line] = _options("appliance.service")["ExecStopPost"]
    script = line.removeprefix("/bin/sh -c '").removesuffix("'")
    stub = tmp_path / "appliance"
    stub.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/called\n')
    stub.chmod(0o755)
    script = script.replace("/opt/appliance/venv/bin/appliance", str(stub))
    proc = subprocess.run(["/bin/sh", "-c", script], env={"EXIT_STATUS": status},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    called = tmp_path / "called"
    assert called.exists() is shown
    if shown:
        assert called.read_text().split()[0] == "fault-leds"
