"""Network-change trigger: polls /sys/class/net and /proc/net/route; a new link or route posts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.session.model import Event, NetworkChanged

log = logging.getLogger(__name__)

RTF_UP = 0x1
POLL_INTERVAL = 2.0


@dataclass(frozen=True)
class LinkState:
    links_up: frozenset[str] = frozenset()
    default_route: bool = False

    @property
    def up(self) -> bool:
        return bool(self.links_up) or self.default_route


def parse_default_route(route_text: str) -> bool:
    """True if /proc/net/route has an up route to 0.0.0.0/0."""
    for line in route_text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
            try:
                if int(fields[3], 16) & RTF_UP:
                    return True
            except ValueError:
                continue
    return False


def read_link_state(root: Path = Path("/")) -> LinkState:
    links: set[str] = set()
    net = root / "sys/class/net"
    try:
        entries = list(net.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        if entry.name == "lo":
            continue
        try:
            operstate = (entry / "operstate").read_text().strip()
        except OSError:
            continue
        if operstate == "up":
            links.add(entry.name)
    try:
        route = (root / "proc/net/route").read_text()
    except OSError:
        route = ""
    return LinkState(frozenset(links), parse_default_route(route))


def change_event(before: LinkState | None, after: LinkState, at: float) -> NetworkChanged | None:
    """A link coming up or a default route appearing is worth an immediate retry."""
    if before is None:
        return None if after.up else NetworkChanged(at, up=False)
    appeared = bool(after.links_up - before.links_up) or (
        after.default_route and not before.default_route)
    if appeared:
        return NetworkChanged(at, up=True)
    if before.up and not after.up:
        return NetworkChanged(at, up=False)
    return None


class NetWatch:
    """Polls link state off the loop; posts NetworkChanged on the edges that matter."""

    def __init__(self, post: Callable[[Event], None], *,
                 clock: Callable[[], float] = time.monotonic,
                 read: Callable[[], LinkState] = read_link_state,
                 interval: float = POLL_INTERVAL) -> None:
        self._post = post
        self._clock = clock
        self._read = read
        self.interval = interval
        self.last: LinkState | None = None

    def sample(self, state: LinkState) -> NetworkChanged | None:
        event = change_event(self.last, state, self._clock())
        if self.last is not None and state != self.last:
            log.info("network: links %s, default route %s",
                     ",".join(sorted(state.links_up)) or "none",
                     "yes" if state.default_route else "no")
        self.last = state
        return event

    async def run(self) -> None:
        while True:
            state = await asyncio.to_thread(self._read)
            event = self.sample(state)
            if event is not None:
                self._post(event)
            await asyncio.sleep(self.interval)  # polling cadence, not synchronisation
