"""Listening sockets handed in by a parent (`--listen-fd`): what is accepted, what is refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from appliance.listeners import ListenerError, inherited_listener, loopback_listener

ROOT = Path(__file__).resolve().parents[1]


def test_a_loopback_listener_is_bound_listening_and_inheritable() -> None:
    with loopback_listener() as sock:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert sock.get_inheritable()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # queued in the backlog: the port is reserved and answers


def test_an_inherited_listener_is_the_same_socket() -> None:
    with loopback_listener() as parent:
        child = inherited_listener(os.dup(parent.fileno()))
        with child:
            assert child.getsockname() == parent.getsockname()


def test_a_file_is_refused_by_name(tmp_path: Path) -> None:
    with (tmp_path / "f").open("w") as f:
        with pytest.raises(ListenerError) as info:
            inherited_listener(f.fileno(), "--control-fd")
        assert str(info.value).startswith(f"--control-fd {f.fileno()}: not an open socket")
        f.write("still open")  # refused, not closed: the descriptor is the caller's


def test_a_closed_descriptor_is_refused() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(ListenerError, match=f"--listen-fd {fd}: not an open socket"):
        inherited_listener(fd)


def test_a_udp_socket_is_refused_and_left_open() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        with pytest.raises(ListenerError, match="not a TCP socket"):
            inherited_listener(udp.fileno())
        assert udp.fileno() >= 0 and udp.getsockname()[1] > 0  # still the caller's


def test_a_bound_socket_that_does_not_listen_is_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(ListenerError, match="not listening"):
            inherited_listener(sock.fileno())


# The service only needs these to start; nothing here talks to a LiveKit server.
FLEET_ENV = {**os.environ, "LIVEKIT_URL": "ws://127.0.0.1:9", "LIVEKIT_API_KEY": "k",
             "LIVEKIT_API_SECRET": "s", "PYTHONUNBUFFERED": "1"}


def _spawn(args: list[str], *socks: socket.socket) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "appliance", *args], cwd=ROOT, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=FLEET_ENV,
                            pass_fds=tuple(s.fileno() for s in socks))


def test_fleet_serve_answers_only_on_the_sockets_it_was_handed(tmp_path: Path) -> None:
    """The demo's way: the parent binds, the service serves, and binds no port of its own."""
    with loopback_listener() as sock:
        proc = _spawn(["fleet", "--db", f"sqlite:///{tmp_path / 'fleet.db'}", "serve",
                       "--listen-fd", str(sock.fileno())], sock)
        port = sock.getsockname()[1]
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()  # blocks until the service is up
        assert f"fleet service on http://127.0.0.1:{port}" in banner, banner
        assert ":7890" not in banner
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            assert resp.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_fleet_serve_names_a_bad_descriptor(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "appliance", "fleet", "--db",
                          f"sqlite:///{tmp_path / 'fleet.db'}", "serve", "--listen-fd", "0"],
                         cwd=ROOT, env=FLEET_ENV, capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 64
    assert "appliance fleet serve: --listen-fd 0: not an open socket" in out.stderr


def test_devserver_serves_the_sockets_it_was_handed() -> None:
    with loopback_listener() as sock, loopback_listener() as control:
        proc = _spawn(["devserver", "--listen-fd", str(sock.fileno()),
                       "--control-fd", str(control.fileno())], sock, control)
        port, cport = sock.getsockname()[1], control.getsockname()[1]
    try:
        assert proc.stdout is not None
        banner = "".join(proc.stdout.readline() for _ in range(5))
        assert f"URL:      ws://127.0.0.1:{port}\n" in banner, banner
        assert f"control:  http://127.0.0.1:{cport}/control" in banner, banner
        with urllib.request.urlopen(f"http://127.0.0.1:{cport}/control/state",
                                    timeout=10) as resp:
            assert resp.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_devserver_names_a_bad_control_descriptor() -> None:
    out = subprocess.run([sys.executable, "-m", "appliance", "devserver", "--control-fd", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 64
    assert "appliance devserver: --control-fd 0: not an open socket" in out.stderr
