"""The one module that touches livekit.rtc.Room: a fresh Room per join, SDK callbacks -> events."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from livekit import rtc

from appliance.claims import token_expiry
from appliance.remote.rpc import RemoteRefused
from appliance.rtc.compat import refreshed_token, release_handles
from appliance.session.link import JoinFailed, looks_like_auth
from appliance.session.model import (
    ConnectionQualityChanged,
    Event,
    LocalTrackMuted,
    ParticipantJoined,
    ParticipantLeft,
    ProbeVerdict,
    Quality,
    RoomDisconnected,
    RoomReconnected,
    RoomReconnecting,
    TokenRefreshed,
    TrackKind,
    TrackState,
    TrackStateChanged,
)
from appliance.session.stall import Progress

log = logging.getLogger(__name__)

# A leave the server never answers must not hold up a shutdown (systemd gives us 5 s in total).
DISCONNECT_TIMEOUT = 1.5
PROBE_TIMEOUT = 2.0

QUALITIES = {
    rtc.ConnectionQuality.QUALITY_EXCELLENT: Quality.EXCELLENT,
    rtc.ConnectionQuality.QUALITY_GOOD: Quality.GOOD,
    rtc.ConnectionQuality.QUALITY_POOR: Quality.POOR,
    rtc.ConnectionQuality.QUALITY_LOST: Quality.LOST,
}
SOURCES = {TrackKind.CAMERA: rtc.TrackSource.SOURCE_CAMERA,
           TrackKind.MICROPHONE: rtc.TrackSource.SOURCE_MICROPHONE}
STATS_KINDS = {"audio": TrackKind.MICROPHONE, "video": TrackKind.CAMERA}


@runtime_checkable
class RemoteTrackSink(Protocol):
    """Optional media-layer hooks: the speaker plays what the room sends, the camera says how
    it is published (codec, layers)."""

    def plays_remote_audio(self) -> bool:
        """Whether a speaker is configured: only then is the room's audio worth receiving."""
        ...

    def remote_track_subscribed(self, identity: str, track: rtc.RemoteTrack) -> None: ...

    def remote_track_unsubscribed(self, identity: str, track: rtc.RemoteTrack) -> None: ...

    def publish_options(self, kind: TrackKind) -> rtc.TrackPublishOptions: ...


def disconnect_reason_name(reason: int) -> str:
    try:
        return str(rtc.DisconnectReason.Name(reason))  # type: ignore[arg-type]
    except ValueError:
        return f"REASON_{reason}"


RpcHandler = Callable[[str, str], Awaitable[str]]  # (caller identity, payload) -> reply


def _rpc_adapter(handler: RpcHandler) -> Callable[[rtc.RpcInvocationData], Awaitable[str]]:
    """Our handler as an SDK RPC method: RemoteRefused becomes LiveKit's RpcError."""
    async def invoke(data: rtc.RpcInvocationData) -> str:
        try:
            return await handler(data.caller_identity, data.payload)
        except RemoteRefused as exc:
            raise rtc.RpcError(exc.code, exc.message) from None
    return invoke


def _feedback_packets(items: Any) -> int:
    """Packets a connection received that are not remote media: RTCP feedback, data."""
    received = media = 0
    for item in items:
        which = item.WhichOneof("stats")
        if which == "transport":
            received += item.transport.transport.packets_received
        elif which == "inbound_rtp":
            media += item.inbound_rtp.received.packets_received
    return max(0, received - media)


def _track(kind: TrackKind, state: TrackState, reason: str = "",
           muted: bool = False) -> Callable[[float], Event]:
    return lambda at: TrackStateChanged(at, kind, state, reason, muted)


class LiveKitLink:
    """RoomLink over the real SDK. Events from a room we already dropped are ignored by number."""

    def __init__(self, post: Callable[[Event], None], *,
                 clock: Callable[[], float] = time.monotonic,
                 on_token: Callable[[str], None] | None = None,
                 sink: RemoteTrackSink | None = None,
                 options: rtc.RoomOptions | None = None,
                 rpc_methods: Mapping[str, RpcHandler] | None = None) -> None:
        self._post = post
        self._clock = clock
        self._on_token = on_token
        self._sink = sink
        # The kiosk has no screen: it joins with auto_subscribe off and subscribes to remote
        # audio only, and only when a speaker plays it (`_subscribe_audio`). Video would be
        # downstream bandwidth and receive work a Pi pays for nothing (bench/farend_video_bench).
        self._options = options or rtc.RoomOptions(auto_subscribe=False)
        self._room: rtc.Room | None = None
        self._gen = 0
        self._published: dict[TrackKind, tuple[Any, str]] = {}  # kind -> (track, publication sid)
        self._http: aiohttp.ClientSession | None = None  # for probes only
        self._rpc = dict(rpc_methods or {})
        self.rooms_built = 0

    @property
    def room(self) -> rtc.Room | None:
        return self._room

    def _emit(self, gen: int, make: Callable[[float], Event | None]) -> None:
        if gen != self._gen:
            return  # a callback from a room we already gave up on
        event = make(self._clock())
        if event is not None:
            self._post(event)

    def _kind_of(self, publication: Any) -> TrackKind | None:
        for kind, (_, sid) in self._published.items():
            if sid == getattr(publication, "sid", None):
                return kind
        source = getattr(publication, "source", None)
        for kind, src in SOURCES.items():
            if src == source:
                return kind
        return None

    def _wire(self, room: rtc.Room, gen: int) -> None:
        def local(participant: Any) -> bool:
            return isinstance(participant, rtc.LocalParticipant)

        def on_quality(participant: Any, quality: Any) -> None:
            if local(participant):
                q = QUALITIES.get(quality, Quality.UNKNOWN)
                self._emit(gen, lambda at: ConnectionQualityChanged(at, q))

        def on_muted(muted: bool) -> Callable[[Any, Any], None]:
            def handler(participant: Any, publication: Any) -> None:
                kind = self._kind_of(publication)
                if local(participant) and kind is not None:
                    self._emit(gen, lambda at: LocalTrackMuted(at, kind, muted))
            return handler

        def on_published(state: TrackState) -> Callable[..., None]:
            def handler(publication: Any, *_: Any) -> None:
                kind = self._kind_of(publication)
                if kind is not None and kind in self._published:
                    track, _sid = self._published[kind]
                    self._published[kind] = (track, publication.sid)  # republish: a new sid
                    self._emit(gen, _track(kind, state, "sdk", bool(publication.muted)))
            return handler

        def on_token() -> None:
            token = refreshed_token(room)
            if token is not None:
                if self._on_token is not None:
                    self._on_token(token)
                self._emit(gen, lambda at: TokenRefreshed(at, token_expiry(token)))

        def on_subscribed(track: Any, publication: Any, participant: Any) -> None:
            if self._sink is not None and gen == self._gen:
                self._sink.remote_track_subscribed(participant.identity, track)

        def on_unsubscribed(track: Any, publication: Any, participant: Any) -> None:
            if self._sink is not None and gen == self._gen:
                self._sink.remote_track_unsubscribed(participant.identity, track)

        room.on("reconnecting", lambda: self._emit(gen, RoomReconnecting))
        room.on("reconnected", lambda: self._emit(gen, RoomReconnected))
        room.on("disconnected", lambda reason: self._emit(gen, lambda at: RoomDisconnected(
            at, disconnect_reason_name(reason),
            client_initiated=reason == rtc.DisconnectReason.CLIENT_INITIATED)))
        room.on("participant_connected",
                lambda p: self._emit(gen, lambda at: ParticipantJoined(at, p.identity)))
        room.on("participant_disconnected",
                lambda p: self._emit(gen, lambda at: ParticipantLeft(at, p.identity)))
        room.on("connection_quality_changed", on_quality)
        room.on("track_muted", on_muted(True))
        room.on("track_unmuted", on_muted(False))
        room.on("local_track_published", on_published(TrackState.PUBLISHED))
        room.on("local_track_republished", on_published(TrackState.PUBLISHED))
        room.on("token_refreshed", on_token)
        room.on("track_subscribed", on_subscribed)
        room.on("track_published", lambda publication, participant: self._subscribe_audio(
            publication) if gen == self._gen else None)
        # After its own full reconnect the SDK announces the room's tracks again before its
        # signalling is confirmed, and drops the subscriptions asked for then: ask again once
        # it says it is back (a no-op after a resume, which kept them).
        room.on("reconnected", lambda: self._subscribe_all(room) if gen == self._gen else None)
        room.on("track_unsubscribed", on_unsubscribed)

    async def connect(self, url: str, token: str) -> frozenset[str]:
        await self.disconnect()  # never two rooms: a leftover one is left first
        self._gen += 1
        gen = self._gen
        room = rtc.Room()
        self.rooms_built += 1
        self._wire(room, gen)
        self._room = room
        try:
            await room.connect(url, token, self._options)
        except rtc.ConnectError as exc:
            self._room = None
            self._gen += 1
            raise JoinFailed(exc.message, auth=looks_like_auth(exc.message)) from None
        except BaseException:
            self._room = None
            self._gen += 1
            raise
        for method, handler in self._rpc.items():
            room.local_participant.register_rpc_method(method, _rpc_adapter(handler))
        # Tracks already in the room come with the join, without track_published events; a
        # rejoin of ours is a new Room and passes here again.
        self._subscribe_all(room)
        return frozenset(p.identity for p in room.remote_participants.values())

    def _subscribe_all(self, room: rtc.Room) -> None:
        for participant in room.remote_participants.values():
            for publication in participant.track_publications.values():
                self._subscribe_audio(publication)

    def _subscribe_audio(self, publication: Any) -> None:
        """Subscribe to a remote audio track when a speaker will play it; video never."""
        if (self._sink is not None and self._options.auto_subscribe is False
                and publication.kind == rtc.TrackKind.KIND_AUDIO
                and self._sink.plays_remote_audio()):
            publication.set_subscribed(True)

    async def set_attributes(self, attributes: Mapping[str, str]) -> None:
        """Merge `attributes` into our participant's (needs canUpdateOwnMetadata)."""
        room = self._room
        if room is None or not room.isconnected():
            raise RuntimeError("not in a room")
        await room.local_participant.set_attributes(dict(attributes))

    async def disconnect(self) -> None:
        room, self._room = self._room, None
        self._gen += 1  # whatever that room says from now on is history
        self._published.clear()
        if room is None:
            return
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT):
                await room.disconnect()
        except TimeoutError:
            log.warning("leaving the room took over %.0f s; dropping it", DISCONNECT_TIMEOUT)
            return  # still in use natively: leave its handles to the collector
        except (rtc.ConnectError, RuntimeError) as exc:
            log.warning("leaving the room failed: %s", exc)
        release_handles(room)

    async def publish(self, tracks: Mapping[TrackKind, Any], *, camera: bool) -> None:
        room = self._room
        if room is None or not room.isconnected():
            return
        participant = room.local_participant
        for kind, track in tracks.items():
            if kind is TrackKind.CAMERA and not camera:
                continue
            known = self._published.get(kind)
            if known is not None and known[0] is track and known[1] in (
                    participant.track_publications):
                continue  # already on air
            if known is not None and known[1] in participant.track_publications:
                await self.unpublish(kind)  # the device was re-acquired: a new track object
            gen = self._gen
            self._emit(gen, _track(kind, TrackState.PUBLISHING))
            options = (self._sink.publish_options(kind) if self._sink is not None
                       else rtc.TrackPublishOptions(source=SOURCES[kind], simulcast=False))
            try:
                publication = await participant.publish_track(track, options)
            except rtc.participant.PublishTrackError as exc:
                log.warning("publishing the %s failed: %s", kind.value, exc)
                self._emit(gen, _track(kind, TrackState.ACQUIRED, f"publish failed: {exc}"))
                continue
            if gen != self._gen:
                continue
            self._published[kind] = (track, publication.sid)
            self._emit(gen, _track(kind, TrackState.PUBLISHED, muted=bool(publication.muted)))

    async def unpublish(self, kind: TrackKind) -> None:
        room, known = self._room, self._published.pop(kind, None)
        if room is None or known is None or not room.isconnected():
            return
        try:
            await room.local_participant.unpublish_track(known[1])
        except rtc.participant.UnpublishTrackError as exc:
            log.warning("unpublishing the %s failed: %s", kind.value, exc)
        self._emit(self._gen, _track(kind, TrackState.ACQUIRED, "unpublished"))

    async def progress(self) -> Mapping[TrackKind, Progress]:
        room = self._room
        if room is None or not room.isconnected():
            return {}
        stats = await room.get_rtc_stats()
        sent: dict[TrackKind, int] = {}
        acked: dict[TrackKind, int] = {}
        for item in [*stats.publisher_stats, *stats.subscriber_stats]:
            which = item.WhichOneof("stats")
            if which == "outbound_rtp":
                kind = STATS_KINDS.get(item.outbound_rtp.stream.kind)
                if kind is not None:
                    sent[kind] = sent.get(kind, 0) + item.outbound_rtp.sent.bytes_sent
            elif which == "remote_inbound_rtp":
                ri = item.remote_inbound_rtp
                kind = STATS_KINDS.get(ri.stream.kind)
                if kind is not None:
                    acked[kind] = (acked.get(kind, 0) + ri.received.packets_received
                                   + ri.remote_inbound.round_trip_time_measurements)
        # Receiver reports come every second or few; the server's other feedback on the
        # publishing connection (transport-wide congestion control, REMB, NACK) comes many
        # times a second and stops at once when media stops arriving there. Counted as the
        # packets that connection received beyond the remote media it carries.
        feedback = _feedback_packets(stats.publisher_stats)
        for kind in sent:
            acked[kind] = acked.get(kind, 0) + feedback
        return {k: Progress(sent.get(k, 0), acked.get(k, 0)) for k in set(sent) | set(acked)}

    async def probe(self, url: str, token: str) -> ProbeVerdict:
        """GET <server>/rtc/validate with the token: what LiveKit answers before a join."""
        parts = urlsplit(url)
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        base = urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT))
        try:
            async with self._http.get(f"{base}/rtc/validate",
                                      headers={"Authorization": f"Bearer {token}"}) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError):
            return ProbeVerdict.UNREACHABLE
        if status == 200:
            return ProbeVerdict.OK
        if status in (401, 403):
            return ProbeVerdict.AUTH
        if status in (429, 503):
            return ProbeVerdict.BUSY
        return ProbeVerdict.UNREACHABLE

    async def aclose(self) -> None:
        await self.disconnect()
        http, self._http = self._http, None
        if http is not None:
            await http.close()
