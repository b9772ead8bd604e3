"""`appliance fault-leds`: hold the configuration-fault pattern on the LEDs for a while.

appliance.service runs it from ExecStopPost= when `appliance run` exited 78 (EX_CONFIG), for the
pause before the next restart, so a kiosk with a broken configuration blinks the documented
fault code instead of going dark, and picks up a corrected file on the next try.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from appliance.config import Config, load_gpio_best_effort
from appliance.errors import ConfigError, DeviceError
from appliance.session.model import Fault, State
from appliance.systemd import Notifier

log = logging.getLogger(__name__)

CONFIG_FAULT_STATE = State(fault=Fault.CONFIG_FAULT)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fault-leds", help="show the configuration-fault LED pattern until stopped "
        "(systemd runs it when the daemon exits 78)")
    parser.add_argument("--config", type=Path, metavar="FILE")
    parser.add_argument("--device-file", type=Path, metavar="FILE")
    parser.add_argument("--seconds", type=float, metavar="S",
                        help="stop by itself after S seconds (default: only on SIGTERM)")
    parser.set_defaults(func=cmd_fault_leds)


def cmd_fault_leds(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    from appliance.devices.gpio import GpioFrontEnd

    cfg = Config(gpio=load_gpio_best_effort(args.config, args.device_file))
    try:
        gpio = GpioFrontEnd.from_config(cfg, post=lambda _event: None, lamp_test=0)
    except (ConfigError, DeviceError) as exc:
        log.error("cannot show the configuration fault: %s", exc)
        return 1
    stop = stop or threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    notifier = Notifier()
    try:
        gpio.show(CONFIG_FAULT_STATE)
        notifier.status("configuration fault: run `appliance check` (the LEDs show the fault "
                        "code)")
        notifier.ready()
        stop.wait(getattr(args, "seconds", None))
        notifier.stopping()
    finally:
        gpio.close()  # all LEDs off
    return 0
