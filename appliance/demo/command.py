"""`appliance demo`: the whole kiosk simulated against the test double, live panel or script."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import termios
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from appliance.errors import ConfigError

EX_FAIL = 1
EX_DATAERR = 65


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole kiosk, simulated, against a local LiveKit test double",
        description="Starts the LiveKit test double with a far-end participant (tone + test "
        "pattern), the fleet service with the kiosk enrolled (its console and a login are on "
        "the panel) and a kiosk with simulated camera, microphone, speaker and GPIO that gets "
        "its tokens from the fleet service, then shows a live panel. Keys press the buttons and "
        "inject faults.",
        epilog="A script has one step a line: press BUTTON, hold BUTTON [SECONDS], fault NAME "
        "[ARGS], remote ACTION (an operator's `appliance ops ACTION`), wait SECONDS, expect "
        "FIELD VALUE [within SECONDS]. Examples: tests/demo/*.script; the README's Quick start "
        "lists the steps. Run it as `scripts/demo --script FILE`: media needs the demo's "
        "network namespace.",
    )
    parser.add_argument("--script", type=Path, metavar="FILE",
                        help="replay presses, faults and expectations from FILE without a "
                        "terminal; print the state as text lines; exit 1 if an expectation fails")
    parser.add_argument("--svg", type=Path, metavar="OUT",
                        help="also write the panel as an SVG picture to OUT: when the script "
                        "ends, or when you quit the live panel with q (the console's password "
                        "is left out)")
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from appliance.demo import script

    steps = None
    if args.svg is not None and not args.svg.parent.is_dir():
        print(f"appliance demo: --svg {args.svg}: no folder {args.svg.parent}", file=sys.stderr)
        return EX_DATAERR
    if args.script is not None:
        try:
            steps = script.load(args.script)
        except ConfigError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return EX_DATAERR
    elif not sys.stdin.isatty():
        print("appliance demo: the live panel needs a terminal; use --script FILE to run "
              "without one, e.g. `scripts/demo --script tests/demo/smoke.script`",
              file=sys.stderr)
        return EX_DATAERR
    _warn_without_network()
    try:
        return asyncio.run(_main(steps, args.svg))
    except KeyboardInterrupt:
        return 130


def _warn_without_network() -> None:
    """libwebrtc gathers no candidates on loopback: media needs another interface up."""
    try:
        names = os.listdir("/sys/class/net")
    except OSError:
        return
    usable = []
    for name in names:
        if name == "lo":
            continue
        with contextlib.suppress(OSError), open(f"/sys/class/net/{name}/operstate") as f:
            if f.read().strip() in ("up", "unknown"):
                usable.append(name)
    if not usable:
        print("appliance demo: this host has only a loopback interface, and libwebrtc will not "
              "send media over loopback: signalling works but no audio or video will flow. "
              "Run `scripts/demo`, which starts the demo inside a private network namespace "
              "with a veth pair.", file=sys.stderr)


async def _main(steps: list[Any] | None, svg: Path | None) -> int:
    from appliance.demo.view import Observer
    from appliance.demo.world import KIOSK, DemoError, DemoWorld

    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        # SIGHUP too: closing the terminal window must still stop the kiosk and the double
        # cleanly and remove the demo's folder.
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, task.cancel)
    try:
        async with DemoWorld() as world:
            observer = Observer(KIOSK, world.speaker_level, kiosk_log=world.kiosk_log)
            if steps is not None:
                from appliance.demo.runner import run_script

                print("# starting the LiveKit test double, the fleet service and the kiosk "
                      "(a few seconds)", flush=True)
                await world.start()
                return await run_script(world, observer, steps, svg)
            from appliance.demo.runner import run_interactive

            with _cbreak(sys.stdin.fileno()):
                return await run_interactive(world, observer, svg)  # starts the world itself
    except DemoError as exc:
        print(f"appliance demo: {exc}", file=sys.stderr)
        return EX_FAIL
    except asyncio.CancelledError:
        return 143


@contextlib.contextmanager
def _cbreak(fd: int) -> Iterator[None]:
    """Keys arrive one by one without Enter; Ctrl-C still interrupts. Restored on exit."""
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        with contextlib.suppress(termios.error):  # the terminal may be gone (SIGHUP)
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
