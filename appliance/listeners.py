"""Listening sockets bound by one process and served by another (`--listen-fd`)."""

# A server told "listen on port N" after someone else picked a free N races every process on the
# machine for it: an outgoing connection's ephemeral port can take N in between. So the process
# that picks the port binds it, keeps it bound and hands the socket itself to the server, as
# systemd's socket activation does.

from __future__ import annotations

import socket

from appliance.errors import ApplianceError

BACKLOG = 128


class ListenerError(ApplianceError, ValueError):
    """An inherited file descriptor is not a listening TCP socket."""


def loopback_listener(port: int = 0) -> socket.socket:
    """A TCP socket listening on 127.0.0.1:`port` (0: a free port), inheritable by children."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(BACKLOG)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def inherited_listener(fd: int, option: str = "--listen-fd") -> socket.socket:
    """The listening TCP socket open on `fd`, or ListenerError naming `option` and the fault."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ListenerError(f"{option} {fd}: not an open socket ({exc.strerror})") from None
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    except OSError as exc:
        fault = f"not usable ({exc.strerror})"
    else:
        if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
            fault = "not a TCP socket"
        elif not listening:
            fault = "the socket is not listening"
        else:
            return sock
    sock.detach()  # not ours to close: the caller named a descriptor it owns
    raise ListenerError(f"{option} {fd}: {fault}")
