"""Data packets at the double: the participants' data channels, user packets and RPC routing."""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING

from aiortc import RTCDataChannel
from google.protobuf.message import DecodeError
from livekit.protocol import models

if TYPE_CHECKING:
    from appliance.devserver.model import Room
    from appliance.devserver.participant import Participant

log = logging.getLogger(__name__)

RELIABLE, LOSSY = "_reliable", "_lossy"
# Reliable packets for a participant whose channel is not open yet wait here, as a server's
# buffer would; lossy ones are dropped, as LiveKit drops them.
_PENDING_MAX = 256


class DataChannels:
    """One participant's data channels: what it sends is routed, what others send reaches it."""

    def __init__(self, owner: Participant) -> None:
        self._owner = owner
        self._upstream: dict[str, RTCDataChannel] = {}  # the client opened these (publisher)
        self._downstream: dict[str, RTCDataChannel] = {}  # the double opened these (subscriber)
        self._pending: collections.deque[bytes] = collections.deque(maxlen=_PENDING_MAX)
        self.received = 0  # packets this participant sent (for tests and benches)
        self.delivered = 0  # packets delivered to it

    def add(self, channel: RTCDataChannel, *, downstream: bool = False) -> None:
        """Take a data channel: one the client announced, or one the double created."""
        if channel.label not in (RELIABLE, LOSSY):
            log.debug("%s: ignoring data channel %r", self._owner.identity, channel.label)
            return
        (self._downstream if downstream else self._upstream)[channel.label] = channel

        @channel.on("message")
        def _message(message: bytes | str) -> None:
            if isinstance(message, bytes):
                self._receive(message, reliable=channel.label == RELIABLE)

        @channel.on("open")
        def _open() -> None:
            self._flush()

        if channel.readyState == "open":
            self._flush()

    def _channel(self, label: str) -> RTCDataChannel | None:
        # The SDK reads what the server sends on the subscriber connection's channels; with a
        # single peer connection, on the channels it opened itself.
        for table in (self._downstream, self._upstream):
            channel = table.get(label)
            if channel is not None and channel.readyState == "open":
                return channel
        return None

    def send(self, data: bytes, *, reliable: bool) -> bool:
        """Send a serialized DataPacket to this participant; False when it was dropped."""
        channel = self._channel(RELIABLE if reliable else LOSSY)
        if channel is None and not reliable:
            channel = self._channel(RELIABLE)  # no lossy channel yet: better late than never
        if channel is None:
            if reliable:
                self._pending.append(data)
            return False
        channel.send(data)
        self.delivered += 1
        return True

    def _flush(self) -> None:
        while self._pending and (channel := self._channel(RELIABLE)) is not None:
            channel.send(self._pending.popleft())
            self.delivered += 1

    def _receive(self, raw: bytes, *, reliable: bool) -> None:
        try:
            packet = models.DataPacket.FromString(raw)
        except DecodeError:
            log.info("%s: undecodable data packet (%d bytes)", self._owner.identity, len(raw))
            return
        self.received += 1
        route(self._owner, packet, reliable=reliable)


def destinations(packet: models.DataPacket) -> tuple[set[str], set[str]]:
    """Identities and sids a packet is addressed to (both empty: everyone)."""
    identities = set(packet.destination_identities)
    sids: set[str] = set()
    if packet.HasField("user"):
        identities.update(packet.user.destination_identities)
        sids.update(packet.user.destination_sids)
    return identities, sids


def route(sender: Participant, packet: models.DataPacket, *, reliable: bool) -> int:
    """Forward a packet a participant sent to the others it names; returns how many got it."""
    if not sender.permission.can_publish_data:
        log.info("%s: dropped a data packet (no canPublishData)", sender.identity)
        return 0
    # As LiveKit does: the server, not the sender, says who sent it.
    packet.participant_identity = sender.identity
    packet.participant_sid = sender.sid
    if packet.HasField("user"):
        packet.user.participant_identity = sender.identity
        packet.user.participant_sid = sender.sid
    return deliver(sender.room, packet, reliable=reliable, sender=sender)


def deliver(room: Room, packet: models.DataPacket, *, reliable: bool,
            sender: Participant | None = None) -> int:
    """Send a packet to the room's participants it is addressed to (everyone but the sender)."""
    identities, sids = destinations(packet)
    data = packet.SerializeToString()
    count = 0
    for member in room.participants.values():
        if member is sender:
            continue
        if (identities or sids) and member.identity not in identities and member.sid not in sids:
            continue
        count += member.data.send(data, reliable=reliable)
    sender_name = sender.identity if sender is not None else "the API"
    log.debug("%s data from %s to %d participant(s)", packet.WhichOneof("value"), sender_name,
              count)
    return count
