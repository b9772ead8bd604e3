"""Board profiles: which GPIO drives which button and LED, loaded from `hardware/*.toml`."""

from __future__ import annotations

import enum
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from appliance.errors import ConfigError
from appliance.indicators import LedName
from appliance.session.model import ButtonName

HARDWARE_ENV = "APPLIANCE_HARDWARE_DIR"
INSTALLED_DIR = Path(sys.prefix) / "share" / "appliance" / "hardware"
Pull = Literal["up", "down", "none"]
# BCM numbers on the 40-pin header. 0 and 1 are the HAT ID EEPROM bus: never ours.
VALID_PINS = range(2, 28)
_TOP_KEYS = {"name", "description", "boards", "source", "hat", "buttons", "leds", "hold_low"}
_BUTTON_KEYS = {"pin", "active_high", "pull", "label"}
_LED_KEYS = {"pin", "red", "amber", "green", "blue", "active_high", "pwm", "label"}


class LedKind(enum.Enum):
    SINGLE = "single"  # one LED (`pin`)
    RGB = "rgb"  # one RGB LED (`red`, `green`, `blue`)
    MULTI = "multi"  # two or three separate LEDs (`red`, `amber`, `green`): a traffic light


@dataclass(frozen=True)
class ButtonSpec:
    pin: int
    active_high: bool = False  # False: the button connects the pin to ground
    pull: Pull = "up"
    label: str = ""


@dataclass(frozen=True)
class LedSpec:
    kind: LedKind
    pins: tuple[tuple[str, int], ...]  # ("pin", n) for SINGLE; colour names otherwise
    active_high: bool = True  # False: the LED's cathode is on the pin (anode at 3V3)
    pwm: bool = True
    label: str = ""

    def pin(self, role: str) -> int | None:
        return dict(self.pins).get(role)


@dataclass(frozen=True)
class BoardProfile:
    name: str
    path: Path
    description: str = ""
    boards: tuple[str, ...] = ()
    source: str = ""
    hat: str = ""  # a ready-made board: its resistors and pulls are on it, not on a breadboard
    buttons: tuple[tuple[ButtonName, ButtonSpec], ...] = ()
    leds: tuple[tuple[LedName, LedSpec], ...] = ()
    hold_low: tuple[int, ...] = ()  # pins driven low while running (e.g. a HAT's buzzer)

    def button(self, name: ButtonName) -> ButtonSpec | None:
        return dict(self.buttons).get(name)

    def led(self, name: LedName) -> LedSpec | None:
        return dict(self.leds).get(name)



def hardware_dirs() -> list[Path]:
    """Where profiles live: $APPLIANCE_HARDWARE_DIR, the source checkout, the installed copy.

    A wheel installs top-level `hardware/` as data files under `<prefix>/share/appliance/`
    (pyproject's `[tool.setuptools.data-files]`): the package itself holds no board data.
    """
    dirs: list[Path] = []
    if os.environ.get(HARDWARE_ENV):
        dirs.append(Path(os.environ[HARDWARE_ENV]))
    for candidate in (Path(__file__).resolve().parents[2] / "hardware", INSTALLED_DIR):
        if candidate.is_dir() and candidate not in dirs:
            dirs.append(candidate)
    return dirs


def available() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in reversed(hardware_dirs()):  # earlier folders win
        for path in sorted(folder.glob("*.toml")):
            found[path.stem] = path
    return dict(sorted(found.items()))


def resolve(name: str) -> Path:
    """A profile name (`default`) or a path to a TOML file (for a board of your own)."""
    if "/" in name or name.endswith(".toml"):
        path = Path(name)
        if not path.is_file():
            raise ConfigError([f"`gpio.profile`: no such profile file {path}"])
        return path
    profiles = available()
    if name not in profiles:
        known = ", ".join(profiles) or "none found"
        where = ", ".join(str(d) for d in hardware_dirs()) or "no hardware folder found"
        raise ConfigError([f"`gpio.profile`: unknown board profile {name!r} "
                           f"(known: {known}; searched {where})"])
    return profiles[name]


def load_profile(name: str) -> BoardProfile:
    return parse_profile(resolve(name))


def parse_profile(path: Path) -> BoardProfile:
    """Read one profile; ConfigError names the file and the key of every problem found."""
    from appliance.config.layers import read_toml

    raw = read_toml(path, "board profile")
    problems: list[str] = []

    def bad(key: str, why: str) -> None:
        problems.append(f"{path}: `{key}`: {why}")

    for key in sorted(set(raw) - _TOP_KEYS):
        bad(key, f"unknown key (expected one of {', '.join(sorted(_TOP_KEYS))})")
    buttons = _parse_buttons(raw.get("buttons", {}), bad)
    leds = _parse_leds(raw.get("leds", {}), bad)
    hold_low: list[int] = []
    for i, pin in enumerate(_as(raw.get("hold_low", []), list, "hold_low", "an array", bad)):
        if _pin_ok(pin, f"hold_low[{i}]", bad):
            hold_low.append(pin)
    profile = BoardProfile(
        name=path.stem,
        path=path,
        description=str(raw.get("description", "")),
        boards=tuple(str(b) for b in raw.get("boards", [])),
        source=str(raw.get("source", "")),
        hat=str(raw.get("hat", "")),
        buttons=tuple(buttons),
        leds=tuple(leds),
        hold_low=tuple(hold_low),
    )
    seen: dict[int, str] = {}
    for key, pin in _all_pins(profile):
        if pin in seen:
            bad(key, f"GPIO{pin} is already used by `{seen[pin]}`")
        seen.setdefault(pin, key)
    if problems:
        raise ConfigError(problems)
    return profile


def _all_pins(profile: BoardProfile) -> list[tuple[str, int]]:
    out = [(f"buttons.{n.value}.pin", b.pin) for n, b in profile.buttons]
    out += [(f"leds.{n.value}.{role}", pin) for n, led in profile.leds for role, pin in led.pins]
    return out + [("hold_low", pin) for pin in profile.hold_low]


def _as(value: Any, tp: type, key: str, what: str, bad: Any) -> Any:
    if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    bad(key, f"expected {what}, found {type(value).__name__} {value!r}")
    return tp()


def _pin_ok(value: Any, key: str, bad: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int):
        bad(key, f"expected a BCM GPIO number (2..27), found {value!r}")
        return False
    if value not in VALID_PINS:
        bad(key, f"GPIO{value} is not a usable header GPIO (2..27; 0 and 1 are the HAT EEPROM)")
        return False
    return True


def _parse_buttons(table: Any, bad: Any) -> list[tuple[ButtonName, ButtonSpec]]:
    out: list[tuple[ButtonName, ButtonSpec]] = []
    names = {b.value: b for b in ButtonName}
    for name, spec in _as(table, dict, "buttons", "a table", bad).items():
        key = f"buttons.{name}"
        if name not in names:
            bad(key, f"unknown button (expected {', '.join(names)})")
            continue
        if not isinstance(spec, dict):
            bad(key, f"expected a table with `pin`, found {spec!r}")
            continue
        for extra in sorted(set(spec) - _BUTTON_KEYS):
            bad(f"{key}.{extra}", f"unknown key (expected {', '.join(sorted(_BUTTON_KEYS))})")
        if "pin" not in spec:
            bad(f"{key}.pin", "required")
            continue
        if not _pin_ok(spec["pin"], f"{key}.pin", bad):
            continue
        active_high = _as(spec.get("active_high", False), bool, f"{key}.active_high",
                          "true or false", bad)
        pull = spec.get("pull", "down" if active_high else "up")
        if pull not in ("up", "down", "none"):
            bad(f"{key}.pull", f'expected "up", "down" or "none", found {pull!r}')
            continue
        if (pull == "up" and active_high) or (pull == "down" and not active_high):
            bad(f"{key}.pull", f"pull {pull!r} holds the pin at its active level: the button "
                f"would read pressed forever (set active_high = {str(not active_high).lower()})")
            continue
        out.append((names[name], ButtonSpec(spec["pin"], active_high, pull,
                                            str(spec.get("label", "")))))
    return out


def _parse_leds(table: Any, bad: Any) -> list[tuple[LedName, LedSpec]]:
    out: list[tuple[LedName, LedSpec]] = []
    names = {n.value: n for n in LedName}
    for name, spec in _as(table, dict, "leds", "a table", bad).items():
        key = f"leds.{name}"
        if name not in names:
            bad(key, f"unknown LED (expected {', '.join(names)})")
            continue
        if not isinstance(spec, dict):
            bad(key, f"expected a table with `pin` (or `red`/`green`/...), found {spec!r}")
            continue
        for extra in sorted(set(spec) - _LED_KEYS):
            bad(f"{key}.{extra}", f"unknown key (expected {', '.join(sorted(_LED_KEYS))})")
        roles = [r for r in ("pin", "red", "amber", "green", "blue") if r in spec]
        if "pin" in roles and len(roles) > 1:
            bad(key, "give either `pin` (one LED) or colour pins, not both")
            continue
        if roles == ["pin"]:
            kind = LedKind.SINGLE
        elif set(roles) == {"red", "green", "blue"}:
            kind = LedKind.RGB
        elif "blue" not in roles and len(roles) >= 2:
            kind = LedKind.MULTI
        else:
            bad(key, "expected `pin`, or `red`+`green`+`blue` (RGB LED), or two or three of "
                f"`red`/`amber`/`green` (separate LEDs); found {roles or 'no pins'}")
            continue
        if not all([_pin_ok(spec[r], f"{key}.{r}", bad) for r in roles]):
            continue
        out.append((names[name], LedSpec(
            kind, tuple((r, spec[r]) for r in roles),
            _as(spec.get("active_high", True), bool, f"{key}.active_high", "true or false", bad),
            _as(spec.get("pwm", True), bool, f"{key}.pwm", "true or false", bad),
            str(spec.get("label", "")),
        )))
    return out
