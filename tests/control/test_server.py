"""Control socket: protocol, malformed input, limits, permissions, mock presses, CLI client."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from gpio_support import Recorder
from gpiozero.pins.mock import MockFactory

from appliance.control import MAX_REQUEST, ControlError
from appliance.control import command as cli
from appliance.control.server import ControlServer
from appliance.devices.gpio import GpioFrontEnd
from appliance.devices.profiles import load_profile
from appliance.session.model import ButtonName, Fault, RoomState, State, TrackState

STATE = State(identity="kiosk-1", room_name="lobby", room=RoomState.CONNECTED,
              remotes=frozenset({"alice"}), microphone=TrackState.PUBLISHED, mic_muted=True)


@pytest.fixture
def sockdir() -> Iterator[Path]:
    # Short and world-traversable: unix socket paths are limited to ~107 bytes, and the
    # permission test needs the socket's own mode to be what stops another user.
    d = Path(tempfile.mkdtemp(prefix="ctl", dir="/tmp"))
    d.chmod(0o755)
    yield d
    for p in sorted(d.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    d.rmdir()


@pytest.fixture
def gpio(factory: MockFactory, recorder: Recorder) -> Iterator[GpioFrontEnd]:
    g = GpioFrontEnd(load_profile("default"), post=recorder, factory=factory, bounce_time=0.02,
                     holds={ButtonName.MUTE: 0.2, ButtonName.LEAVE: 0.3}, lamp_test=0)
    yield g
    g.close()


@pytest.fixture
async def server(sockdir: Path, gpio: GpioFrontEnd) -> AsyncIterator[ControlServer]:
    async with ControlServer(sockdir / "run" / "control.sock", state=lambda: STATE,
                             gpio=gpio) as srv:
        yield srv


async def talk(path: Path, *lines: bytes) -> list[dict[str, object]]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        replies = []
        for line in lines:
            writer.write(line)
            await writer.drain()
            replies.append(json.loads(await asyncio.wait_for(reader.readline(), 10)))
        return replies
    finally:
        writer.close()


async def test_status_returns_state_and_led_patterns(server: ControlServer) -> None:
    [reply] = await talk(server.path, b'{"cmd": "status", "id": 7}\n')
    assert reply["ok"] is True and reply["id"] == 7
    state = reply["state"]
    assert isinstance(state, dict) and state["room"] == "connected" and state["mic_muted"]
    leds = reply["leds"]
    assert isinstance(leds, dict)
    assert leds["mute"]["shape"] == "on" and leds["status"]["shape"] == "on"
    assert reply["gpio"]["mock"] is True  # type: ignore[index]


@pytest.mark.parametrize(("line", "error"), [
    (b"not json\n", "malformed JSON"),
    (b"\xff\xfe\n", "malformed JSON"),
    (b"[1, 2]\n", "expected a JSON object"),
    (b'{"cmd": "reboot"}\n', "unknown cmd"),
    (b'{"nocmd": 1}\n', "unknown cmd"),
    (b'{"cmd": "press", "button": "eject"}\n', "unknown button"),
    (b'{"cmd": "hold", "button": "mute", "seconds": -1}\n', "`seconds`"),
    (b'{"cmd": "hold", "button": "mute", "seconds": "long"}\n', "`seconds`"),
    (b'{"cmd": "hold", "button": "mute", "seconds": true}\n', "`seconds`"),
])
async def test_malformed_requests_get_an_error_and_the_connection_lives_on(
        server: ControlServer, line: bytes, error: str) -> None:
    bad, good = await talk(server.path, line, b'{"cmd": "status"}\n')
    assert bad["ok"] is False and error in str(bad["error"])
    assert good["ok"] is True


async def test_an_oversized_request_is_refused_and_the_server_survives(
        server: ControlServer) -> None:
    reader, writer = await asyncio.open_unix_connection(str(server.path))
    writer.write(b'{"cmd": "status", "pad": "' + b"x" * (MAX_REQUEST * 4) + b'"}\n')
    await writer.drain()
    reply = json.loads(await asyncio.wait_for(reader.readline(), 10))
    assert reply["ok"] is False and "too long" in reply["error"]
    assert await asyncio.wait_for(reader.read(), 10) == b""  # hung up
    writer.close()
    [again] = await talk(server.path, b'{"cmd":"status"}\n')
    assert again["ok"] is True


async def test_press_drives_the_mock_pin_and_posts_one_short_press(
        server: ControlServer, recorder: Recorder, factory: MockFactory) -> None:
    [reply] = await talk(server.path, b'{"cmd": "press", "button": "mute"}\n')
    assert reply["ok"] is True and reply["long"] is False and reply["posted"] is True
    assert [(e.button, e.long) for e in recorder.events] == [(ButtonName.MUTE, False)]
    states = [s.state for s in factory.pin(17).states]
    assert states[-2:] == [False, True]  # the pin went low (pressed) and back high


async def test_hold_makes_a_long_press(server: ControlServer, recorder: Recorder) -> None:
    [reply] = await talk(server.path,
                         b'{"cmd": "hold", "button": "leave", "seconds": 0.4}\n')
    assert reply["ok"] is True and reply["long"] is True
    assert [(e.button, e.long) for e in recorder.events] == [(ButtonName.LEAVE, True)]


async def test_hold_without_seconds_outlasts_the_configured_hold(
        server: ControlServer, recorder: Recorder) -> None:
    [reply] = await talk(server.path, b'{"cmd": "hold", "button": "mute"}\n')
    assert reply["ok"] is True and reply["long"] is True
    assert reply["seconds"] > 0.2  # the fixture's mute hold
    assert [(e.button, e.long) for e in recorder.events] == [(ButtonName.MUTE, True)]


async def test_holds_back_to_back_are_two_long_presses(
        server: ControlServer, recorder: Recorder) -> None:
    # The reply waits for the release to settle: a hold sent right after it is a new press,
    # not chatter of the last one.
    first, second = await talk(server.path, b'{"cmd": "hold", "button": "mute"}\n',
                               b'{"cmd": "hold", "button": "mute"}\n')
    assert first["posted"] is True and second["posted"] is True
    assert [(e.button, e.long) for e in recorder.events] == [(ButtonName.MUTE, True)] * 2


async def test_status_says_when_the_next_attempt_is_due(sockdir: Path) -> None:
    waiting = State(identity="kiosk-1", room_name="lobby", room=RoomState.DISCONNECTED,
                    fault=Fault.SERVER_UNREACHABLE, attempt=3, retry_pending=True,
                    next_retry_at=112.0)
    async with ControlServer(sockdir / "r.sock", state=lambda: waiting,
                             clock=lambda: 100.0) as srv:
        [reply] = await talk(srv.path, b'{"cmd": "status"}\n')
    state = reply["state"]
    assert isinstance(state, dict)
    assert state["next_retry_in"] == 12.0
    assert "attempt 3, next in 12 s" in state["status"]
    async with ControlServer(sockdir / "c.sock", state=lambda: STATE) as srv:
        [reply] = await talk(srv.path, b'{"cmd": "status"}\n')
    assert reply["state"]["next_retry_in"] is None  # type: ignore[index]


async def test_press_without_the_mock_is_refused(sockdir: Path) -> None:
    async with ControlServer(sockdir / "c.sock", state=lambda: STATE) as srv:
        [reply] = await talk(srv.path, b'{"cmd": "press", "button": "mute"}\n')
    assert reply["ok"] is False and "mock pin factory" in str(reply["error"])


async def test_socket_and_directory_permissions(server: ControlServer) -> None:
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o660
    assert stat.S_ISSOCK(server.path.stat().st_mode)
    assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o750
    assert [p.name for p in server.path.parent.iterdir()] == ["control.sock"]


async def test_close_removes_the_socket_and_is_idempotent(sockdir: Path) -> None:
    srv = ControlServer(sockdir / "c.sock", state=lambda: STATE)
    await srv.start()
    await srv.aclose()
    await srv.aclose()
    assert not srv.path.exists()


async def test_stale_socket_is_replaced_and_a_live_one_is_not(sockdir: Path) -> None:
    import socket

    path = sockdir / "c.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: a daemon that died
    async with ControlServer(path, state=lambda: STATE) as srv:
        with pytest.raises(ControlError, match="in use"):
            await ControlServer(path, state=lambda: STATE).start()
        [reply] = await talk(srv.path, b'{"cmd":"status"}\n')
        assert reply["ok"] is True
    path.write_text("not a socket")
    with pytest.raises(ControlError, match="not a socket"):
        await ControlServer(path, state=lambda: STATE).start()


# -- the CLI client -----------------------------------------------------------------------------

def args(path: Path, **kw: object) -> argparse.Namespace:
    return argparse.Namespace(socket=str(path), config=None, json=False, **kw)


async def test_cli_status_and_press(server: ControlServer, recorder: Recorder,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert await asyncio.to_thread(cli.cmd_status, args(server.path)) == 0
    out = capsys.readouterr().out
    assert "in room lobby with 1 other" in out and "mute LED" in out
    as_json = args(server.path)
    as_json.json = True
    assert await asyncio.to_thread(cli.cmd_status, as_json) == 0
    assert json.loads(capsys.readouterr().out)["state"]["identity"] == "kiosk-1"
    assert await asyncio.to_thread(
        cli.cmd_press, args(server.path, button="mute", hold=None)) == 0
    assert "mute: short press" in capsys.readouterr().out
    assert recorder.events and recorder.events[-1].button is ButtonName.MUTE


def test_cli_when_the_daemon_is_not_running(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.cmd_status(args(tmp_path / "missing.sock")) == cli.EX_UNAVAILABLE
    assert "daemon is not running" in capsys.readouterr().err
    assert cli.cmd_press(args(tmp_path / "missing.sock", button="leave",
                              hold=1.0)) == cli.EX_UNAVAILABLE


def test_cli_with_a_stale_socket(sockdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sockdir / "s.sock"))
    stale.close()
    assert cli.cmd_status(args(sockdir / "s.sock")) == cli.EX_UNAVAILABLE
    assert "stale socket" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_another_user_is_refused_by_the_socket_mode(sockdir: Path) -> None:
    from appliance.control.server import _bind

    path = sockdir / "c.sock"
    listener = _bind(path)  # what the server binds: mode 0660, owner root
    try:
        pid = os.fork()
        if pid == 0:  # child: become nobody and try the CLI's request
            code = 99
            try:
                os.setgid(65534)
                os.setuid(65534)
                cli.request(path, {"cmd": "status"}, timeout=2)
            except cli.DaemonUnavailable as exc:
                code = exc.code
            except BaseException:
                code = 98
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == cli.EX_NOPERM
    finally:
        listener.close()


def test_subcommands_parse() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    a = parser.parse_args(["status", "--json", "--socket", "/tmp/x.sock"])
    assert a.func is cli.cmd_status and a.json and a.socket == "/tmp/x.sock"
    b = parser.parse_args(["press", "leave", "--hold", "5.5"])
    assert b.func is cli.cmd_press and b.button == "leave" and b.hold == 5.5
    with pytest.raises(SystemExit):
        parser.parse_args(["press", "eject"])


def test_socket_path_falls_back_to_env_then_default(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    ns = argparse.Namespace(socket=None, config=tmp_path / "missing.toml")
    monkeypatch.setenv(cli.SOCKET_ENV, "/run/x/y.sock")
    assert cli.socket_path(ns) == Path("/run/x/y.sock")
    monkeypatch.delenv(cli.SOCKET_ENV)
    assert cli.socket_path(ns) == Path("/run/appliance/control.sock")  # config unreadable


async def test_simulate_camera_only_with_a_hook(sockdir: Path, gpio: GpioFrontEnd) -> None:
    calls: list[bool] = []
    async with ControlServer(sockdir / "sim.sock", state=lambda: STATE, gpio=gpio,
                             simulate_camera=calls.append) as srv:
        unplug, replug, bad_device, bad_value = await talk(
            srv.path,
            b'{"cmd": "simulate", "device": "camera", "present": false}\n',
            b'{"cmd": "simulate", "device": "camera", "present": true}\n',
            b'{"cmd": "simulate", "device": "toaster", "present": true}\n',
            b'{"cmd": "simulate", "device": "camera", "present": "yes"}\n',
        )
    assert unplug == {"ok": True, "device": "camera", "present": False}
    assert replug["ok"] is True and calls == [False, True]
    assert bad_device["ok"] is False and "`device`" in str(bad_device["error"])
    assert bad_value["ok"] is False and "`present`" in str(bad_value["error"])
    async with ControlServer(sockdir / "nosim.sock", state=lambda: STATE, gpio=gpio) as srv:
        [refused] = await talk(srv.path, b'{"cmd": "simulate", "device": "camera", '
                                         b'"present": false}\n')
    assert refused["ok"] is False and "test camera" in str(refused["error"])
