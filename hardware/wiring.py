"""Draw hardware/<profile>.svg wiring pictures from the profiles: `python hardware/wiring.py`."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from appliance.devices.profiles import BoardProfile, parse_profile  # noqa: E402

# 40-pin header: physical pin -> label (BCM numbers as "GPIOn").
HEADER = {
    1: "3V3", 2: "5V", 3: "GPIO2", 4: "5V", 5: "GPIO3", 6: "GND", 7: "GPIO4", 8: "GPIO14",
    9: "GND", 10: "GPIO15", 11: "GPIO17", 12: "GPIO18", 13: "GPIO27", 14: "GND", 15: "GPIO22",
    16: "GPIO23", 17: "3V3", 18: "GPIO24", 19: "GPIO10", 20: "GND", 21: "GPIO9", 22: "GPIO25",
    23: "GPIO11", 24: "GPIO8", 25: "GND", 26: "GPIO7", 27: "ID_SD", 28: "ID_SC", 29: "GPIO5",
    30: "GND", 31: "GPIO6", 32: "GPIO12", 33: "GPIO13", 34: "GND", 35: "GPIO19", 36: "GPIO16",
    37: "GPIO26", 38: "GPIO20", 39: "GND", 40: "GPIO21",
}
PHYSICAL = {int(label[4:]): pin for pin, label in HEADER.items() if label.startswith("GPIO")}
FILL = {"3V3": "#f6a800", "5V": "#d62728", "GND": "#333333"}
LED_COLOUR = {"red": "#d62728", "amber": "#ff9f1a", "green": "#2ca02c", "blue": "#1f77b4",
              "status": "#2ca02c", "mute": "#d62728", "camera": "#eeeeee", "quality": "#2ca02c"}
ROW = 24
TOP = 90


def _header(out: list[str]) -> None:
    out.append(f'<rect x="30" y="{TOP - 16}" width="170" height="{20 * ROW + 8}" rx="6" '
               'fill="#1b5e20"/>')
    for pin, label in HEADER.items():
        col, row = (pin - 1) % 2, (pin - 1) // 2
        x, y = 100 + col * 30, TOP + row * ROW
        fill = FILL.get(label, "#c8a200" if label.startswith("GPIO") else "#777777")
        out.append(f'<circle cx="{x}" cy="{y}" r="7" fill="{fill}" stroke="white"/>')
        out.append(f'<text x="{x}" y="{y + 3}" text-anchor="middle" font-size="7" '
                   f'fill="white">{pin}</text>')
        tx, anchor = (86, "end") if col == 0 else (144, "start")
        out.append(f'<text x="{tx}" y="{y + 4}" text-anchor="{anchor}" font-size="9" '
                   f'fill="white">{label}</text>')


def _resistor(out: list[str], x: float, y: float, text: str) -> float:
    zig = " ".join(f"{x + 6 + i * 6},{y + (-5 if i % 2 else 5)}" for i in range(7))
    out.append(f'<polyline points="{x},{y} {zig} {x + 48},{y} {x + 54},{y}" fill="none" '
               'stroke="black" stroke-width="1.5"/>')
    out.append(f'<text x="{x + 27}" y="{y - 9}" text-anchor="middle" font-size="9">{text}</text>')
    return x + 54


def _led(out: list[str], x: float, y: float, colour: str, forward: bool = True) -> float:
    a, b = (x, x + 18) if forward else (x + 18, x)
    out.append(f'<polygon points="{a},{y - 8} {a},{y + 8} {b},{y}" fill="{colour}" '
               'stroke="black"/>')
    out.append(f'<line x1="{b}" y1="{y - 8}" x2="{b}" y2="{y + 8}" stroke="black" '
               'stroke-width="2"/>')
    return x + 18


def _switch(out: list[str], x: float, y: float) -> float:
    out.append(f'<circle cx="{x + 3}" cy="{y}" r="3" fill="none" stroke="black"/>')
    out.append(f'<circle cx="{x + 37}" cy="{y}" r="3" fill="none" stroke="black"/>')
    out.append(f'<line x1="{x + 5}" y1="{y - 2}" x2="{x + 34}" y2="{y - 14}" stroke="black" '
               'stroke-width="1.5"/>')
    return x + 40


def _wire(out: list[str], x1: float, y1: float, jog: float, x2: float, y2: float,
          colour: str) -> None:
    out.append(f'<polyline points="{x1},{y1} {jog},{y1} {jog},{y2} {x2},{y2}" '
               f'fill="none" stroke="{colour}" stroke-width="1.5"/>')


def render(profile: BoardProfile) -> str:
    rows: list[tuple[int, str, list[str]]] = []  # (gpio, text, parts)
    onboard = bool(profile.hat)
    r_text = "R on HAT" if onboard else "330 \u03a9"
    for name, b in profile.buttons:
        pull = "pull on HAT" if onboard and b.pull != "up" else f"pull-{b.pull} (internal)"
        if b.pull == "none":
            pull = "external pull"
        rows.append((b.pin, f"{name.value} button, active-{'high' if b.active_high else 'low'}, "
                     f"{pull}", ["switch", "3V3" if b.active_high else "GND"]))
    for name, led in profile.leds:
        for role, pin in led.pins:
            what = f"{name.value} LED" + ("" if role == "pin" else f" ({role})")
            level = "active-high" if led.active_high else "active-low"
            colour = name.value if role == "pin" else role
            rows.append((pin, f"{what}, {level}", ["resistor", f"led:{colour}",
                                                   "GND" if led.active_high else "3V3"]))
    for pin in profile.hold_low:
        rows.append((pin, "buzzer driver, held low (silent)", ["buzzer"]))
    rows.sort(key=lambda r: PHYSICAL[r[0]])
    height = max(TOP + 20 * ROW + 40, TOP + len(rows) * 2 * ROW + 40)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="900" height="{height}" '
           'font-family="sans-serif" font-size="11">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="20" y="24" font-size="15" font-weight="bold">Board profile '
           f'"{profile.name}": {profile.hat or "breadboard wiring"}</text>',
           f'<text x="20" y="44">{_esc(profile.description)}</text>',
           f'<text x="20" y="62" fill="#555555">Pinout: {_esc(profile.source)}. '
           'Generated by hardware/wiring.py.</text>']
    wires: list[str] = []
    gnd_x, v33_x = 860, 840
    out.append(f'<line x1="{gnd_x}" y1="{TOP}" x2="{gnd_x}" y2="{height - 30}" stroke="#333333" '
               'stroke-width="3"/>')
    out.append(f'<text x="{gnd_x}" y="{TOP - 8}" text-anchor="middle">GND</text>')
    if any("3V3" in parts for _, _, parts in rows):  # a 3V3 rail only where something uses it
        out.append(f'<line x1="{v33_x}" y1="{TOP}" x2="{v33_x}" y2="{height - 30}" '
                   'stroke="#f6a800" stroke-width="3"/>')
        out.append(f'<text x="{v33_x}" y="{TOP - 8}" text-anchor="end">3V3</text>')
    # rails fed from header pins 39 (GND) and 17 (3V3); wires go under the header's pins
    _wire(wires, 100, TOP + 19 * ROW, 200, gnd_x, height - 30, "#333333")
    if any("3V3" in parts for _, _, parts in rows):
        _wire(wires, 100, TOP + 8 * ROW, 206, v33_x, TOP + 4, "#f6a800")
    for i, (gpio, text, parts) in enumerate(rows):
        phys = PHYSICAL[gpio]
        px = 100 + ((phys - 1) % 2) * 30
        py = TOP + ((phys - 1) // 2) * ROW
        y = TOP + 10 + i * 2 * ROW
        x = 430.0
        out.append(f'<text x="{x}" y="{y - 16}" font-weight="bold">GPIO{gpio} (pin {phys}): '
                   f'{_esc(text)}</text>')
        # left-column wires leave the header just above the row, right-column ones below it
        lane = py - 4 if phys % 2 else py + 4
        wires.append(f'<line x1="{px}" y1="{py}" x2="{px}" y2="{lane}" stroke="#1f77b4"/>')
        _wire(wires, px, lane, 220 + i * 12, x, y, "#1f77b4")
        for part in parts:
            if part == "switch":
                x = _switch(out, x, y)
            elif part == "resistor":
                x = _resistor(out, x, y, r_text)
            elif part.startswith("led:"):
                role = part[4:]
                x = _led(out, x, y, LED_COLOUR[role], forward=parts[-1] == "GND")
            elif part == "buzzer":
                out.append(f'<rect x="{x}" y="{y - 8}" width="60" height="16" fill="#dddddd" '
                           'stroke="black"/>')
                out.append(f'<text x="{x + 30}" y="{y + 4}" text-anchor="middle" '
                           'font-size="9">buzzer</text>')
                x += 60
            else:
                rail = gnd_x if part == "GND" else v33_x
                out.append(f'<line x1="{x}" y1="{y}" x2="{rail}" y2="{y}" stroke="black"/>')
                out.append(f'<circle cx="{rail}" cy="{y}" r="3" fill="black"/>')
    header: list[str] = []
    _header(header)
    out[5:5] = wires + header
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def main() -> int:
    for path in sorted(HERE.glob("*.toml")):
        path.with_suffix(".svg").write_text(render(parse_profile(path)), encoding="utf-8")
        print(f"wrote {path.with_suffix('.svg').name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
