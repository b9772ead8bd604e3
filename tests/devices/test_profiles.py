"""Board profiles: the shipped ones load and open on the mock; bad ones name file and key."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from appliance.devices import profiles
from appliance.devices.profiles import LedKind, load_profile, parse_profile
from appliance.errors import ConfigError
from appliance.indicators import LedName
from appliance.session.model import ButtonName

SHIPPED = ["default", "jam-hat", "traffic-hat"]
HARDWARE = Path(__file__).resolve().parents[2] / "hardware"


def test_shipped_profiles_are_found() -> None:
    assert set(SHIPPED) <= set(profiles.available())


def test_default_profile_has_both_buttons_and_every_led() -> None:
    p = load_profile("default")
    assert {n for n, _ in p.buttons} == set(ButtonName)
    assert {n for n, _ in p.leds} == set(LedName)
    quality = p.led(LedName.QUALITY)
    assert quality is not None and quality.kind is LedKind.RGB


@pytest.mark.parametrize("name", SHIPPED)
def test_every_profile_has_a_wiring_picture_and_cites_its_source(name: str) -> None:
    p = load_profile(name)
    assert (HARDWARE / f"{name}.svg").is_file()
    assert p.source and p.description


def test_committed_wiring_pictures_match_the_generator() -> None:
    spec = importlib.util.spec_from_file_location("wiring", HARDWARE / "wiring.py")
    assert spec is not None and spec.loader is not None
    wiring = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wiring)
    for name in SHIPPED:
        svg = (HARDWARE / f"{name}.svg").read_text()
        assert svg == wiring.render(load_profile(name)), "run: python hardware/wiring.py"
        assert "GND" in svg and ("330" in svg or "R on HAT" in svg)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "board.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "key", "why"), [
    ("colour = 1\n", "`colour`", "unknown key"),
    ("[buttons.mute]\npin = 40\n", "`buttons.mute.pin`", "not a usable header GPIO"),
    ("[buttons.mute]\npin = 1\n", "`buttons.mute.pin`", "HAT EEPROM"),
    ("[buttons.mute]\npin = \"17\"\n", "`buttons.mute.pin`", "expected a BCM GPIO number"),
    ("[buttons.play]\npin = 17\n", "`buttons.play`", "unknown button"),
    ("[buttons.mute]\nactive_high = true\n", "`buttons.mute.pin`", "required"),
    ("[buttons.mute]\npin = 17\npull = \"up\"\nactive_high = true\n", "`buttons.mute.pull`",
     "read pressed forever"),
    ("[leds.status]\npin = 17\ncolor = 2\n", "`leds.status.color`", "unknown key"),
    ("[leds.quality]\nred = 5\nblue = 6\n", "`leds.quality`", "expected `pin`"),
    ("[leds.mute]\npin = 5\nred = 6\n", "`leds.mute`", "not both"),
    ("[leds.status]\npin = 17\n[buttons.mute]\npin = 17\n", "`leds.status.pin`",
     "already used by `buttons.mute.pin`"),
    ("[leds.status]\npin = 17\nactive_high = \"yes\"\n", "`leds.status.active_high`",
     "true or false"),
])
def test_bad_profiles_name_the_file_and_the_key(tmp_path: Path, text: str, key: str,
                                                why: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        parse_profile(path)
    assert any(str(path) in p and key in p and why in p for p in err.value.problems), (
        err.value.problems)


def test_not_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[buttons\n")
    with pytest.raises(ConfigError, match=r"board\.toml: not valid TOML"):
        parse_profile(path)


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown board profile 'nope'.*default"):
        load_profile("nope")


def test_a_path_loads_a_profile_of_your_own(tmp_path: Path) -> None:
    path = write(tmp_path, "[buttons.mute]\npin = 4\n[leds.mute]\npin = 5\nactive_high = false\n")
    p = load_profile(str(path))
    mute = p.led(LedName.MUTE)
    assert p.button(ButtonName.MUTE) is not None and mute is not None and not mute.active_high
    assert p.button(ButtonName.LEAVE) is None and p.led(LedName.STATUS) is None


def test_hardware_dir_from_the_environment_wins(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "default.toml").write_text("[buttons.mute]\npin = 4\n")
    monkeypatch.setenv(profiles.HARDWARE_ENV, str(tmp_path))
    assert load_profile("default").path == tmp_path / "default.toml"
