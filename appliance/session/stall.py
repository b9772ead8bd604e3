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
    acked: int = 0  # far-end feedback seen (receiver reports, RTT measurements, RTCP feedback)


@dataclass(frozen=True)
class Watch:
    """One sending track: the counters at the last growth (None: no sample yet), when that
    growth happened (or when sending began), and whether growth was ever seen since then."""

    baseline: Progress | None
    since: float
    proven: bool = False


@dataclass(frozen=True)
class StallWatch:
    """When each sending track's counters last grew, and whether they have grown at all.

    A track must *prove* it is flowing: sending begins unproven, the first sample only sets a
    baseline, and growth of both counters against it proves it. A rebuilt peer connection
    (counters restarting) is a new baseline, not progress. `acked` only counts once the far
    end has ever reported (a server that never reports must not look stalled); having seen
    reports is remembered across resets: after the SDK rebuilt its connection into a black
    hole, bytes still leave but no feedback comes back, and that is the stall to catch.
    """

    tracks: tuple[tuple[TrackKind, Watch], ...] = ()
    acks_seen: frozenset[TrackKind] = frozenset()

    def _get(self, kind: TrackKind) -> Watch | None:
        for k, watch in self.tracks:
            if k is kind:
                return watch
        return None

    def _put(self, kind: TrackKind, watch: Watch | None, seen: frozenset[TrackKind] | None = None
             ) -> StallWatch:
        others = tuple(e for e in self.tracks if e[0] is not kind)
        tracks = others if watch is None else (*others, (kind, watch))
        return replace(self, tracks=tracks, acks_seen=self.acks_seen if seen is None else seen)

    def watching(self, kind: TrackKind) -> bool:
        return self._get(kind) is not None

    def proven(self, kind: TrackKind) -> bool:
        watch = self._get(kind)
        return watch is not None and watch.proven

    def arm(self, kind: TrackKind, now: float) -> StallWatch:
        """Sending begins at `now`: unproven until its counters grow."""
        return self._put(kind, Watch(None, now))

    def reset(self, kind: TrackKind | None = None) -> StallWatch:
        """Stop watching (not sending any more)."""
        if kind is None:
            return self if not self.tracks else replace(self, tracks=())
        return self if self._get(kind) is None else self._put(kind, None)

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
        watch = self._get(kind) or Watch(None, now)
        before = watch.baseline
        if before is None or progress.sent < before.sent or progress.acked < before.acked:
            # The first sample, or a new connection's counters: a baseline, not progress.
            return self._put(kind, Watch(progress, watch.since, proven=False), seen)
        grew_sent = progress.sent > before.sent
        grew_acked = progress.acked > before.acked or kind not in seen
        if grew_sent and grew_acked:
            return self._put(kind, Watch(progress, now, proven=True), seen)
        return self._put(kind, watch, seen) if seen != self.acks_seen else self

    def stalled_for(self, kind: TrackKind, now: float) -> float:
        """Seconds since `kind`'s counters last grew, or since it began sending (0: unwatched)."""
        watch = self._get(kind)
        return 0.0 if watch is None else max(0.0, now - watch.since)
