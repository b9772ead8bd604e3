"""Command line: `appliance run|check|devserver|...`; subcommands live beside their code."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from appliance import __version__
from appliance.logs import setup_logging

# Modules that add a subcommand through `register(subparsers)`. Each keeps its heavy imports
# (aiortc, livekit, gpiozero) inside the command function so `appliance --help` stays fast and
# works without the dev extras installed.
SUBCOMMAND_MODULES = (
    "appliance.commands",
    "appliance.control.command",
    "appliance.devices.faultleds",
    "appliance.provision.command",
    "appliance.devserver.command",
    "appliance.demo.command",
    "appliance.remote.ops",
    "appliance.fleet.command",
)

EX_OK = 0
EX_USAGE = 64
EX_CONFIG = 78  # sysexits.h EX_CONFIG: systemd's RestartPreventExitStatus can key on it


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="appliance",
        description="Room-kiosk appliance: keeps a Raspberry Pi in one LiveKit room, forever.",
    )
    parser.add_argument("--version", action="version", version=f"appliance {__version__}")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity (default: info)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue  # that feature is not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EX_USAGE
    code: int = func(args)
    if getattr(args, "skip_native_teardown", False):
        _leave_now(code)
    return code


def _leave_now(code: int) -> NoReturn:
    """Exit without the interpreter's teardown, once a command's work is done and said.

    After a `livekit.rtc.Room` was used, livekit 1.2's native runtime sometimes aborts
    (SIGABRT) while Python tears it down at exit: `appliance ops` then reported a failure for
    an action that was done. Nothing is left to do but flush what was written.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
