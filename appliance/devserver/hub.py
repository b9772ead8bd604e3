"""The double's state and protocol flow: rooms, joins, resumes, broadcasts, forwarding."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import gzip
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from livekit.protocol import models, rtc

from appliance.devserver import auth
from appliance.devserver.faults import Faults
from appliance.devserver.model import PublishedTrack, Room, server_info
from appliance.devserver.participant import Participant
from appliance.devserver.subscriptions import auto_subscribe_from_query
from appliance.devserver.webhooks import Webhooks

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """Something a test may want to assert on: 'join', 'resume', 'resume_refused', 'leave'."""

    kind: str
    room: str
    identity: str
    at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """What a signalling connection asks for, from /rtc query parameters or a v1 join request."""

    single_pc: bool
    reconnect: bool
    participant_sid: str
    publisher_offer: rtc.SessionDescription | None
    auto_subscribe: bool = True


def parse_connect(path_v1: bool, query: dict[str, str]) -> ConnectRequest:
    """Decode the query of /rtc or /rtc/v1; raise AuthFailure(400) for a malformed one."""
    if not path_v1:
        return ConnectRequest(single_pc=False, reconnect=query.get("reconnect") in ("1", "true"),
                              participant_sid=query.get("sid", ""), publisher_offer=None,
                              auto_subscribe=auto_subscribe_from_query(query))
    raw = query.get("join_request")
    if not raw:
        raise auth.AuthFailure(400, "join_request is required")
    try:
        padded = raw + "=" * (-len(raw) % 4)
        wrapped = rtc.WrappedJoinRequest.FromString(base64.urlsafe_b64decode(padded))
        data = wrapped.join_request
        if wrapped.compression == rtc.WrappedJoinRequest.GZIP:
            data = gzip.decompress(data)
        join = rtc.JoinRequest.FromString(data)
    except (ValueError, OSError) as exc:
        raise auth.AuthFailure(400, f"cannot decode join request: {exc}") from exc
    has_offer = join.HasField("publisher_offer") and bool(join.publisher_offer.sdp)
    offer = join.publisher_offer if has_offer else None
    # As LiveKit: the join request's connection settings say it (absent: off).
    return ConnectRequest(single_pc=True, reconnect=join.reconnect,
                          participant_sid=join.participant_sid, publisher_offer=offer,
                          auto_subscribe=join.connection_settings.auto_subscribe)


class Hub:
    """Owns every room and participant; the HTTP layer hands it verified connections."""

    def __init__(self, api_key: str, api_secret: str, *, departure_timeout: float,
                 ping_interval: int, ping_timeout: int,
                 allowed_rooms: frozenset[str] | None = None,
                 webhooks: Webhooks | None = None) -> None:
        self.api_key, self.api_secret = api_key, api_secret
        self.allowed_rooms = allowed_rooms  # None: any room a valid token names
        self.departure_timeout = departure_timeout
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.rooms: dict[str, Room] = {}
        self.events: list[ServerEvent] = []
        self.faults = Faults(self)
        self.webhooks = webhooks if webhooks is not None else Webhooks((), api_key, api_secret)
        self.webhooks.on_change = self.notify
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # ----- observation -----------------------------------------------------------------------

    def notify(self) -> None:
        """Wake everything waiting in `wait_for` (state or figures changed)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], T], timeout: float,  # noqa: ASYNC109
                       what: str) -> T:
        """Wait until `predicate()` is truthy (re-checked on every change); return its value."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"devserver: timed out after {timeout} s waiting for {what}")
            changed = self._changed
            # Figures change dozens of times a second while media flows; the cap keeps a
            # predicate on something that never notifies (e.g. a clock) from hanging.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=min(remaining, 0.5))
        return value

    def record(self, kind: str, participant: Participant) -> None:
        self.events.append(ServerEvent(kind, participant.room.name, participant.identity,
                                       time.monotonic()))
        log.info("%s: %s in %s", kind, participant.identity, participant.room.name)
        self.notify()

    def all_participants(self) -> list[Participant]:
        return [p for room in self.rooms.values() for p in room.participants.values()]

    def select(self, identity: str | None) -> list[Participant]:
        """Participants with `identity` (every room), or all of them for None."""
        return [p for p in self.all_participants() if identity is None or p.identity == identity]

    def mint_token(self, identity: str, room: str, *,
                   ttl: datetime.timedelta = datetime.timedelta(hours=1)) -> str:
        return auth.mint_token(self.api_key, self.api_secret, identity, room, ttl=ttl)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----- connections -----------------------------------------------------------------------

    async def connect(self, ws: web.WebSocketResponse, grant: auth.Grant,
                      req: ConnectRequest) -> None:
        """Serve one upgraded signalling socket: join or resume, then its messages."""
        if req.reconnect:
            participant = await self._resume(ws, grant, req)
        else:
            participant = await self._join(ws, grant, req)
        if participant is None:
            await ws.close()
            return
        try:
            await participant.serve(ws)
        finally:
            if participant.ws is ws:
                log.info("%s: socket closed without leave; keeping the session %.0f s",
                         participant.identity, self.departure_timeout)
                participant.detach(ws, self.departure_timeout)
                self.notify()

    async def _join(self, ws: web.WebSocketResponse, grant: auth.Grant,
                    req: ConnectRequest) -> Participant:
        room = self.ensure_room(grant.room)
        old = room.participants.get(grant.identity)
        if old is not None:
            await old.send(rtc.SignalResponse(leave=rtc.LeaveRequest(
                action=rtc.LeaveRequest.DISCONNECT, reason=models.DUPLICATE_IDENTITY)))
            await self.remove(old, models.DUPLICATE_IDENTITY)
        participant = Participant(self, room, grant.identity, grant.name, single_pc=req.single_pc,
                                  can_publish=grant.can_publish, can_subscribe=grant.can_subscribe,
                                  can_publish_data=grant.can_publish_data,
                                  can_update_metadata=grant.can_update_metadata,
                                  metadata=grant.metadata, attributes=dict(grant.attributes),
                                  auto_subscribe=req.auto_subscribe)
        self.add_participant(participant)
        participant.attach(ws)
        join = rtc.JoinResponse(
            room=room.to_proto(),
            participant=participant.info(),
            other_participants=[p.info() for p in room.others(participant)],
            server_version=server_info().version,
            subscriber_primary=False,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            server_info=server_info(),
            server_region="loopback",
            enabled_publish_codecs=[models.Codec(mime="audio/opus"),
                                    models.Codec(mime="video/VP8"),
                                    models.Codec(mime="video/H264")],
        )
        await participant.send(rtc.SignalResponse(join=join))
        self.record("join", participant)
        self.webhooks.emit("participant_joined", room=room.to_proto(),
                           participant=participant.info())
        await self.announce(participant)
        ready = [t for p in room.others(participant) for t in p.tracks.values() if t.ready]
        for track in ready:
            await participant.offer(track, request_section=req.publisher_offer is None)
        if req.publisher_offer is not None:
            await participant.handle(rtc.SignalRequest(offer=req.publisher_offer))
            await participant.request_missing_sections()
        return participant

    async def _resume(self, ws: web.WebSocketResponse, grant: auth.Grant,
                      req: ConnectRequest) -> Participant | None:
        room = self.rooms.get(grant.room)
        participant = room.participants.get(grant.identity) if room is not None else None
        if (participant is None or participant.sid != req.participant_sid
                or self.faults.refuse_resumes):
            # What a server says for a session it does not know: rejoin from scratch.
            leave = rtc.LeaveRequest(action=rtc.LeaveRequest.RECONNECT, can_reconnect=True,
                                     reason=models.STATE_MISMATCH)
            await ws.send_bytes(rtc.SignalResponse(leave=leave).SerializeToString())
            self.events.append(ServerEvent("resume_refused", grant.room, grant.identity,
                                           time.monotonic()))
            self.notify()
            return None
        old = participant.attach(ws)
        if old is not None and not old.closed:
            await old.close()
        participant.resumes += 1
        await participant.send(rtc.SignalResponse(reconnect=rtc.ReconnectResponse(
            server_info=server_info())))
        others = [p.info() for p in participant.room.others(participant)]
        if others:
            await participant.send(rtc.SignalResponse(update=rtc.ParticipantUpdate(
                participants=others)))
        self.record("resume", participant)
        return participant

    # ----- rooms -----------------------------------------------------------------------------

    def ensure_room(self, name: str, *, empty_timeout: int | None = None,
                    max_participants: int = 0, metadata: str = "") -> Room:
        """The room called `name`, created (room_started) if it does not exist."""
        room = self.rooms.get(name)
        if room is not None:
            return room
        room = Room(name, metadata=metadata, max_participants=max_participants,
                    departure_timeout=max(1, round(self.departure_timeout)))
        if empty_timeout:
            room.empty_timeout = empty_timeout
        self.rooms[name] = room
        self._close_later(room, room.empty_timeout)
        log.info("room %s started", name)
        self.webhooks.emit("room_started", room=room.to_proto())
        self.notify()
        return room

    def add_participant(self, participant: Participant) -> None:
        room = participant.room
        room.participants[participant.identity] = participant
        if room.closing is not None:
            room.closing.cancel()
            room.closing = None

    def _close_later(self, room: Room, seconds: float) -> None:
        if room.closing is not None:
            room.closing.cancel()

        def close() -> None:
            room.closing = None
            if self.rooms.get(room.name) is room and not room.participants:
                self.spawn(self.close_room(room), f"close-{room.name}")

        room.closing = asyncio.get_running_loop().call_later(seconds, close)

    async def close_room(self, room: Room,
                         reason: models.DisconnectReason = models.UNKNOWN_REASON) -> None:
        """End a room: everyone in it is told to leave with `reason` (room_finished)."""
        if self.rooms.get(room.name) is not room:
            return
        for participant in list(room.participants.values()):
            await participant.send(rtc.SignalResponse(leave=rtc.LeaveRequest(
                action=rtc.LeaveRequest.DISCONNECT, reason=reason)))
            await self.remove(participant, reason)
        if room.closing is not None:
            room.closing.cancel()
            room.closing = None
        del self.rooms[room.name]
        log.info("room %s finished", room.name)
        self.webhooks.emit("room_finished", room=room.to_proto())
        self.notify()

    async def update_participant(self, participant: Participant, *, name: str | None = None,
                                 metadata: str | None = None,
                                 attributes: dict[str, str] | None = None,
                                 permission: models.ParticipantPermission | None = None) -> None:
        """Change what a participant shows and tell everyone, the participant too."""
        if name is not None:
            participant.name = name
        if metadata is not None:
            participant.metadata = metadata
        for key, value in (attributes or {}).items():
            # As LiveKit: an empty value deletes the attribute.
            if value:
                participant.attributes[key] = value
            else:
                participant.attributes.pop(key, None)
        if permission is not None:
            participant.permission.CopyFrom(permission)
        participant.touch()
        update = rtc.SignalResponse(update=rtc.ParticipantUpdate(participants=[participant.info()]))
        for member in participant.room.participants.values():
            await member.send(update)
        self.notify()

    # ----- room-wide effects -----------------------------------------------------------------

    async def announce(self, participant: Participant) -> None:
        """Tell everyone else in the room about this participant's current state."""
        update = rtc.SignalResponse(update=rtc.ParticipantUpdate(participants=[participant.info()]))
        for other in participant.room.others(participant):
            await other.send(update)
        self.notify()

    async def track_ready(self, track: PublishedTrack) -> None:
        """Media of a published track is available: forward it to everyone who wants it."""
        room = track.owner.room
        self.webhooks.emit("track_published", room=room.to_proto(),
                           participant=track.owner.info(), track=track.info)
        for other in track.owner.room.others(track.owner):
            await other.offer(track)
        self.notify()

    async def remove(self, participant: Participant, reason: models.DisconnectReason) -> None:
        """Take a participant out of its room, tell the others, close its media."""
        room = participant.room
        if room.participants.get(participant.identity) is not participant:
            return
        del room.participants[participant.identity]
        participant.state = models.ParticipantInfo.DISCONNECTED
        participant.touch()
        info = participant.info()
        info.disconnect_reason = reason
        update = rtc.SignalResponse(update=rtc.ParticipantUpdate(participants=[info]))
        for other in room.others(participant):
            for sid in participant.tracks:
                await other.drop_outgoing(sid)
            await other.send(update)
        await participant.close()
        self.record("leave", participant)
        room_info = room.to_proto()
        for track in participant.tracks.values():
            if track.ready:
                self.webhooks.emit("track_unpublished", room=room_info, participant=info,
                                   track=track.info)
        # Joined but never connected media: LiveKit reports the connection as aborted.
        aborted = (reason in (models.SIGNAL_CLOSE, models.JOIN_FAILURE)
                   and not participant.was_active
                   and not participant.far_end)
        self.webhooks.emit("participant_connection_aborted" if aborted else "participant_left",
                           room=room_info, participant=info)
        if not room.participants and self.rooms.get(room.name) is room:
            self._close_later(room, room.departure_timeout)

    def depart_later(self, participant: Participant) -> None:
        """Departure timeout ran out without a resume: the participant has left."""
        self.spawn(self.remove(participant, models.SIGNAL_CLOSE), f"depart-{participant.identity}")

    async def forget(self) -> None:
        """Drop all state abruptly (sockets closed without leave), as a server restart would."""
        rooms, self.rooms = self.rooms, {}
        for room in rooms.values():
            if room.closing is not None:
                room.closing.cancel()
            for participant in list(room.participants.values()):
                await participant.close()
        log.info("fault: forgot %d room(s)", len(rooms))
        self.notify()

    async def aclose(self) -> None:
        await self.forget()
        await self.webhooks.aclose()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def find_track(hub: Hub, room: str, identity: str, kind: str) -> PublishedTrack | None:
    """The most recent `kind` track `identity` published in `room`, if any."""
    r = hub.rooms.get(room)
    participant = r.participants.get(identity) if r is not None else None
    if participant is None:
        return None
    found = [t for t in participant.tracks.values() if t.kind == kind]
    return found[-1] if found else None

