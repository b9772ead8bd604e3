"""The seam to the room: the RoomLink Protocol (rtc/livekit.py, rtc/fake.py) and join errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from appliance.errors import ApplianceError
from appliance.session.model import ProbeVerdict, TrackKind
from appliance.session.stall import Progress

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


class RoomLink(Protocol):
    """One room at a time; each `connect` builds a fresh room. Events go to the `post` it got."""

    async def connect(self, url: str, token: str) -> frozenset[str]:
        """Join; returns the identities already there. Raises JoinFailed."""
        ...

    async def disconnect(self) -> None:
        """Leave (client-initiated); bounded in time, never raises for a dead server."""
        ...

    async def publish(self, tracks: Mapping[TrackKind, Any], *, camera: bool) -> None:
        """Publish what is not on air yet; posts PUBLISHING, then PUBLISHED (with the
        publication's muted flag) or ACQUIRED (failed)."""
        ...

    async def unpublish(self, kind: TrackKind) -> None: ...

    async def set_attributes(self, attributes: Mapping[str, str]) -> None:
        """Merge into our participant's attributes; RuntimeError when not in a room."""
        ...

    async def probe(self, url: str, token: str) -> ProbeVerdict:
        """Ask the server (LiveKit's `/rtc/validate`) whether a join with `token` would succeed;
        cheap for the server, never raises."""
        ...

    async def progress(self) -> Mapping[TrackKind, Progress]:
        """Outbound counters per published kind (empty when not in a room)."""
        ...

    async def aclose(self) -> None: ...
