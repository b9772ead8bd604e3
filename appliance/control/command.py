"""CLI client of the control socket: `appliance status [--json]`, `appliance press BUTTON`."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from appliance.control import MAX_REQUEST, ControlError

EX_OK = 0
EX_FAILED = 1  # the daemon answered with an error
EX_UNAVAILABLE = 69  # sysexits.h: the daemon is not running
EX_NOPERM = 77  # sysexits.h: permission denied on the socket
SOCKET_ENV = "APPLIANCE_CONTROL_SOCKET"
REPLY_LIMIT = 1 << 20


class DaemonUnavailable(ControlError):
    """Nobody serves the control socket, or we may not open it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def request(path: Path, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Send one request line and read one reply line."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except FileNotFoundError:
            raise DaemonUnavailable(
                f"the appliance daemon is not running (no control socket at {path}); "
                "start it with `systemctl start appliance` or pass --socket", EX_UNAVAILABLE,
            ) from None
        except PermissionError:
            raise DaemonUnavailable(
                f"permission denied on {path}: run as root or as a member of the socket's "
                f"group (see `ls -l {path}`)", EX_NOPERM,
            ) from None
        except ConnectionRefusedError:
            raise DaemonUnavailable(
                f"nobody is listening on {path}: the daemon is not running (stale socket)",
                EX_UNAVAILABLE,
            ) from None
        line = json.dumps(payload).encode() + b"\n"
        if len(line) > MAX_REQUEST:
            raise ControlError(f"request too long ({len(line)} bytes, max {MAX_REQUEST})")
        sock.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise ControlError(f"the daemon closed {path} without a reply")
            data += chunk
            if len(data) > REPLY_LIMIT:
                raise ControlError("reply too long")
    except TimeoutError:
        raise ControlError(f"no reply from the daemon on {path} within {timeout:g} s") from None
    finally:
        sock.close()
    try:
        reply = json.loads(data)
    except ValueError as exc:
        raise ControlError(f"unreadable reply from the daemon: {exc}") from None
    if not isinstance(reply, dict):
        raise ControlError(f"unexpected reply: {reply!r}")
    return reply


def socket_path(args: argparse.Namespace) -> Path:
    """--socket, else $APPLIANCE_CONTROL_SOCKET, else `control.socket` of the configuration."""
    if args.socket is not None:
        return Path(args.socket)
    if os.environ.get(SOCKET_ENV):
        return Path(os.environ[SOCKET_ENV])
    from appliance.config import ControlConfig, load
    from appliance.errors import ConfigError

    try:
        return load(getattr(args, "config", None)).control.socket
    except ConfigError:
        # A half-configured kiosk still has a daemon worth asking: use the built-in default.
        return ControlConfig().socket


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", metavar="PATH",
                        help=f"control socket (default: ${SOCKET_ENV}, else control.socket)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="configuration file to read control.socket from")


def register(subparsers: Any) -> None:
    status = subparsers.add_parser("status", help="show the running daemon's state and LEDs")
    status.add_argument("--json", action="store_true", help="print the raw JSON reply")
    _common(status)
    status.set_defaults(func=cmd_status)
    press = subparsers.add_parser(
        "press", help="press a button of a daemon running with the mock pin factory")
    press.add_argument("button", choices=["mute", "leave"])
    press.add_argument("--hold", type=float, metavar="S",
                       help="hold it for S seconds (a long press when S >= its hold time)")
    _common(press)
    press.set_defaults(func=cmd_press)


def _call(args: argparse.Namespace, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
    return request(socket_path(args), payload, timeout)


def cmd_status(args: argparse.Namespace) -> int:
    try:
        reply = _call(args, {"cmd": "status"}, 5.0)
    except DaemonUnavailable as exc:
        print(f"appliance status: {exc}", file=sys.stderr)
        return exc.code
    except ControlError as exc:
        print(f"appliance status: {exc}", file=sys.stderr)
        return EX_FAILED
    if args.json:
        print(json.dumps(reply, indent=2, sort_keys=True))
        return EX_OK if reply.get("ok") else EX_FAILED
    if not reply.get("ok"):
        print(f"appliance status: {reply.get('error')}", file=sys.stderr)
        return EX_FAILED
    print(reply["state"].get("status", ""))
    for name, pattern in reply.get("leds", {}).items():
        print(f"  {name + ' LED':<12} {pattern.get('text', '')}")
    return EX_OK


def cmd_press(args: argparse.Namespace) -> int:
    payload: dict[str, Any] = {"cmd": "press", "button": args.button}
    timeout = 10.0
    if args.hold is not None:
        payload = {"cmd": "hold", "button": args.button, "seconds": args.hold}
        timeout += max(0.0, args.hold)
    try:
        reply = _call(args, payload, timeout)
    except DaemonUnavailable as exc:
        print(f"appliance press: {exc}", file=sys.stderr)
        return exc.code
    except ControlError as exc:
        print(f"appliance press: {exc}", file=sys.stderr)
        return EX_FAILED
    if not reply.get("ok"):
        print(f"appliance press: {reply.get('error')}", file=sys.stderr)
        return EX_FAILED
    kind = "long" if reply.get("long") else "short"
    print(f"{args.button}: {kind} press ({reply.get('seconds'):g} s)")
    return EX_OK
