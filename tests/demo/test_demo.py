"""`appliance demo`: script mode and the live panel in a pseudo-terminal, processes cleaned up."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

HERE = Path(__file__).parent
DEMO = [sys.executable, "-m", "appliance", "demo"]


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _descendants(root: int) -> set[int]:
    """Every process below `root` by parent pid: this test's own tree, never another demo's."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the command name may hold spaces
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def run_script(path: Path, timeout: float, *extra: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*DEMO, "--script", str(path), *extra], capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    listed = re.search(r"^# processes: .*$", result.stdout, re.M)
    assert listed is not None, result.stdout + result.stderr
    pids = [int(p) for p in re.findall(r"\[(\d+)\]", listed.group(0))]
    assert pids, result.stdout + result.stderr
    assert not [p for p in pids if _alive(p)], "demo left processes running"
    return result


def test_bad_script_names_the_line(tmp_path: Path) -> None:
    script = tmp_path / "bad.script"
    script.write_text("press mute\nfrobnicate now\nexpect status\n")
    result = subprocess.run([*DEMO, "--script", str(script)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 65
    assert f"{script}:2: unknown step 'frobnicate'" in result.stderr
    assert f"{script}:3: `expect` takes 2..2 argument(s)" in result.stderr


def test_svg_needs_an_existing_folder(tmp_path: Path) -> None:
    result = subprocess.run([*DEMO, "--script", str(HERE / "smoke.script"), "--svg",
                             str(tmp_path / "nowhere" / "panel.svg")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 65
    assert f"no folder {tmp_path / 'nowhere'}" in result.stderr


def test_panel_needs_a_terminal() -> None:
    result = subprocess.run(DEMO, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 65
    assert "--script FILE" in result.stderr


@pytest.mark.e2e
def test_script_smoke_mute_leave_join() -> None:
    result = run_script(HERE / "smoke.script", timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "every expectation was met" in result.stdout
    assert re.search(r"led\.mute=on", result.stdout)
    assert re.search(r"status=left", result.stdout)
    assert re.search(r"privacy=on", result.stdout)
    # The console is announced with the demo operator's login ...
    assert re.search(r"^# console: http://127\.0\.0\.1:\d+/.* operator 'demo', password '\S+'$",
                     result.stdout, re.M)
    # ... and the kiosk joined with a token from the fleet service (the double issues none: it
    # knows no device keys): the registry counted an issue by the time the kiosk was in the room.
    joined = next(line for line in result.stdout.splitlines()
                  if line.startswith("t=") and "status=with_others" in line)
    tokens = re.search(r"fleet\.tokens=(\d+)", joined)
    assert tokens is not None and int(tokens.group(1)) >= 1, joined


@pytest.mark.e2e
def test_script_remote_identify_and_mute_then_the_panel_as_svg(tmp_path: Path) -> None:
    picture = tmp_path / "panel.svg"
    result = run_script(HERE / "remote.script", 240, "--svg", str(picture))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The operator's tool ran and answered, as with the `i` key.
    assert re.search(r"^# appliance ops identify kiosk-demo --seconds 5: done", result.stdout,
                     re.M), result.stdout[-3000:]
    assert re.search(r"^# appliance ops mute kiosk-demo: done", result.stdout, re.M), [
        line for line in result.stdout.splitlines() if "appliance ops" in line]
    assert f"# panel written to {picture}" in result.stdout
    password = re.search(r"password '(\S+)'$", result.stdout, re.M)
    assert password is not None
    text = picture.read_text()
    root = ET.fromstring(text)  # well-formed XML ...
    assert root.tag == "{http://www.w3.org/2000/svg}svg"  # ... and an SVG
    drawn = "".join(root.itertext()).replace("\xa0", " ")
    assert "room-kiosk appliance: demo" in drawn
    assert "password (new each run)" in drawn
    assert password.group(1) not in text


@pytest.mark.e2e
def test_script_fails_on_unmet_expectation(tmp_path: Path) -> None:
    script = tmp_path / "never.script"
    script.write_text("expect room connected within 60\nexpect intent left within 2\n")
    result = run_script(script, timeout=120)
    assert result.returncode == 1
    assert "FAILED line 2: expected intent=left within 2 s, still intent=in-room" in result.stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_script_server_down_70s_then_back() -> None:
    result = run_script(HERE / "outage.script", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"status=(reconnecting|server_unreachable)", result.stdout)


class Terminal:
    """The demo in a pseudo-terminal: read what it draws, type keys."""

    def __init__(self) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            os.environ["TERM"] = "xterm-256color"
            os.environ["COLUMNS"], os.environ["LINES"] = "160", "50"
            os.execv(sys.executable, DEMO)
        self.screen = ""

    def wait_for(self, pattern: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.screen):
            left = deadline - time.monotonic()
            assert left > 0, f"{pattern!r} not drawn within {timeout} s; last screen:\n" + (
                self.screen[-2000:])
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536).decode(errors="replace")
                except OSError:
                    chunk = ""
                self.screen = (self.screen + chunk)[-200_000:]

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def exit_status(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with_status = os.waitpid(self.pid, os.WNOHANG)
            if with_status[0] == self.pid:
                return os.waitstatus_to_exitcode(with_status[1])
            select.select([self.fd], [], [], 0.2)  # drain while waiting
            with contextlib.suppress(OSError):
                os.read(self.fd, 65536)
        raise AssertionError("demo did not exit")


@pytest.mark.e2e
def test_panel_in_a_terminal_mute_then_quit() -> None:
    term = Terminal()
    try:
        term.wait_for(r"room-kiosk appliance: demo", 60)
        # Drawn from the start: the start-up, then the kiosk coming up and joining.
        term.wait_for(r"starting the LiveKit test double", 30)
        term.wait_for(r"kiosk answers: room", 90)
        term.wait_for(r"with_others", 90)
        term.wait_for(r"ready: press a key below", 60)  # keys before that are ignored
        term.wait_for(r"http://127\.0\.0\.1:\d+/.*operator 'demo', password", 30)  # console
        term.wait_for(r"in-room, [1-9]\d* token\(s\) issued", 30)  # the fleet row
        term.wait_for(r"led\.mute: on -> off", 30)  # the room hears the kiosk (proven flowing)
        term.type("m")
        term.wait_for(r"pressed mute", 15)
        term.wait_for(r"led\.mute: off -> on|mute: published -> ", 15)
        term.type("M")  # a real hold: camera privacy, not a second mute
        term.wait_for(r"held mute for [\d.]+ s \(long press\)", 30)
        term.wait_for(r"privacy: off -> on", 15)
        tree = _descendants(term.pid)  # the double and the kiosk (and what they started)
        assert len(tree) >= 2, tree
        term.type("q")
        assert term.exit_status(20) == 0
    finally:
        if _alive(term.pid):
            os.kill(term.pid, 9)
            os.waitpid(term.pid, 0)
        os.close(term.fd)
    assert [pid for pid in tree if _alive(pid)] == [], "demo left processes running"
