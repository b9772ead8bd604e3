"""`appliance fault-leds`: hold the configuration-fault pattern on the LEDs until stopped.

systemd starts it when `appliance run` exits 78 (EX_CONFIG), so a kiosk with a broken
configuration blinks the documented fault code instead of going dark; it stops again as soon as
the daemon starts (the units conflict).
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
        stop.wait()
        notifier.stopping()
    finally:
        gpio.close()  # all LEDs off
    return 0
