"""`appliance fault-leds`: a broken configuration still blinks the configuration-fault code."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

import pytest

from appliance.config import GpioConfig, load_gpio_best_effort
from appliance.devices import faultleds
from appliance.devices.gpio import GpioFrontEnd
from appliance.indicators import STATUS_PATTERNS, LedName, StatusKind


def test_best_effort_gpio_survives_a_broken_configuration(tmp_path: Path) -> None:
    broken = tmp_path / "appliance.toml"
    broken.write_text('[gpio]\nprofile = "jam-hat"\nmute_hold = "long"\n[camera]\nwidht = 3\n')
    device = tmp_path / "device.toml"
    device.write_text("[gpio\nthis is not TOML")
    assert load_gpio_best_effort(broken, device, env={}) == GpioConfig(profile="jam-hat")
    device.write_text('[gpio]\npin_factory = "mock"\n')
    got = load_gpio_best_effort(broken, device, env={"APPLIANCE_GPIO_PROFILE": "traffic-hat"})
    assert got == GpioConfig(profile="traffic-hat", pin_factory="mock")
    assert load_gpio_best_effort(tmp_path / "a", tmp_path / "b", env={}) == GpioConfig()


def test_fault_leds_show_the_config_fault_until_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "appliance.toml"
    config.write_text('[gpio]\npin_factory = "mock"\n[livekit]\nurl = 42\n')  # not loadable
    shown: list[dict[LedName, Any]] = []
    first_show = threading.Event()
    real_show = GpioFrontEnd.show

    def show(self: GpioFrontEnd, state: Any) -> dict[LedName, Any]:
        patterns = real_show(self, state)
        shown.append(dict(self.leds.shown))
        first_show.set()
        return patterns

    monkeypatch.setattr(GpioFrontEnd, "show", show)
    monkeypatch.setattr(faultleds.signal, "signal", lambda *_: None)  # not the main thread
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    stop = threading.Event()
    args = argparse.Namespace(config=config, device_file=tmp_path / "none.toml")
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(faultleds.cmd_fault_leds(args, stop)))
    thread.start()
    try:
        assert first_show.wait(10)
        assert shown[0][LedName.STATUS] == STATUS_PATTERNS[StatusKind.CONFIG_FAULT]
    finally:
        stop.set()
        thread.join(10)
    assert result == [0]
