"""What a participant asked to receive: auto-subscribe and UpdateSubscription, as in LiveKit."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from livekit.protocol import models, rtc

if TYPE_CHECKING:
    from appliance.devserver.model import PublishedTrack
    from appliance.devserver.participant import Participant

log = logging.getLogger(__name__)


def auto_subscribe_from_query(query: dict[str, str]) -> bool:
    """/rtc's `auto_subscribe` parameter; absent means on (LiveKit: `boolValue`, "1"/"true")."""
    value = query.get("auto_subscribe")
    return True if value is None else value in ("1", "true")


def named_sids(update: rtc.UpdateSubscription) -> list[str]:
    """Every track sid an UpdateSubscription names, once each, in order.

    The SDK lists each track twice (`track_sids` and `participant_tracks`); LiveKit applies
    both lists the same way.
    """
    sids = [*update.track_sids, *(s for pt in update.participant_tracks for s in pt.track_sids)]
    return list(dict.fromkeys(sids))


class Subscriptions:
    """One participant's wanted tracks (LiveKit's "desired" subscriptions).

    With auto-subscribe (the default) every track published in the room is wanted once its
    media is available; without it nothing is forwarded until the client names the track in
    an UpdateSubscription. Unsubscribing stops the forwarding. A resume keeps the session and
    with it the subscriptions; the SyncState the SDK sends is applied like an update (as
    LiveKit's `Room.SyncState`). A full rejoin is a new participant: nothing carries over.
    """

    def __init__(self, owner: Participant, *, auto: bool) -> None:
        self._owner = owner
        self.auto = auto
        self.wanted: set[str] = set()  # track sids
        self.not_found = 0  # subscriptions refused: no such track in the room

    def offered(self, track: PublishedTrack) -> bool:
        """A track's media became available to this participant: is it to be forwarded?"""
        if self.auto:
            self.wanted.add(track.sid)
        return track.sid in self.wanted

    def forwarded(self) -> list[PublishedTrack]:
        """The tracks being sent to this participant now."""
        return [out.track for out in self._owner.outgoing.values()]

    async def update(self, update: rtc.UpdateSubscription) -> None:
        """Apply an UpdateSubscription: subscribe or unsubscribe each track it names."""
        owner = self._owner
        for sid in named_sids(update):
            if not update.subscribe:
                if sid in self.wanted or sid in owner.outgoing:
                    log.info("%s unsubscribes from %s", owner.identity, sid)
                self.wanted.discard(sid)
                await owner.drop_outgoing(sid)
                continue
            track = next((t for p in owner.room.others(owner) for t in p.tracks.values()
                          if t.sid == sid), None)
            if track is None:
                # LiveKit gives up on a track it cannot find and says so; the SDK emits
                # track_subscription_failed.
                self.not_found += 1
                await owner.send(rtc.SignalResponse(subscription_response=rtc.SubscriptionResponse(
                    track_sid=sid, err=models.SE_TRACK_NOTFOUND)))
                continue
            if sid not in self.wanted:
                log.info("%s subscribes to %s %s of %s", owner.identity, track.kind, sid,
                         track.owner.identity)
            self.wanted.add(sid)
            if track.ready:  # otherwise forwarded when its media arrives (Hub.track_ready)
                await owner.forward(track)
        owner.hub.notify()
