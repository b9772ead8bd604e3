"""The demo's live terminal panel (rich): LEDs in colour, room, tracks, levels, transitions."""

from __future__ import annotations

import io
import math
import time
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from appliance.demo.view import LED_ORDER, View

RICH_COLOURS = {"white": "bright_white", "red": "red1", "amber": "orange1", "green": "green3",
                "blue": "dodger_blue1"}

KEY_HELP = (
    "[m] mute  [M] camera privacy (long mute)  [l] leave/join  [L] forced rejoin (long leave)  "
    "[d] drop signalling  [s] server down 70 s  [a] 401s for 30 s  [p] poor / [g] good quality  "
    "[b] media black-hole on/off  [c] camera unplug/replug  [f] far end leave/join  "
    "[i] identify (appliance ops)  [q] quit"
)
# The health attributes first in this order, any others after them, sorted.
HEALTH_ORDER = ("state", "fault", "mic", "camera", "camera_rung", "quality", "crashes",
                "remote_unmutes_refused", "version", "profile", "started", "temp_c", "throttled")
HEALTH_PER_ROW = 4
TITLE = "room-kiosk appliance: demo"
SVG_COLUMNS = 110  # the README's picture: readable at a web page's width
SVG_LOG_ROWS = 10


def lit(pattern: dict[str, Any], now: float) -> float:
    """Brightness 0..1 of an LED showing `pattern` at time `now` (same shapes as the board)."""
    shape = pattern.get("shape", "off")
    if shape == "off":
        return 0.0
    if shape == "on":
        return 1.0
    on_t, off_t = float(pattern.get("on_time", 0)), float(pattern.get("off_time", 0))
    count, pause = int(pattern.get("count", 1)), float(pattern.get("pause", 0))
    if shape == "flashes":
        period = count * (on_t + off_t) + pause
        phase = now % period if period > 0 else 0.0
        if phase >= count * (on_t + off_t):
            return 0.0
        return 1.0 if phase % (on_t + off_t) < on_t else 0.0
    period = on_t + off_t
    phase = now % period if period > 0 else 0.0
    if shape == "pulse":
        return phase / on_t if phase < on_t else 1.0 - (phase - on_t) / max(off_t, 1e-9)
    return 1.0 if phase < on_t else 0.0


def led_cell(name: str, pattern: dict[str, Any], now: float) -> Text:
    level = lit(pattern, now)
    colour = RICH_COLOURS.get(str(pattern.get("colour", "white")), "white")
    dot = Text("●", style=f"bold {colour}") if level > 0.5 else (
        Text("◐", style=colour) if level > 0.05 else Text("○", style="grey35"))
    return Text.assemble(dot, " ", (name, "bold"), "\n", (str(pattern.get("text", "off")), "dim"))


def _db(value: float) -> str:
    if math.isinf(value):
        return "silent"
    bars = max(0, min(20, int((value + 60) / 3)))
    return f"{'█' * bars}{'·' * (20 - bars)} {value:5.1f} dBFS"


def health_grid(health: dict[str, str]) -> RenderableType:
    """The kiosk's `kiosk.*` attributes as name/value pairs, HEALTH_PER_ROW pairs a row."""
    if not health:
        return Text("(none at the server: the kiosk is not in the room)", style="dim")
    names = {k.removeprefix("kiosk."): v for k, v in health.items()}
    order = [n for n in HEALTH_ORDER if n in names] + sorted(set(names) - set(HEALTH_ORDER))
    grid = Table.grid(padding=(0, 2))
    for _ in range(HEALTH_PER_ROW):
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(no_wrap=True, overflow="ellipsis")
    for at in range(0, len(order), HEALTH_PER_ROW):
        row = order[at:at + HEALTH_PER_ROW]
        cells = [cell for name in row for cell in (name, names[name])]
        grid.add_row(*cells, *[""] * (2 * HEALTH_PER_ROW - len(cells)))
    return grid


def fit(console: Console, view: View, message: str = "") -> RenderableType:
    """The panel, its transitions box grown to fill the rows the terminal has left."""
    used = len(console.render_lines(render(view, message, log_rows=1), console.options,
                                    pad=False))
    return render(view, message, log_rows=max(1, 1 + console.height - used))


def render(view: View, message: str = "", log_rows: int = 8) -> RenderableType:
    now = time.monotonic()
    leds = Table.grid(padding=(0, 4))
    cells = [led_cell(n, view.leds.get(n, {"shape": "off"}), now) for n in LED_ORDER]
    leds.add_row(*cells)

    room = Table.grid(padding=(0, 2))
    room.add_column(style="bold")
    room.add_column()
    f = view.fields
    room.add_row("room", f"{f['room']}  (intent {f['intent']})")
    room.add_row("status", f"{f['status']}   fault: {f['fault']}")
    room.add_row("quality", f"{f['quality']}   camera rung: {f['rung']}")
    room.add_row("others", ", ".join(view.remotes) or "(alone)")
    room.add_row("next attempt", view.next_attempt or Text("(none scheduled)", style="dim"))
    room.add_row("speaker", _db(view.speaker_dbfs))
    room.add_row("fleet", f"{f.get('fleet.presence', '?')}, "
                          f"{f.get('fleet.tokens', '?')} token(s) issued to this kiosk")
    if view.console:
        room.add_row("console", view.console)

    tracks = Table(box=None, padding=(0, 2), header_style="bold")
    for column in ("track", "kiosk state", "at the test double", "rate"):
        tracks.add_column(column)
    for row in view.tracks:
        tracks.add_row(*row)

    log = Table.grid(padding=(0, 2))
    log.add_column(no_wrap=True)
    log.add_column(no_wrap=True, overflow="ellipsis")  # one row per transition: `fit` counts
    shown = view.transitions[-log_rows:]
    if not shown:
        log.add_row(Text("(none yet)", style="dim"), "")
    for at, text in shown:
        log.add_row(f"{at:7.1f} s", text)
    for _ in range(log_rows - max(1, len(shown))):
        log.add_row("", "")  # the box keeps its size: the panel fills the terminal

    body = Group(
        Panel(leds, title="LEDs", border_style="grey50"),
        Panel(room, title=view.status_line, border_style="grey50"),
        Panel(tracks, title="tracks", border_style="grey50"),
        Panel(health_grid(view.health), border_style="grey50",
              title="health attributes, as the room sees them (kiosk.* at the server)"),
        Panel(log, title="last transitions", border_style="grey50"),
        Text(message, style="yellow") if message else Text(""),
        Text(KEY_HELP, style="dim"),
    )
    return Panel(body, title=TITLE, border_style="cyan")


def svg(view: View, message: str = "", columns: int = SVG_COLUMNS) -> str:
    """The panel as an SVG picture (the README's docs/demo.svg comes from here): as many
    transition rows as there were transitions, up to SVG_LOG_ROWS."""
    console = Console(width=columns, record=True, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor")
    log_rows = max(1, min(SVG_LOG_ROWS, len(view.transitions)))
    console.print(render(view, message, log_rows=log_rows))
    return console.export_svg(title=TITLE)
