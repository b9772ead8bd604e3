"""Buttons and LEDs end to end: mock GPIO pins -> the session -> the real SDK -> the double."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from session_e2e_helpers import (
    IDENTITY,
    ROOM,
    e2e_config,
    kiosk_of,
    on_air,
    running_session,
    wait_state,
)

from appliance.config import Config, ControlConfig, GpioConfig
from appliance.control import command as cli
from appliance.devices.gpio import GpioFrontEnd
from appliance.indicators import (
    OFF,
    QUALITY_PATTERNS,
    STATUS_PATTERNS,
    LedName,
    StatusKind,
    status_kind,
)
from appliance.session.model import ButtonName, Fault, Intent, Quality, RoomState
from appliance.session.runner import Runner

pytestmark = pytest.mark.e2e

MUTE_LED, CAMERA_LED = 23, 24  # hardware/default.toml
MUTE_HOLD, LEAVE_HOLD = 0.5, 1.0


@pytest.fixture
def sock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("ctl") / "c.sock"


def cfg_for(devserver: Any, sock: Path) -> Config:
    return dataclasses.replace(
        e2e_config(devserver),
        gpio=GpioConfig(profile="default", pin_factory="mock", mute_hold=MUTE_HOLD,
                        leave_hold=LEAVE_HOLD, bounce_time=0.02),
        control=ControlConfig(socket=sock))


def gpio_of(runner: Runner) -> GpioFrontEnd:
    gpio = kiosk_of(runner).gpio
    assert gpio is not None and gpio.mock
    return gpio


async def click(runner: Runner, button: ButtonName, seconds: float = 0.05) -> None:
    """Press a mock button for `seconds` through the daemon's control socket (the same pin
    driving the demo uses); returns once its event is on the runner's queue."""
    reply = await asyncio.to_thread(
        cli.request, runner.cfg.control.socket,
        {"cmd": "hold", "button": button.value, "seconds": seconds}, seconds + 10.0)
    assert reply["ok"] and reply["posted"], reply


def led(gpio: GpioFrontEnd, pin: int) -> float:
    return float(gpio.factory.pin(pin).state)


def audio_muted_at_double(devserver: Any) -> bool | None:
    p = devserver.participant(ROOM, IDENTITY)
    tracks = [t for t in (p.tracks.values() if p else []) if t.kind == "audio"]
    return tracks[0].muted if tracks else None


async def test_mute_button_mutes_at_the_double_and_lights_the_mute_led(
        devserver: Any, sock: Path) -> None:
    async with running_session(cfg_for(devserver, sock), devices=True) as runner:
        await wait_state(runner, on_air)
        gpio = gpio_of(runner)
        assert led(gpio, MUTE_LED) == 0.0  # live microphone: mute LED dark
        await click(runner, ButtonName.MUTE)
        await devserver.wait_for(lambda: audio_muted_at_double(devserver) is True, timeout=15,
                                 what="the kiosk's microphone muted at the double")
        await wait_state(runner, lambda s: s.mic_muted)
        assert led(gpio, MUTE_LED) == 1.0
        await click(runner, ButtonName.MUTE)
        await devserver.wait_for(lambda: audio_muted_at_double(devserver) is False, timeout=15,
                                 what="the kiosk's microphone unmuted at the double")
        await wait_state(runner, lambda s: s.mic_live)
        assert led(gpio, MUTE_LED) == 0.0


async def test_server_mute_is_shown_and_a_remote_unmute_is_refused(
        devserver: Any, sock: Path) -> None:
    async with running_session(cfg_for(devserver, sock), devices=True) as runner:
        await wait_state(runner, on_air)
        gpio = gpio_of(runner)
        assert await devserver.faults.mute(IDENTITY, "audio", True) == 1
        await wait_state(runner, lambda s: s.mic_muted)
        assert led(gpio, MUTE_LED) == 1.0
        await devserver.faults.mute(IDENTITY, "audio", False)
        # Only a person at the kiosk may unmute: the kiosk ends up muted at the double again.
        await devserver.wait_for(lambda: audio_muted_at_double(devserver) is True, timeout=15,
                                 what="the kiosk refusing the remote unmute")
        await wait_state(runner, lambda s: s.mic_muted and s.mic_mute_wanted)
        assert led(gpio, MUTE_LED) == 1.0


async def test_leave_press_leaves_and_stays_out_then_join_press_returns(
        devserver: Any, sock: Path) -> None:
    async with running_session(cfg_for(devserver, sock), devices=True) as runner:
        await wait_state(runner, on_air)
        gpio = gpio_of(runner)
        await click(runner, ButtonName.LEAVE)
        await devserver.wait_for(lambda: devserver.participant(ROOM, IDENTITY) is None,
                                 timeout=15, what="the kiosk gone from the room")
        s = await wait_state(runner, lambda s: s.room is RoomState.DISCONNECTED)
        assert s.intent is Intent.LEFT
        assert gpio.leds.shown[LedName.STATUS] == STATUS_PATTERNS[StatusKind.LEFT]
        assert gpio.leds.shown[LedName.CAMERA] == OFF
        with pytest.raises(TimeoutError):  # stays out: no reconnect (bounded look, 5 s)
            await devserver.wait_for(lambda: devserver.participant(ROOM, IDENTITY) is not None,
                                     timeout=5, what="an unwanted reconnect")
        await click(runner, ButtonName.LEAVE)
        await wait_state(runner, on_air, within=30)
        assert devserver.participant(ROOM, IDENTITY) is not None


async def test_long_mute_press_is_camera_privacy(devserver: Any, sock: Path) -> None:
    async with running_session(cfg_for(devserver, sock), devices=True) as runner:
        await wait_state(runner, on_air)
        gpio = gpio_of(runner)
        assert led(gpio, CAMERA_LED) == 1.0
        await click(runner, ButtonName.MUTE, seconds=MUTE_HOLD + 0.3)

        def video_tracks() -> int:
            p = devserver.participant(ROOM, IDENTITY)
            return sum(t.kind == "video" for t in p.tracks.values()) if p else -1

        await devserver.wait_for(lambda: video_tracks() == 0, timeout=15,
                                 what="the camera track gone at the double")
        await wait_state(runner, lambda s: s.camera_privacy and not s.video_live)
        assert led(gpio, CAMERA_LED) == 0.0


async def test_press_through_the_control_socket(devserver: Any, sock: Path) -> None:
    async with running_session(cfg_for(devserver, sock), devices=True) as runner:
        await wait_state(runner, on_air)
        status = await asyncio.to_thread(cli.request, sock, {"cmd": "status"})
        assert status["ok"] and status["state"]["room"] == "connected"
        reply = await asyncio.to_thread(cli.request, sock,
                                        {"cmd": "press", "button": "mute"}, 15.0)
        assert reply["ok"] and reply["posted"], reply
        await devserver.wait_for(lambda: audio_muted_at_double(devserver) is True, timeout=15,
                                 what="the kiosk's microphone muted at the double")


async def test_quality_injections_drive_the_quality_led(devserver: Any, sock: Path) -> None:
    async with running_session(cfg_for(devserver, sock), devices=True) as runner:
        await wait_state(runner, on_air)
        gpio = gpio_of(runner)
        rgb = {"POOR": (1.0, 0.5, 0.0), "EXCELLENT": (0.0, 1.0, 0.0)}
        for name in ("POOR", "LOST", "GOOD", "EXCELLENT"):
            quality = Quality[name]
            await devserver.faults.connection_quality(IDENTITY, name)
            await wait_state(runner, lambda s, q=quality: s.quality is q)  # type: ignore[misc]
            assert gpio.leds.shown[LedName.QUALITY] == QUALITY_PATTERNS[quality]
            if name in rgb:  # steady patterns: the RGB pins hold the colour
                assert tuple(led(gpio, p) for p in (5, 6, 13)) == rgb[name]


@pytest.mark.slow
async def test_outage_shows_reconnecting_then_the_fault_then_the_room(
        devserver: Any, sock: Path) -> None:
    async with running_session(cfg_for(devserver, sock), devices=True) as runner:
        await wait_state(runner, on_air)
        gpio = gpio_of(runner)
        shown: list[StatusKind] = []
        runner.add_listener(lambda s: shown.append(status_kind(s)))
        # The double goes "down": signalling cut, every new connection (resume or join) refused.
        devserver.faults.reject(503, seconds=28)
        assert await devserver.faults.close_sockets(IDENTITY) == 1
        await wait_state(runner, lambda s: s.room is RoomState.RECONNECTING, within=15)
        assert gpio.leds.shown[LedName.STATUS] == STATUS_PATTERNS[StatusKind.RECONNECTING]
        await wait_state(runner, lambda s: s.fault is Fault.SERVER_UNREACHABLE, within=40)
        assert gpio.leds.shown[LedName.STATUS] == STATUS_PATTERNS[StatusKind.SERVER_UNREACHABLE]
        await wait_state(runner, on_air, within=60)
        assert gpio.leds.shown[LedName.STATUS] == STATUS_PATTERNS[StatusKind.ALONE]
        first_fault = shown.index(StatusKind.SERVER_UNREACHABLE)
        assert StatusKind.RECONNECTING in shown[:first_fault], shown
        assert shown[-1] is StatusKind.ALONE
