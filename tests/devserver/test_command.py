"""`appliance devserver`: loopback by default, clean exit on SIGTERM, cheap to import."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def test_refuses_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    # Through the parser, not cli.main: main() configures logging onto pytest's captured stderr.
    args = build_parser().parse_args(["devserver", "--host", "0.0.0.0", "--port", "0"])
    assert args.func(args) == 64
    assert "--allow-remote" in capsys.readouterr().err


def test_importing_the_command_does_not_pull_in_aiortc() -> None:
    code = ("import sys, appliance.devserver.command; "
            "print(any(m.startswith(('aiortc', 'aiohttp', 'livekit')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_prints_url_and_stops_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "devserver", "--port", "0",
         "--device-key", "kiosk-1=k1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        banner = [proc.stdout.readline() for _ in range(7)]  # blocks until printed
        text = "".join(banner)
        assert "ws://127.0.0.1:" in text and "devkey" in text and "NOT production" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_webhook_and_quality_options() -> None:
    args = build_parser().parse_args(["devserver", "--webhook", "http://127.0.0.1:9000/a",
                                      "--webhook", "http://127.0.0.1:9000/b",
                                      "--quality-interval", "2"])
    assert args.webhook == ["http://127.0.0.1:9000/a", "http://127.0.0.1:9000/b"]
    assert args.quality_interval == 2.0
