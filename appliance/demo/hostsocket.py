"""`python -m appliance.demo.hostsocket CMD...`: a console socket on the host's loopback, then CMD.

`scripts/demo` runs the demo inside a private network namespace, whose 127.0.0.1 a browser on
the host cannot reach. A socket keeps the namespace it was created in, so this binds one on the
host's 127.0.0.1 first (port 7890, the fleet service's default, or any free one), leaves it
open across exec and names it in APPLIANCE_DEMO_CONSOLE_FD / _PORT; the demo's fleet service
serves its console on it (`appliance fleet serve --listen-fd`).
"""

from __future__ import annotations

import os
import socket
import sys

from appliance.fleet.command import DEFAULT_PORT
from appliance.listeners import loopback_listener

FD_ENV, PORT_ENV = "APPLIANCE_DEMO_CONSOLE_FD", "APPLIANCE_DEMO_CONSOLE_PORT"


def listening_socket() -> socket.socket:
    try:
        return loopback_listener(DEFAULT_PORT)
    except OSError:  # taken (a real fleet service, another demo): any free port will do
        return loopback_listener()


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m appliance.demo.hostsocket COMMAND [ARGS...]", file=sys.stderr)
        return 64
    sock = listening_socket()
    os.environ[FD_ENV] = str(sock.fileno())
    os.environ[PORT_ENV] = str(sock.getsockname()[1])
    os.execvp(argv[0], argv)  # never returns; the socket stays open in CMD


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
