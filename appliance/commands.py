"""Core subcommands: `appliance check` validates and shows the configuration."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from appliance.config import Config, load, redacted_dict, to_toml
from appliance.errors import ConfigError
from appliance.logs import register_secret

EX_CONFIG = 78


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="configuration file (default: /etc/appliance/appliance.toml if it exists)",
    )
    parser.add_argument(
        "--device-file",
        type=Path,
        metavar="FILE",
        help="per-device file layered on top (default: device.file, /boot/firmware/appliance.toml)",
    )


def register(subparsers: Any) -> None:
    check = subparsers.add_parser(
        "check", help="validate the configuration and print it with secrets redacted"
    )
    _add_config_args(check)
    check.set_defaults(func=cmd_check)
    run = subparsers.add_parser(
        "run", help="join the configured room and stay there through any outage (the service)"
    )
    _add_config_args(run)
    run.set_defaults(func=cmd_run)


def load_or_report(args: argparse.Namespace) -> Config | None:
    """Load the configuration; on error print one line per problem to stderr and return None."""
    try:
        cfg = load(args.config, args.device_file)
    except ConfigError as exc:
        print(f"configuration error ({len(exc.problems)} problem(s)):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None
    register_secret(cfg.livekit.token)
    register_secret(cfg.livekit.api_secret)
    return cfg


def cmd_check(args: argparse.Namespace) -> int:
    cfg = load_or_report(args)
    if cfg is None:
        return EX_CONFIG
    print(to_toml(redacted_dict(cfg)), end="")
    print(f"# configuration OK (token source: {cfg.token_source})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Exit 78 on a configuration error; otherwise only on SIGTERM/SIGINT (then 0)."""
    cfg = load_or_report(args)
    if cfg is None:
        return EX_CONFIG
    import asyncio
    import faulthandler

    from appliance.kiosk import run_kiosk  # livekit is a heavy import: only here

    faulthandler.enable()  # the unit's WatchdogSignal=SIGABRT then leaves a traceback

    return asyncio.run(run_kiosk(cfg))
