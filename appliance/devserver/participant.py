"""One participant's signalling and media at the double: publishing, subscribing, resuming."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web
from aiortc import RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from livekit.protocol import models, rtc

from appliance.devserver import peer, rtcpatch, simulcast
from appliance.devserver.data import DataChannels
from appliance.devserver.media import Fanout, ForwardTrack
from appliance.devserver.model import PublishedTrack, Room, new_sid, track_info_from_request
from appliance.devserver.outbox import Outbox
from appliance.devserver.stats import TrackStats
from appliance.devserver.subscriptions import Subscriptions

if TYPE_CHECKING:
    from appliance.devserver.hub import Hub

log = logging.getLogger(__name__)

RECEIVING = ("recvonly", "sendrecv")  # our view: the client sends on this section


@dataclass
class Outgoing:
    """One track forwarded to this participant."""

    track: PublishedTrack
    forward: ForwardTrack
    transceiver: RTCRtpTransceiver | None = None


def _packet_counter(receiver: object) -> Callable[[], int]:
    return lambda: rtcpatch.packet_counts.get(receiver, 0)


def _byte_counter(receiver: object) -> Callable[[], int]:
    return lambda: rtcpatch.byte_counts.get(receiver, 0)


class Participant:
    """A participant: identity, tracks, peer connections and (while connected) its socket."""

    def __init__(self, hub: Hub, room: Room, identity: str, name: str, *, single_pc: bool,
                 can_publish: bool = True, can_subscribe: bool = True,
                 can_publish_data: bool = True, can_update_metadata: bool = False,
                 metadata: str = "", attributes: dict[str, str] | None = None,
                 auto_subscribe: bool = True) -> None:
        self.hub = hub
        self.room = room
        self.identity = identity
        self.name = name
        self.metadata = metadata
        self.attributes: dict[str, str] = dict(attributes or {})
        self.sid = new_sid("PA_")
        self.single_pc = single_pc
        self.permission = models.ParticipantPermission(
            can_subscribe=can_subscribe, can_publish=can_publish,
            can_publish_data=can_publish_data, can_update_metadata=can_update_metadata)
        self.joined_at = time.time()
        self.version = 1
        self.state = models.ParticipantInfo.JOINED
        self.tracks: dict[str, PublishedTrack] = {}  # by track sid
        self.pending_adds: dict[str, rtc.AddTrackRequest] = {}  # by cid, awaiting media
        self.ws: web.WebSocketResponse | None = None
        self.publisher: RTCPeerConnection | None = None
        self.subscriber: RTCPeerConnection | None = None
        self.outgoing: dict[str, Outgoing] = {}  # by forwarded track sid
        self.incoming_mids: dict[str, str] = {}  # publisher mid -> our track sid
        self.dead_mids: set[str] = set()
        self.quality = models.ConnectionQuality.EXCELLENT
        self.quality_score = 5.0
        self.resumes = 0
        self._sub_offer_id = 0
        self._sub_negotiating = False
        self._sub_dirty = False
        self._pending_trickles: dict[int, list[str]] = {rtc.PUBLISHER: [], rtc.SUBSCRIBER: []}
        self._departure: asyncio.TimerHandle | None = None
        self._closed = False
        self._outbox = Outbox(identity, lambda: hub.faults.wait_unfrozen(identity))
        self.far_end = False  # a built-in far end (no socket, generated media)
        self.data = DataChannels(self)
        self.subscriptions = Subscriptions(self, auto=auto_subscribe)
        self.refused_updates = 0  # UpdateParticipantMetadata refused for want of the grant
        self.was_active = False  # a peer connection reached "connected" at least once
        self.quality_forced = False  # a fault set `quality`: the periodic grading leaves it

    @property
    def can_publish(self) -> bool:
        return self.permission.can_publish

    @property
    def can_subscribe(self) -> bool:
        return self.permission.can_subscribe

    @property
    def connected(self) -> bool:
        """A signalling socket is attached (False while a dropped session awaits its resume)."""
        return self.ws is not None

    # ----- identity and announcements -------------------------------------------------------

    def info(self) -> models.ParticipantInfo:
        """The participant as the protocol describes it to others."""
        return models.ParticipantInfo(
            sid=self.sid,
            identity=self.identity,
            name=self.name,
            state=self.state,
            tracks=[t.info for t in self.tracks.values()],
            joined_at=int(self.joined_at),
            joined_at_ms=int(self.joined_at * 1000),
            version=self.version,
            is_publisher=bool(self.tracks),
            permission=self.permission,
            metadata=self.metadata,
            attributes=self.attributes,
        )

    def touch(self) -> None:
        """Bump the version so the SDK applies the next update about us."""
        self.version += 1

    async def send(self, message: rtc.SignalResponse) -> bool:
        """Queue a signal message for this participant's socket; False when there is none."""
        if self.ws is None or self.ws.closed:
            return False
        return self._outbox.put(message.SerializeToString())

    # ----- the socket loop -------------------------------------------------------------------

    async def serve(self, ws: web.WebSocketResponse) -> None:
        """Read this participant's signal requests in order until the socket closes."""
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                continue
            await self.hub.faults.wait_unfrozen(self.identity)
            if ws is not self.ws:
                break  # replaced by a resume, or dropped by a fault
            try:
                await self.handle(rtc.SignalRequest.FromString(msg.data))
            except Exception:  # one bad message must not end the session; log it whole
                log.exception("%s: failed to handle a signal request", self.identity)

    async def handle(self, req: rtc.SignalRequest) -> None:
        """Dispatch one SignalRequest."""
        kind = req.WhichOneof("message")
        if kind == "offer":
            await self._on_offer(req.offer)
        elif kind == "answer":
            await self._on_answer(req.answer)
        elif kind == "trickle":
            await self._on_trickle(req.trickle)
        elif kind == "add_track":
            await self._on_add_track(req.add_track)
        elif kind == "mute":
            await self.set_muted(req.mute.sid, req.mute.muted, from_client=True)
        elif kind == "ping_req":
            pong = rtc.Pong(last_ping_timestamp=req.ping_req.timestamp,
                            timestamp=int(time.time() * 1000))
            await self.send(rtc.SignalResponse(pong_resp=pong))
        elif kind == "ping":
            await self.send(rtc.SignalResponse(pong=int(time.time() * 1000)))
        elif kind == "leave":
            log.info("%s left (client request)", self.identity)
            await self.hub.remove(self, models.CLIENT_INITIATED)
        elif kind == "update_metadata":
            await self._on_update_metadata(req.update_metadata)
        elif kind == "subscription":
            await self.subscriptions.update(req.subscription)
        elif kind == "sync_state":
            log.debug("%s: sync state after resume", self.identity)
            await self.subscriptions.update(req.sync_state.subscription)
        else:
            log.debug("%s: ignoring %s", self.identity, kind)

    async def _on_update_metadata(self, req: rtc.UpdateParticipantMetadata) -> None:
        # LiveKit refuses without canUpdateOwnMetadata; with a request id it says so.
        if not self.permission.can_update_metadata:
            log.info("%s: refused metadata update (no canUpdateOwnMetadata)", self.identity)
            self.refused_updates += 1
            reason = rtc.RequestResponse.NOT_ALLOWED
        else:
            reason = rtc.RequestResponse.OK
            await self.hub.update_participant(self, name=req.name or None,
                                              metadata=req.metadata or None,
                                              attributes=dict(req.attributes))
        if req.request_id:
            await self.send(rtc.SignalResponse(request_response=rtc.RequestResponse(
                request_id=req.request_id, reason=reason,
                message="" if reason == rtc.RequestResponse.OK
                else "does not have permission to update own metadata")))

    # ----- publishing ------------------------------------------------------------------------

    async def _on_add_track(self, req: rtc.AddTrackRequest) -> None:
        if not self.can_publish:
            # No track_published: the SDK's publish times out, as with a real server's refusal.
            log.warning("%s: refused add_track (token has canPublish=false)", self.identity)
            return
        kind = "audio" if req.type == models.AUDIO else "video"
        sid = new_sid("TR_")
        info = track_info_from_request(sid, kind, req)
        self.pending_adds[req.cid] = req
        track = PublishedTrack(sid=sid, cid=req.cid, kind=kind, owner=self, info=info,
                               stats=TrackStats(kind=kind))
        self.tracks[sid] = track
        await self.send(rtc.SignalResponse(track_published=rtc.TrackPublishedResponse(
            cid=req.cid, track=info)))
        self.touch()
        await self.hub.announce(self)

    async def _on_offer(self, offer: rtc.SessionDescription) -> None:
        if self.publisher is None:
            self.publisher = peer.new_peer_connection()
            self._watch(self.publisher)
        pc = self.publisher
        await peer.apply_offer(pc, offer.sdp)
        await self._flush_trickles(rtc.PUBLISHER)
        await self._sync_incoming(pc)
        mid_to_track: dict[str, str] = {}
        if self.single_pc:
            mid_to_track = self._attach_outgoing(pc)
        layers = simulcast.offered_layers(offer.sdp)
        if layers:
            for transport in peer.dtls_transports(pc):
                transport._rtp_header_extensions_map.configure(
                    simulcast.rid_extensions(offer.sdp))
            for transceiver in pc.getTransceivers():
                rids = layers.get(transceiver.mid or "")
                if rids and transceiver.receiver not in simulcast.pickers:
                    simulcast.pickers[transceiver.receiver] = simulcast.LayerPicker(rids)
        sdp = await peer.answer(pc, offer.sdp)
        answer = rtc.SessionDescription(type="answer", sdp=sdp, id=offer.id,
                                        mid_to_track_id=mid_to_track)
        await self.send(rtc.SignalResponse(answer=answer))
        self.hub.faults.apply_black_hole(self)

    async def _sync_incoming(self, pc: RTCPeerConnection) -> None:
        """Start reading newly offered sections; unpublish the ones the client stopped sending."""
        for transceiver in pc.getTransceivers():
            mid = transceiver.mid
            if mid is None:
                continue
            receiving = peer.offer_direction(transceiver) in RECEIVING
            sid = self.incoming_mids.get(mid)
            if sid is not None and not receiving:
                await self.unpublish(sid)
            elif sid is None and receiving and mid not in self.dead_mids:
                remote = transceiver.receiver.track
                track = self._match_pending(remote.id, transceiver.kind)
                if track is None:
                    continue
                self.incoming_mids[mid] = track.sid
                track.mid = mid
                track.info.mid = mid
                codecs = getattr(transceiver, "_codecs", None)  # what was really negotiated
                if codecs:
                    track.info.mime_type = codecs[0].mimeType
                track.receiver = transceiver.receiver
                track.stats.packets_fn = _packet_counter(transceiver.receiver)
                track.stats.bytes_fn = _byte_counter(transceiver.receiver)
                track.fanout = Fanout(remote, track.stats, measure=True,
                                      on_change=self.hub.notify, name=f"{self.identity}-{mid}")
                log.info("%s publishes %s %s (mid %s)", self.identity, track.kind, track.sid, mid)
                await self.hub.track_ready(track)

    def _match_pending(self, msid_track_id: str, kind: str) -> PublishedTrack | None:
        cid = msid_track_id if msid_track_id in self.pending_adds else None
        if cid is None:  # the SDK normally uses the track id as cid; fall back to the kind
            cid = next((c for c, r in self.pending_adds.items()
                        if (r.type == models.AUDIO) == (kind == "audio")), None)
        if cid is None:
            return None
        del self.pending_adds[cid]
        return next((t for t in self.tracks.values() if t.cid == cid), None)

    async def unpublish(self, sid: str) -> None:
        """Forget a published track (the client stopped sending it) and tell the room."""
        track = self.tracks.pop(sid, None)
        if track is None:
            return
        if track.mid is not None:
            self.incoming_mids.pop(track.mid, None)
            self.dead_mids.add(track.mid)
        log.info("%s unpublished %s", self.identity, sid)
        if track.fanout is not None:
            await track.fanout.aclose()
        self.touch()
        await self.hub.announce(self)
        for other in self.room.others(self):
            await other.drop_outgoing(sid)
        self.hub.notify()

    async def set_muted(self, sid: str, muted: bool, *, from_client: bool) -> bool:
        """Mark a track (un)muted and tell the others; from the server, tell the owner first."""
        track = self.tracks.get(sid)
        if track is None:
            return False
        if not from_client:
            await self.send(rtc.SignalResponse(mute=rtc.MuteTrackRequest(sid=sid, muted=muted)))
        if track.info.muted == muted:
            return True  # the SDK echoes a server-side mute back: a repeat is a no-op
        track.info.muted = muted
        self.touch()
        await self.hub.announce(self)
        self.hub.notify()
        return True

    # ----- subscribing -----------------------------------------------------------------------

    async def offer(self, track: PublishedTrack, *, request_section: bool = True) -> None:
        """Another participant's track has media: forward it if this one wants it."""
        if self.subscriptions.offered(track):
            await self.forward(track, request_section=request_section)

    async def forward(self, track: PublishedTrack, *, request_section: bool = True) -> None:
        """Start sending another participant's track to this one."""
        if not self.can_subscribe or track.sid in self.outgoing or track.fanout is None:
            return
        out = Outgoing(track=track, forward=track.fanout.subscribe())
        self.outgoing[track.sid] = out
        if self.single_pc:
            # Only the client offers on a single peer connection: ask it for a fresh receive
            # section and attach the track when its offer arrives.
            if request_section:
                await self._request_sections([track])
            return
        first = self.subscriber is None
        if self.subscriber is None:
            self.subscriber = peer.new_peer_connection()
            self._watch(self.subscriber)
        out.transceiver = self.subscriber.addTransceiver(out.forward, direction="sendonly")
        if first:
            # The SDK expects the subscriber's data channels in the first offer. They come after
            # the first media section on purpose: aiortc, with MAX_BUNDLE, otherwise stops the
            # shared transport when the answer bundles onto a data section created first.
            self.data.add(self.subscriber.createDataChannel("_reliable", ordered=True),
                          downstream=True)
            self.data.add(self.subscriber.createDataChannel("_lossy", ordered=False,
                                                            maxRetransmits=0), downstream=True)
        out.transceiver.sender._stream_id = f"{track.owner.sid}|{track.sid}"
        await self.negotiate_subscriber()
        self.hub.faults.apply_black_hole(self)

    async def _request_sections(self, tracks: list[PublishedTrack]) -> None:
        audios = sum(1 for t in tracks if t.kind == "audio")
        need = rtc.MediaSectionsRequirement(num_audios=audios, num_videos=len(tracks) - audios)
        await self.send(rtc.SignalResponse(media_sections_requirement=need))

    async def request_missing_sections(self) -> None:
        """Single PC: ask for sections for outgoing tracks the last offer had no room for."""
        waiting = [o.track for o in self.outgoing.values() if o.transceiver is None]
        if self.single_pc and waiting:
            await self._request_sections(waiting)

    def _attach_outgoing(self, pc: RTCPeerConnection) -> dict[str, str]:
        """Single PC: put waiting outgoing tracks on free receive-only sections of the offer."""
        mapping: dict[str, str] = {}
        for sid, out in self.outgoing.items():
            if out.transceiver is not None and out.transceiver.mid is not None:
                mapping[out.transceiver.mid] = sid
        for out in self.outgoing.values():
            if out.transceiver is not None:
                continue
            free = next((t for t in pc.getTransceivers()
                         if t.kind == out.track.kind and t.mid is not None
                         and peer.offer_direction(t) == "sendonly" and not peer.has_sender(t)
                         and t.mid not in self.dead_mids and t.mid not in mapping), None)
            if free is None or free.mid is None:
                continue
            free.sender.replaceTrack(out.forward)
            free.sender._stream_id = f"{out.track.owner.sid}|{out.track.sid}"
            free.direction = "sendrecv"
            out.transceiver = free
            mapping[free.mid] = out.track.sid
        return mapping

    async def drop_outgoing(self, sid: str) -> None:
        """Stop forwarding a track (ended, or unsubscribed); its section is never reused."""
        self.subscriptions.wanted.discard(sid)
        out = self.outgoing.pop(sid, None)
        if out is None:
            return
        if out.track.fanout is not None:
            out.track.fanout.unsubscribe(out.forward)
        if out.transceiver is not None:
            if out.transceiver.mid is not None:
                self.dead_mids.add(out.transceiver.mid)
            out.transceiver.sender.replaceTrack(None)
            out.transceiver.direction = "inactive"
            if not self.single_pc and not self._closed:
                await self.negotiate_subscriber()

    async def negotiate_subscriber(self) -> None:
        """Offer on the subscriber connection; one offer in flight, re-offer when it lands."""
        pc = self.subscriber
        if pc is None or self._closed:
            return
        if self._sub_negotiating:
            self._sub_dirty = True
            return
        self._sub_negotiating, self._sub_dirty = True, False
        await pc.setLocalDescription(await pc.createOffer())
        self._sub_offer_id += 1
        offer = rtc.SessionDescription(type="offer", sdp=pc.localDescription.sdp,
                                       id=self._sub_offer_id)
        if not await self.send(rtc.SignalResponse(offer=offer)):
            self._sub_negotiating = False

    async def _on_answer(self, answer: rtc.SessionDescription) -> None:
        pc = self.subscriber
        if pc is None or pc.signalingState != "have-local-offer":
            log.debug("%s: answer without an offer in flight", self.identity)
            return
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        await self._flush_trickles(rtc.SUBSCRIBER)
        self._sub_negotiating = False
        if self._sub_dirty:
            await self.negotiate_subscriber()

    # ----- ICE -------------------------------------------------------------------------------

    async def _on_trickle(self, trickle: rtc.TrickleRequest) -> None:
        target = rtc.PUBLISHER if self.single_pc else trickle.target
        self._pending_trickles.setdefault(target, []).append(trickle.candidateInit)
        await self._flush_trickles(target)

    async def _flush_trickles(self, target: int) -> None:
        # Trickles can arrive before the description they belong to: apply them in order once
        # the peer connection has a remote description.
        pc = self.publisher if target == rtc.PUBLISHER else self.subscriber
        if pc is None or pc.remoteDescription is None:
            return
        pending, self._pending_trickles[target] = self._pending_trickles.get(target, []), []
        for candidate_init in pending:
            candidate = peer.parse_candidate(candidate_init)
            if candidate is not None:
                log.debug("%s: remote candidate for %s: %s", self.identity,
                          "publisher" if target == rtc.PUBLISHER else "subscriber", candidate_init)
                await pc.addIceCandidate(candidate)

    # ----- lifetime --------------------------------------------------------------------------

    def _watch(self, pc: RTCPeerConnection) -> None:
        """Follow a peer connection: the client's data channels, and ACTIVE once media connects."""
        pc.on("datachannel", self.data.add)

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "connected" and self.state == models.ParticipantInfo.JOINED:
                self.state = models.ParticipantInfo.ACTIVE
                self.was_active = True
                self.touch()
                self.hub.notify()

    def attach(self, ws: web.WebSocketResponse) -> web.WebSocketResponse | None:
        """Make `ws` this participant's socket; returns the one it replaces."""
        old, self.ws = self.ws, ws
        self._outbox.start(ws)
        if self._departure is not None:
            self._departure.cancel()
            self._departure = None
        return old

    def detach(self, ws: web.WebSocketResponse, departure_timeout: float) -> None:
        """The socket closed without a leave: keep the session for a resume, for a while."""
        if self.ws is not ws:
            return
        self.ws = None
        self._outbox.start(None)
        loop = asyncio.get_running_loop()
        self._departure = loop.call_later(departure_timeout, self.hub.depart_later, self)

    def peer_connections(self) -> list[RTCPeerConnection]:
        return [pc for pc in (self.publisher, self.subscriber) if pc is not None]

    async def close(self) -> None:
        """Close sockets, media and peer connections (safe to call twice)."""
        self._closed = True
        if self._departure is not None:
            self._departure.cancel()
            self._departure = None
        await self._outbox.flush(within=2.0)  # a leave queued just before must still go out
        self._outbox.start(None)
        ws, self.ws = self.ws, None
        if ws is not None and not ws.closed:
            await ws.close()
        for sid in list(self.outgoing):
            await self.drop_outgoing(sid)
        for track in self.tracks.values():
            if track.fanout is not None:
                await track.fanout.aclose()
        for pc in self.peer_connections():
            await pc.close()
        self.publisher = self.subscriber = None
