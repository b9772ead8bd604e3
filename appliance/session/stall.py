"""Media-plane watch, pure: outbound counters that stop growing while a track should send."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.session.model import TrackKind


@dataclass(frozen=True)
class Progress:
    """Outbound media counters for one kind: bytes we sent, and far-end reports about them."""

    sent: int = 0
    acked: int = 0  # RTCP receiver reports seen (RTT measurements + packets the far end got)


@dataclass(frozen=True)
class StallWatch:
    """When each sending track's counters last grew.

    `acked` only counts once the far end has ever reported (a server that never sends receiver
    reports must not look stalled); `sent` always counts. Having seen reports is remembered
    across resets: after the SDK rebuilt its peer connection into a black hole, bytes still
    leave but no report ever comes back, and that is exactly the stall to catch.
    """

    last: tuple[tuple[TrackKind, Progress, float], ...] = ()  # kind, counters, grew at
    acks_seen: frozenset[TrackKind] = frozenset()

    def _entry(self, kind: TrackKind) -> tuple[Progress, float] | None:
        for k, progress, since in self.last:
            if k is kind:
                return progress, since
        return None

    def reset(self, kind: TrackKind | None = None) -> StallWatch:
        """Start timing afresh (after a join, a mute, a new publication)."""
        kept = () if kind is None else tuple(e for e in self.last if e[0] is not kind)
        return self if kept == self.last else replace(self, last=kept)

    def observe(self, kind: TrackKind, now: float, progress: Progress | None,
                sending: bool) -> StallWatch:
        """Feed one sample of `kind`; `sending` says whether it should be sending right now.

        A sample without `kind` while it should be sending is no evidence of progress.
        """
        if not sending:
            return self.reset(kind)
        if progress is None:
            return self
        seen = self.acks_seen | {kind} if progress.acked else self.acks_seen
        entry = self._entry(kind)
        since = now
        if entry is not None:
            before, since = entry
            if progress.sent < before.sent or progress.acked < before.acked:
                # A new peer connection (the SDK rebuilt it): the counters restarted. That is
                # not progress: keep timing from the last real growth, from the new baseline.
                others = tuple(e for e in self.last if e[0] is not kind)
                return replace(self, last=(*others, (kind, progress, since)), acks_seen=seen)
            grew_sent = progress.sent > before.sent
            grew_acked = progress.acked > before.acked or kind not in seen
            if not (grew_sent and grew_acked):
                return replace(self, acks_seen=seen)
            since = now
        others = tuple(e for e in self.last if e[0] is not kind)
        return replace(self, last=(*others, (kind, progress, since)), acks_seen=seen)

    def watching(self, kind: TrackKind) -> bool:
        return self._entry(kind) is not None

    def arm(self, kind: TrackKind, now: float) -> StallWatch:
        """A new publication or an unmute at `now`: it must show progress from here on."""
        others = tuple(e for e in self.last if e[0] is not kind)
        return replace(self, last=(*others, (kind, Progress(), now)))

    def stalled_for(self, kind: TrackKind, now: float) -> float:
        """Seconds since `kind`'s counters last grew (0 while unwatched)."""
        entry = self._entry(kind)
        return 0.0 if entry is None else max(0.0, now - entry[1])
