"""The seam to the room: a RoomLink Protocol (rtc/livekit.py, rtc/fake.py) and stall detection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from appliance.errors import ApplianceError
from appliance.session.model import TrackKind

# Words a refused join carries (the SDK puts the server's /validate body into ConnectError).
AUTH_WORDS = ("401", "403", "unauthorized", "forbidden", "permission denied", "invalid token",
              "token is expired", "invalid api key", "no permissions")


def looks_like_auth(message: str) -> bool:
    low = message.lower()
    return any(word in low for word in AUTH_WORDS)


class JoinFailed(ApplianceError, ConnectionError):
    """A join that did not complete; `auth` puts the retry in the slow lane."""

    def __init__(self, reason: str, *, auth: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.auth = auth


@dataclass(frozen=True)
class Progress:
    """Outbound media counters for one kind: bytes we sent, and far-end reports about them."""

    sent: int = 0
    acked: int = 0  # RTCP receiver reports seen (RTT measurements + packets the far end got)


class RoomLink(Protocol):
    """One room at a time; each `connect` builds a fresh room. Events go to the `post` it got."""

    async def connect(self, url: str, token: str) -> frozenset[str]:
        """Join; returns the identities already there. Raises JoinFailed."""
        ...

    async def disconnect(self) -> None:
        """Leave (client-initiated); bounded in time, never raises for a dead server."""
        ...

    async def publish(self, tracks: Mapping[TrackKind, Any], *, camera: bool) -> None: ...

    async def unpublish(self, kind: TrackKind) -> None: ...

    async def progress(self) -> Mapping[TrackKind, Progress]: ...

    async def aclose(self) -> None: ...


class StallDetector:
    """Media plane watch: counters that stop growing while a track should be live mean a stall.

    `acked` only counts once the far end has ever reported (a server that never sends receiver
    reports must not look stalled); `sent` always counts. Having seen reports is remembered
    across resets: after the SDK rebuilt its peer connection into a black hole, bytes still
    leave but no report ever comes back, and that is exactly the stall to catch.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._last: dict[TrackKind, tuple[Progress, float]] = {}
        self._acks_seen: set[TrackKind] = set()

    def reset(self, kind: TrackKind | None = None) -> None:
        """Start timing afresh (after a join, a mute, a reconnect)."""
        if kind is None:
            self._last.clear()
        else:
            self._last.pop(kind, None)

    def observe(self, kind: TrackKind, now: float, progress: Progress | None,
                live: bool) -> float | None:
        """Feed one sample; returns how long the track has been stalled once past the timeout."""
        if not live or progress is None:
            self.reset(kind)
            return None
        if progress.acked:
            self._acks_seen.add(kind)
        last = self._last.get(kind)
        if last is None:
            self._last[kind] = (progress, now)
            return None
        before, since = last
        if progress.sent < before.sent or progress.acked < before.acked:
            self._last[kind] = (progress, now)  # a new peer connection: counters restarted
            return None
        grew_sent = progress.sent > before.sent
        grew_acked = progress.acked > before.acked or kind not in self._acks_seen
        if grew_sent and grew_acked:
            self._last[kind] = (progress, now)
            return None
        stalled = now - since
        return stalled if stalled >= self.timeout else None
