"""scripts/netns-run: private namespace with lo and a veth pair, the command's status, or 75."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "netns-run"
EX_TEMPFAIL = 75


def test_missing_tools_exit_75_with_a_reason() -> None:
    env = {**os.environ, "PATH": "/nonexistent"}
    out = subprocess.run(["/bin/bash", str(SCRIPT), "true"], env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == EX_TEMPFAIL
    assert out.stderr.startswith("netns-run: ") and out.stderr.count("\n") == 1


def test_runs_the_command_in_a_private_namespace() -> None:
    probe = ("ip -o -4 addr show dev va | grep -q 10.99.0.1/32 && [ -z \"$(ip route)\" ] "
             "&& [ \"$APPLIANCE_NETNS\" = 1 ] && exit 7")
    out = subprocess.run([str(SCRIPT), "sh", "-c", probe], capture_output=True, text=True,
                         timeout=30)
    if out.returncode == EX_TEMPFAIL:
        pytest.skip(f"network namespaces not permitted here: {out.stderr.strip()}")
    assert out.returncode == 7, out.stderr  # the command's own status; no route out
