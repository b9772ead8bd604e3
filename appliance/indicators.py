"""Pure mapping from the session's observed State to LED patterns, plus its generated docs."""

from __future__ import annotations

import argparse
import enum
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from appliance.crashes import CRASH_LOOP_AFTER
from appliance.session.model import (
    CONNECTION_FAULTS,
    JOINED_ROOM_STATES,
    Fault,
    Intent,
    Quality,
    RoomState,
    State,
    TrackKind,
)
from appliance.session.truth import all_media_stalled, link_unproven, on_air


class LedName(enum.Enum):
    STATUS = "status"
    MUTE = "mute"
    CAMERA = "camera"
    QUALITY = "quality"


class Shape(enum.Enum):
    OFF = "off"
    ON = "on"
    BLINK = "blink"  # on_time lit, off_time dark, repeated
    FLASHES = "flashes"  # `count` flashes of on_time separated by off_time, then `pause` dark
    PULSE = "pulse"  # fade in over on_time, fade out over off_time (a plain LED blinks instead)


class Colour(enum.Enum):
    """Colour for RGB LEDs and three-LED (traffic light) outputs; single LEDs ignore it."""

    WHITE = "white"
    RED = "red"
    AMBER = "amber"
    GREEN = "green"
    BLUE = "blue"

    @property
    def rgb(self) -> tuple[float, float, float]:
        return _RGB[self]


_RGB: dict[Colour, tuple[float, float, float]] = {
    Colour.WHITE: (1.0, 1.0, 1.0),
    Colour.RED: (1.0, 0.0, 0.0),
    Colour.AMBER: (1.0, 0.5, 0.0),
    Colour.GREEN: (0.0, 1.0, 0.0),
    Colour.BLUE: (0.0, 0.0, 1.0),
}


@dataclass(frozen=True)
class Pattern:
    shape: Shape = Shape.OFF
    colour: Colour = Colour.WHITE
    on_time: float = 0.0
    off_time: float = 0.0
    count: int = 1
    pause: float = 0.0

    @property
    def period(self) -> float:
        if self.shape is Shape.FLASHES:
            return self.count * (self.on_time + self.off_time) + self.pause
        return self.on_time + self.off_time

    def timeline(self) -> list[tuple[float, float]]:
        """One cycle as (level at start, seconds) steps; PULSE levels ramp linearly in between."""
        if self.shape is Shape.OFF:
            return [(0.0, 1.0)]
        if self.shape is Shape.ON:
            return [(1.0, 1.0)]
        if self.shape is Shape.FLASHES:
            steps: list[tuple[float, float]] = []
            for _ in range(self.count):
                steps += [(1.0, self.on_time), (0.0, self.off_time)]
            return [*steps, (0.0, self.pause)]
        return [(1.0, self.on_time), (0.0, self.off_time)]

    def describe(self) -> str:
        if self.shape is Shape.OFF:
            return "off"
        colour = f"{self.colour.value} "
        if self.shape is Shape.ON:
            return f"{colour}steady on"
        if self.shape is Shape.BLINK:
            return f"{colour}blink {self.on_time:g} s on / {self.off_time:g} s off"
        if self.shape is Shape.PULSE:
            return f"{colour}pulse (breathe) every {self.period:g} s"
        name = {2: "double", 3: "triple"}.get(self.count, f"{self.count}x")
        return f"{colour}{name} flash, then {self.pause:g} s dark"

    def as_dict(self) -> dict[str, object]:
        return {
            "shape": self.shape.value, "colour": self.colour.value, "on_time": self.on_time,
            "off_time": self.off_time, "count": self.count, "pause": self.pause,
            "text": self.describe(),
        }


OFF = Pattern()


def on(colour: Colour = Colour.WHITE) -> Pattern:
    return Pattern(Shape.ON, colour)


def blink(on_time: float, off_time: float, colour: Colour = Colour.WHITE) -> Pattern:
    return Pattern(Shape.BLINK, colour, on_time, off_time)


def pulse(fade_in: float, fade_out: float, colour: Colour = Colour.WHITE) -> Pattern:
    return Pattern(Shape.PULSE, colour, fade_in, fade_out)


def flashes(count: int, colour: Colour = Colour.RED) -> Pattern:
    # 0.2 s flashes and gaps, 1.2 s pause: countable by eye, and every time a multiple of 0.1 s
    # so the player can render it on gpiozero's `source` machinery with a 0.1 s step.
    return Pattern(Shape.FLASHES, colour, 0.2, 0.2, count, 1.2)


class StatusKind(enum.Enum):
    """What the status LED says; one row each in the README table."""

    STARTING = "connecting (first join)"
    ALONE = "in the room, alone"
    WITH_OTHERS = "in the room with others"
    RECONNECTING = "reconnecting (SDK resuming, or waiting to retry)"
    LEFT = "left (idle): leave was pressed, press again to join"
    LEFT_REMOTELY = "left because an operator asked (RPC `kiosk.leave`): press leave to join"
    IDENTIFY = "identify: an operator is looking for this kiosk (status and quality LEDs)"
    NO_NETWORK = "fault: no network"
    SERVER_UNREACHABLE = "fault: server unreachable"
    AUTH_REJECTED = "fault: credentials rejected (401/403)"
    DEVICE_FAULT = "fault: camera or microphone lost"
    CONFIG_FAULT = "fault: configuration"
    IDENTITY_CONFLICT = "fault: another participant joined with this kiosk's identity"
    REMOVED = "removed by an operator: rejoins after `reconnect.removed_stay_out`, or press leave"
    CRASH_LOOP = "crash loop: restarted 3 or more times since boot, not back in the room yet"
    STOPPING = "daemon stopping"


STATUS_PATTERNS: dict[StatusKind, Pattern] = {
    StatusKind.STARTING: blink(0.5, 0.5, Colour.BLUE),
    StatusKind.ALONE: blink(1.8, 0.2, Colour.GREEN),  # on, with a short dip: "waiting for others"
    StatusKind.WITH_OTHERS: on(Colour.GREEN),
    StatusKind.RECONNECTING: blink(0.1, 0.1, Colour.AMBER),
    StatusKind.LEFT: pulse(2.0, 2.0, Colour.WHITE),
    StatusKind.LEFT_REMOTELY: pulse(1.0, 1.0, Colour.BLUE),
    StatusKind.IDENTIFY: Pattern(Shape.FLASHES, Colour.WHITE, 0.1, 0.1, 3, 0.4),
    # Fault codes: the count of flashes names the fault, as on the Pi's own ACT LED.
    StatusKind.NO_NETWORK: flashes(2),
    StatusKind.SERVER_UNREACHABLE: flashes(3),
    StatusKind.AUTH_REJECTED: flashes(4),
    StatusKind.DEVICE_FAULT: flashes(5),
    StatusKind.CONFIG_FAULT: flashes(6),
    StatusKind.IDENTITY_CONFLICT: flashes(7),
    StatusKind.REMOVED: blink(0.5, 1.5, Colour.WHITE),
    StatusKind.CRASH_LOOP: blink(0.1, 0.4, Colour.RED),
    StatusKind.STOPPING: OFF,
}

_FAULT_KIND = {
    Fault.NO_NETWORK: StatusKind.NO_NETWORK,
    Fault.SERVER_UNREACHABLE: StatusKind.SERVER_UNREACHABLE,
    Fault.AUTH_REJECTED: StatusKind.AUTH_REJECTED,
    Fault.DEVICE_FAULT: StatusKind.DEVICE_FAULT,
    Fault.CONFIG_FAULT: StatusKind.CONFIG_FAULT,
    Fault.IDENTITY_CONFLICT: StatusKind.IDENTITY_CONFLICT,
    Fault.REMOVED: StatusKind.REMOVED,
}

QUALITY_PATTERNS: dict[Quality, Pattern] = {
    Quality.UNKNOWN: OFF,
    Quality.EXCELLENT: on(Colour.GREEN),
    Quality.GOOD: pulse(2.0, 2.0, Colour.GREEN),
    Quality.POOR: on(Colour.AMBER),
    Quality.LOST: blink(0.25, 0.25, Colour.RED),
}

MUTE_ON = on(Colour.RED)
CAMERA_ON = on(Colour.WHITE)


def status_kind(state: State) -> StatusKind:
    """Which status the observed state shows; the order of the checks is the priority."""
    if state.stopping:
        return StatusKind.STOPPING
    if state.identify_until is not None:
        return StatusKind.IDENTIFY
    if state.intent is Intent.LEFT:
        # a person (or an operator) chose this: no fault is "wrong" while we stay out
        return StatusKind.LEFT_REMOTELY if state.left_remotely_by else StatusKind.LEFT
    if state.crashes >= CRASH_LOOP_AFTER and not state.joined_since_start:
        return StatusKind.CRASH_LOOP
    if state.fault in CONNECTION_FAULTS and state.room is not RoomState.CONNECTED:
        return _FAULT_KIND[state.fault]
    if state.fault is Fault.DEVICE_FAULT:
        return StatusKind.DEVICE_FAULT
    if state.room is RoomState.CONNECTED:
        return StatusKind.ALONE if not state.remotes else StatusKind.WITH_OTHERS
    if state.room is RoomState.RECONNECTING:
        return StatusKind.RECONNECTING
    if state.attempt == 0 and state.next_retry_at is None and state.room in (
        RoomState.DISCONNECTED, RoomState.CONNECTING
    ):
        return StatusKind.STARTING
    # DISCONNECTING with intent in-room is a forced rejoin; a retry wait or a later attempt is a
    # reconnect too: the kiosk was in (or trying for) the room and is on its way back.
    return StatusKind.RECONNECTING


def mute_led_on(state: State) -> bool:
    """On (red) unless the room really hears us: `truth.on_air` for the microphone."""
    return not on_air(state, TrackKind.MICROPHONE)


def shown_quality(state: State) -> Quality:
    """The server's last report while in the room and our media gets through (or nothing is
    sent); LOST while the SDK resumes or while all we send is stalled; nothing (UNKNOWN) out of
    the room or while what we send is still proving it arrives."""
    if state.stopping or state.room not in JOINED_ROOM_STATES:
        return Quality.UNKNOWN
    if state.room is RoomState.RECONNECTING or all_media_stalled(state):
        return Quality.LOST
    return Quality.UNKNOWN if link_unproven(state) else state.quality


def indicators(state: State) -> dict[LedName, Pattern]:
    """The one place LED patterns come from: a pure function of the observed state."""
    return {
        LedName.STATUS: STATUS_PATTERNS[status_kind(state)],
        LedName.MUTE: MUTE_ON if mute_led_on(state) else OFF,
        LedName.CAMERA: CAMERA_ON if on_air(state, TrackKind.CAMERA) else OFF,
        # Identify borrows the quality LED too, never the mute or camera LED: those tell the
        # truth about the microphone and camera whatever an operator asks.
        LedName.QUALITY: (STATUS_PATTERNS[StatusKind.IDENTIFY]
                          if state.identify_until is not None and not state.stopping
                          else QUALITY_PATTERNS[shown_quality(state)]),
    }


def as_json(patterns: Mapping[LedName, Pattern]) -> dict[str, dict[str, object]]:
    return {name.value: pattern.as_dict() for name, pattern in patterns.items()}


# ---------------------------------------------------------------------------------------------
# Generated documentation: the README table and docs/leds.svg come from the tables above.


def doc_rows() -> list[tuple[str, str, Pattern]]:
    """(LED, meaning, pattern) for every documented indication, in README order."""
    rows = [("status", kind.value, STATUS_PATTERNS[kind]) for kind in StatusKind]
    rows += [
        ("mute", "the room cannot hear you: muted, not in the room, no microphone, or its "
         "audio stopped reaching the server", MUTE_ON),
        ("mute", "in the room, microphone published, unmuted and its audio flowing", OFF),
        ("camera", "in the room, camera published, unmuted and its video flowing", CAMERA_ON),
        ("camera", "no video reaching the room (privacy, audio-only rung, muted by the "
         "server, no camera, stalled, not in the room)", OFF),
    ]
    also = {Quality.UNKNOWN: " / not in the room / the kiosk's media still proving it arrives",
            Quality.LOST: " / the SDK is resuming / none of the kiosk's media reaches the server"}
    rows += [("quality", f"connection quality {q.value}{also.get(q, '')}", QUALITY_PATTERNS[q])
             for q in Quality]
    return rows


def markdown() -> str:
    lines = [
        "<!-- generated by `python -m appliance.indicators --markdown`; do not edit -->",
        "| LED | means | pattern |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {led} | {meaning} | {p.describe()} |" for led, meaning, p in doc_rows()]
    return "\n".join(lines) + "\n"


_SVG_COLOUR = {Colour.WHITE: "#888888", Colour.RED: "#d62728", Colour.AMBER: "#ff9f1a",
               Colour.GREEN: "#2ca02c", Colour.BLUE: "#1f77b4"}


def _wave(pattern: Pattern, span: float) -> list[tuple[float, float]]:
    """(time, level) corner points of the pattern over `span` seconds."""
    points: list[tuple[float, float]] = []
    t = 0.0
    if pattern.shape is Shape.PULSE:  # linear ramps: up over on_time, down over off_time
        while t < span:
            points += [(t, 0.0), (min(t + pattern.on_time, span), min(1.0, (
                span - t) / pattern.on_time))]
            t += pattern.period
        return [*points, (span, 0.0)] if points[-1][0] < span else points
    while t < span:
        for level, seconds in pattern.timeline():
            points += [(t, level), (min(t + seconds, span), level)]
            t += seconds
            if t >= span:
                break
    return points


def svg(span: float = 6.0) -> str:
    rows = doc_rows()
    left, width, row_h, top = 430, 600, 34, 56
    scale = width / span
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" '
        f'height="{top + row_h * len(rows) + 20}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">LED patterns over {span:g} s '
        "(generated by python -m appliance.indicators --svg)</text>",
    ]
    for second in range(int(span) + 1):
        x = left + second * scale
        out.append(f'<line x1="{x:.1f}" y1="{top - 8}" x2="{x:.1f}" '
                   f'y2="{top + row_h * len(rows)}" stroke="#eeeeee"/>')
        out.append(f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle">{second} s</text>')
    for i, (led, meaning, pattern) in enumerate(rows):
        y0 = top + i * row_h
        base, high = y0 + row_h - 8, y0 + 6
        text = f"{led}: {meaning}"
        if len(text) > 64:
            text = text[:61] + "..."
        out.append(f'<text x="10" y="{base - 6}">{_escape(text)}</text>')
        pts = " ".join(f"{left + t * scale:.1f},{base - lv * (base - high):.1f}"
                       for t, lv in _wave(pattern, span))
        colour = _SVG_COLOUR[pattern.colour]
        out.append(f'<polyline points="{left:.1f},{base} {pts} {left + width:.1f},{base}" '
                   f'fill="{colour}" fill-opacity="0.35" stroke="{colour}" stroke-width="1.5"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance.indicators",
                                     description="print the LED pattern documentation")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--markdown", action="store_true", help="the README table")
    group.add_argument("--svg", action="store_true", help="docs/leds.svg")
    args = parser.parse_args(argv)
    sys.stdout.write(markdown() if args.markdown else svg())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
