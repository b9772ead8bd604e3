"""Core subcommands: `appliance check` validates the configuration, `run` is the daemon."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from appliance.config import Config, layer_files, load
from appliance.config.schema import redacted_dict, to_toml
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
        "check", help="validate the configuration and print it with secrets redacted; list the "
        "cameras and ALSA sound devices",
        description="Validate every configuration layer and print the effective configuration "
        "(secrets as ***), the files it came from, the cameras and ALSA sound cards and PCMs of "
        "this machine, and which of them the configuration would use. Exit status 78 on a "
        "configuration error.",
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
        # `defaults:` above means no layer set that key: say which files were looked at.
        print("looked for:", file=sys.stderr)
        for line in layer_files(args.config, args.device_file):
            print(f"  - {line}", file=sys.stderr)
        return None
    register_secret(cfg.livekit.token)
    register_secret(cfg.livekit.api_secret)
    return cfg


def cmd_check(args: argparse.Namespace) -> int:
    """The configuration, then the devices, as TOML and comments; exit 78 on a problem."""
    cfg = load_or_report(args)
    if cfg is None:
        _print_comments("devices on this machine", _devices(None))
        return EX_CONFIG
    _print_comments("read from", layer_files(args.config, args.device_file))
    print(to_toml(redacted_dict(cfg)), end="")
    _print_comments("devices, and what this configuration would use", _devices(cfg))
    print(f"# configuration OK (token source: {cfg.token_source})")
    return 0


def _print_comments(title: str, lines: list[str]) -> None:
    """TOML comments, so that what `check` prints stays a valid configuration file."""
    print(f"# {title}:")
    for line in lines:
        print(f"#   {line}")
    print()


def _devices(cfg: Config | None) -> list[str]:
    try:
        from appliance.media.backends import describe_machine, describe_media
    except ImportError as exc:  # a build without the media stack can still check its file
        return [f"cannot list devices: {exc}"]
    return describe_machine() if cfg is None else describe_media(cfg)


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
