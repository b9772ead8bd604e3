"""The demo's panel and meter without processes: holds, the retry countdown, rows, silence."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from appliance.demo.panel import KEY_HELP, TITLE, fit, render, svg
from appliance.demo.runner import KEYS, Actions
from appliance.demo.script import REMOTE_ACTIONS, VERBS, parse
from appliance.demo.view import LevelMeter, Observer
from appliance.errors import ConfigError
from appliance.indicators import as_json, indicators
from appliance.remote.health import health_attributes, static_attributes
from appliance.session.model import Fault, RoomState, State


def reply(state: State, next_retry_in: float | None = None) -> dict[str, Any]:
    """What the kiosk's control socket answers to `status`."""
    snapshot = state.as_dict()
    snapshot["next_retry_in"] = next_retry_in
    return {"ok": True, "state": snapshot, "leds": as_json(indicators(state))}


WAITING = State(identity="kiosk-demo", room_name="demo", room=RoomState.DISCONNECTED,
                fault=Fault.SERVER_UNREACHABLE, attempt=3, retry_pending=True,
                next_retry_at=50.0)


def silent() -> float:
    return -math.inf


def text_of(renderable: Any, height: int = 60) -> list[str]:
    console = Console(width=120, height=height, record=True, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


class FakeWorld:
    """Records what the demo asks of the kiosk; a hold without seconds is a long press."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float | None]] = []

    async def press(self, button: str) -> None:
        self.calls.append(("press", button, None))

    async def hold(self, button: str, seconds: float | None = None) -> tuple[float, bool]:
        self.calls.append(("hold", button, seconds))
        return (seconds if seconds is not None else 2.2), seconds is None or seconds >= 2.0


@pytest.mark.parametrize(("key", "button"), [("M", "mute"), ("L", "leave")])
async def test_capital_keys_hold_the_button_past_its_hold_time(key: str, button: str) -> None:
    world = FakeWorld()
    verb, args = KEYS[key]
    message = await Actions(world).perform(verb, args)  # type: ignore[arg-type]
    assert world.calls == [("hold", button, None)]  # the kiosk picks its own hold time
    assert message == f"held {button} for 2.2 s (long press)"


async def test_lower_case_keys_press_briefly() -> None:
    world = FakeWorld()
    for key in ("m", "l"):
        verb, args = KEYS[key]
        await Actions(world).perform(verb, args)  # type: ignore[arg-type]
    assert world.calls == [("press", "mute", None), ("press", "leave", None)]


def test_script_hold_takes_optional_seconds() -> None:
    steps = parse("hold mute\nhold leave 6\n")
    assert [s.args for s in steps] == [("mute",), ("leave", "6")]
    with pytest.raises(ConfigError, match="`hold` needs seconds, found 'long'"):
        parse("hold mute long\n")


def test_script_remote_names_an_ops_action() -> None:
    steps = parse("remote identify\nremote identify 5\nremote mute\nremote rejoin\n")
    assert [s.args for s in steps] == [("identify",), ("identify", "5"), ("mute",), ("rejoin",)]
    with pytest.raises(ConfigError) as raised:
        parse("remote unmute\nremote restart\nremote mute 5\nremote identify soon\nremote\n")
    assert raised.value.problems == [
        "<script>:1: unknown remote action 'unmute'; expected one of identify, mute, "
        "camera-off, rejoin, leave, remove, status",
        "<script>:2: unknown remote action 'restart'; expected one of identify, mute, "
        "camera-off, rejoin, leave, remove, status",
        "<script>:3: only `remote identify` takes seconds",
        "<script>:4: `remote` needs seconds, found 'soon'",
        "<script>:5: `remote` takes 1..2 argument(s)",
    ]


def test_the_key_i_and_the_remote_step_are_one_action() -> None:
    assert KEYS["i"] == ("remote", ("identify",))
    assert parse("remote identify\n")[0].args == KEYS["i"][1]


def test_the_panel_as_svg_is_an_svg_with_the_panel_in_it() -> None:
    in_room = State(identity="kiosk-demo", room_name="demo", room=RoomState.CONNECTED)
    view = Observer("kiosk-demo", silent).fold(reply(in_room), None)
    view.console = "http://127.0.0.1:7890/  operator 'demo', password (new each run)"
    root = ET.fromstring(svg(view, "pressed mute"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    drawn = "".join(root.itertext()).replace("\xa0", " ")
    for shown in (TITLE, "LEDs", "health attributes", "console", "password (new each run)",
                  "pressed mute"):
        assert shown in drawn, shown
    width = float(root.attrib["viewBox"].split()[2])
    assert 1000 < width < 1600  # about 110 columns: a picture a README can show


def test_the_panel_counts_down_to_the_next_attempt() -> None:
    view = Observer("kiosk-demo", silent).fold(reply(WAITING, next_retry_in=12.4), None)
    assert view.next_attempt == "in 12 s (attempt 4)"
    lines = "\n".join(text_of(render(view)))
    assert "next attempt  in 12 s (attempt 4)" in lines
    in_room = State(identity="kiosk-demo", room_name="demo", room=RoomState.CONNECTED)
    view = Observer("kiosk-demo", silent).fold(reply(in_room), None)
    assert view.next_attempt == ""
    assert "(none scheduled)" in "\n".join(text_of(render(view)))


def test_the_panel_shows_the_start_before_the_kiosk_answers() -> None:
    observer = Observer("kiosk-demo", silent)
    view = observer.fold(None, None)
    text = "\n".join(text_of(render(view, "starting the kiosk...")))
    assert "kiosk not answering yet" in text and "starting the kiosk..." in text
    connecting = State(identity="kiosk-demo", room_name="demo", room=RoomState.CONNECTING)
    view = observer.fold(reply(connecting), None)
    assert view.fields["room"] == "connecting"
    assert [t for _, t in view.transitions] == ["kiosk answers: room connecting, status "
                                                "starting"]  # the blue first-join blink


def test_transitions_fill_the_free_rows_of_the_terminal() -> None:
    observer = Observer("kiosk-demo", silent)
    for n in range(30):
        fault = Fault.SERVER_UNREACHABLE if n % 2 else Fault.NO_NETWORK
        view = observer.fold(reply(State(identity="kiosk-demo", room_name="demo",
                                         fault=fault)), None)
    assert len(view.transitions) == 1 + 2 * 29  # `kiosk answers`, then fault and status
    newest = view.transitions[-1][1]
    for height in (40, 60):
        console = Console(width=120, height=height, record=True, color_system=None)
        console.print(fit(console, view, "ready"))
        lines = console.export_text().splitlines()
        assert len(lines) == height  # every row used, none beyond the screen
        shown = [line for line in lines if " s  fault: " in line or " s  status: " in line]
        assert len(shown) == min(len(view.transitions), height - 29)  # 29 rows of the rest
        assert newest in shown[-1]
    few = Observer("kiosk-demo", silent).fold(reply(WAITING), None)
    console = Console(width=120, height=50, record=True, color_system=None)
    console.print(fit(console, few, "ready"))
    assert len(console.export_text().splitlines()) == 50  # padded: the panel fills the screen


def test_the_panel_shows_the_health_attributes_the_double_holds() -> None:
    in_room = State(identity="kiosk-demo", room_name="demo", room=RoomState.CONNECTED,
                    mic_mute_wanted=True)
    at_double = {**static_attributes("9.9.9", "default"), **health_attributes(in_room),
                 "colour": "teal"}  # not a kiosk.* attribute: not health
    server = {"rooms": {"demo": {"participants": {
        "kiosk-demo": {"attributes": at_double, "tracks": []},
        "far-end": {"attributes": {"kiosk.state": "in-room"}, "tracks": []}}}}}
    observer = Observer("kiosk-demo", silent)
    view = observer.fold(reply(in_room), server)
    assert view.health == {k: v for k, v in at_double.items() if k.startswith("kiosk.")}
    assert (view.fields["health.state"], view.fields["health.mic"]) == ("in-room", "muted")
    text = "\n".join(text_of(render(view)))
    assert "health attributes, as the room sees them" in text
    assert re.search(r"state +in-room +fault +none +mic +muted", text)
    assert re.search(r"version +9\.9\.9", text) and "teal" not in text
    # Out of the room the double holds no attributes for the kiosk: the panel says so.
    view = observer.fold(reply(WAITING), {"rooms": {}})
    assert view.health == {} and view.fields["health.mic"] == "-"
    assert "(none at the server: the kiosk is not in the room)" in "\n".join(
        text_of(render(view)))


def test_the_speaker_meter_falls_silent_when_audio_stops() -> None:
    now = [100.0]
    meter = LevelMeter(clock=lambda: now[0])
    assert meter.read() == -math.inf  # nothing played yet
    t = np.arange(4800) / 48000
    meter.feed((np.sin(2 * math.pi * 1000 * t) * 0.3 * 32767).astype(np.int16))
    assert meter.read() == pytest.approx(20 * math.log10(0.3 / math.sqrt(2)), abs=0.2)
    now[0] += LevelMeter.QUIET_AFTER + 0.1  # the kiosk left the room: nothing more arrives
    assert meter.read() == -math.inf
    meter.feed(np.zeros(480, dtype=np.int16))
    assert meter.read() == -math.inf  # digital silence is silence too


def test_room_transitions_come_from_the_kiosk_log_so_none_is_missed() -> None:
    lines = [
        "2026-11-29 17:58:22,155 INFO appliance.control.server: control socket listening",
        "2026-11-29 17:58:22,169 INFO appliance.session.runner: room: disconnected -> connecting",
        "2026-11-29 17:58:22,282 INFO appliance.session.runner: room: connecting -> connected",
        "2026-11-29 17:58:22,286 INFO appliance.session.runner: camera: acquired -> publishing",
    ]
    handed = [lines, []]
    observer = Observer("kiosk-demo", silent, kiosk_log=lambda: handed.pop(0))
    # Polled only once the kiosk was already in: the log still shows the connecting phase.
    view = observer.fold(reply(State(identity="kiosk-demo", room_name="demo",
                                     room=RoomState.CONNECTED)), None)
    texts = [t for _, t in view.transitions]
    assert texts[:2] == ["room: disconnected -> connecting", "room: connecting -> connected"]
    first, second = (at for at, _ in view.transitions[:2])
    assert second - first == pytest.approx(0.113, abs=1e-3)
    view = observer.fold(reply(State(identity="kiosk-demo", room_name="demo",
                                     room=RoomState.DISCONNECTED)), None)
    assert not [t for _, t in view.transitions if t.startswith("room: connected")]


def test_readme_shows_the_smoke_script_as_it_is() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    example = readme.split("Example (`tests/demo/smoke.script`):\n\n```\n", 1)[1].split("```", 1)[0]
    assert example == (root / "tests" / "demo" / "smoke.script").read_text()


def test_every_script_step_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    steps = readme.split("\nSteps: ", 1)[1].split("\n\n", 1)[0]
    for verb in VERBS:
        assert f"`{verb} " in steps, verb
    for action in REMOTE_ACTIONS:
        assert f"`{action}" in steps, action


def test_every_key_is_in_the_help_line_and_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("| key | does |", 1)[1].split("\n\n", 1)[0]
    for key in KEYS:
        assert f"[{key}]" in KEY_HELP, key
        assert re.search(rf"^\| `{key}`( / `\w`)? \||^\| `\w` / `{key}` \|", table, re.M), key
