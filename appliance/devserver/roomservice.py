"""Twirp `livekit.RoomService` at the double: JSON or protobuf bodies, grants, Twirp errors."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from google.protobuf.json_format import MessageToDict, Parse, ParseError
from google.protobuf.message import DecodeError, Message
from livekit import api
from livekit.api.access_token import Claims
from livekit.protocol import models, room, rtc

from appliance.devserver import data
from appliance.devserver.auth import BEARER
from appliance.devserver.hub import Hub
from appliance.devserver.model import Room
from appliance.devserver.participant import Participant
from appliance.errors import DevServerError

log = logging.getLogger(__name__)

PREFIX = "/twirp/livekit.RoomService/"
JSON, PROTOBUF = "application/json", "application/protobuf"
# Twirp's HTTP status for each error code it uses here.
STATUS = {"unauthenticated": 401, "permission_denied": 403, "not_found": 404,
          "invalid_argument": 400, "malformed": 400, "bad_route": 404, "internal": 500}
PERMISSION_DENIED = "permissions denied"  # LiveKit's words, with code unauthenticated


class TwirpError(DevServerError):
    """A RoomService refusal: a Twirp code and message, sent as LiveKit's error JSON."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code, self.msg = code, msg

    def response(self) -> web.Response:
        return web.json_response({"code": self.code, "msg": self.msg},
                                 status=STATUS.get(self.code, 500))


@dataclass(frozen=True, slots=True)
class Method:
    request: type[Message]
    handler: Callable[[Claims | None, Any], Awaitable[Message]]


def claims_of(hub: Hub, request: web.Request) -> Claims | None:
    """The verified token of a request; None without one (every method then refuses)."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    if not header.startswith(BEARER):
        raise TwirpError("unauthenticated", "invalid authorization header. Must start with Bearer ")
    try:
        return api.TokenVerifier(hub.api_key, hub.api_secret).verify(header[len(BEARER):].strip())
    except (jwt.PyJWTError, ValueError) as exc:
        raise TwirpError("unauthenticated", f"invalid token: {exc}") from exc


def _video(claims: Claims | None) -> api.VideoGrants:
    if claims is None or claims.video is None:
        raise TwirpError("unauthenticated", PERMISSION_DENIED)
    video: api.VideoGrants = claims.video
    return video


def need_create(claims: Claims | None) -> None:
    if not _video(claims).room_create:
        raise TwirpError("unauthenticated", PERMISSION_DENIED)


def need_list(claims: Claims | None) -> None:
    if not _video(claims).room_list:
        raise TwirpError("unauthenticated", PERMISSION_DENIED)


def need_admin(claims: Claims | None, room_name: str) -> None:
    video = _video(claims)
    if not video.room_admin or video.room != room_name:
        raise TwirpError("unauthenticated", PERMISSION_DENIED)


class RoomService:
    """The methods of `livekit.RoomService` the kiosk's operators use, on the double's state."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.methods: dict[str, Method] = {
            "CreateRoom": Method(room.CreateRoomRequest, self.create_room),
            "ListRooms": Method(room.ListRoomsRequest, self.list_rooms),
            "DeleteRoom": Method(room.DeleteRoomRequest, self.delete_room),
            "ListParticipants": Method(room.ListParticipantsRequest, self.list_participants),
            "GetParticipant": Method(room.RoomParticipantIdentity, self.get_participant),
            "RemoveParticipant": Method(room.RoomParticipantIdentity, self.remove_participant),
            "MutePublishedTrack": Method(room.MuteRoomTrackRequest, self.mute_published_track),
            "UpdateParticipant": Method(room.UpdateParticipantRequest, self.update_participant),
            "UpdateRoomMetadata": Method(room.UpdateRoomMetadataRequest,
                                         self.update_room_metadata),
            "SendData": Method(room.SendDataRequest, self.send_data),
        }

    # ----- HTTP ------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [web.post(PREFIX + "{method}", self.handle)]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["method"]
        content_type = request.content_type
        try:
            method = self.methods.get(name)
            if method is None:
                raise TwirpError("bad_route", f"no handler for path {request.path!r}")
            if content_type not in (JSON, PROTOBUF):
                raise TwirpError("bad_route", f"unexpected Content-Type: {content_type!r}")
            claims = claims_of(self.hub, request)
            body = await request.read()
            message = self._decode(method.request, body, content_type)
            result = await method.handler(claims, message)
        except TwirpError as exc:
            log.info("RoomService %s refused: %s", name, exc)
            return exc.response()
        if content_type == JSON:
            # Twirp's JSON: proto field names, zero values included.
            text = json.dumps(MessageToDict(result, preserving_proto_field_name=True,
                                            always_print_fields_with_no_presence=True))
            return web.Response(text=text, content_type=JSON)
        return web.Response(body=result.SerializeToString(), content_type=PROTOBUF)

    @staticmethod
    def _decode(kind: type[Message], body: bytes, content_type: str) -> Any:
        try:
            if content_type == JSON:
                # Parse takes both the proto names and the lowerCamel JSON names, as LiveKit does.
                return Parse(body.decode() or "{}", kind(), ignore_unknown_fields=True)
            return kind.FromString(body)
        except (ParseError, DecodeError, UnicodeDecodeError) as exc:
            raise TwirpError("malformed", f"the request body could not be decoded: {exc}") from exc

    # ----- lookups ---------------------------------------------------------------------------

    def _room(self, name: str) -> Room:
        found = self.hub.rooms.get(name)
        if found is None:
            raise TwirpError("not_found", "room not found")
        return found

    def _participant(self, room_name: str, identity: str) -> Participant:
        found = self.hub.rooms.get(room_name)
        participant = found.participants.get(identity) if found is not None else None
        if participant is None:
            raise TwirpError("not_found", "participant not found")
        return participant

    # ----- rooms -----------------------------------------------------------------------------

    async def create_room(self, claims: Claims | None, req: Any) -> models.Room:
        need_create(claims)
        if not req.name:
            raise TwirpError("invalid_argument", "room name is required")
        if self.hub.allowed_rooms is not None and req.name not in self.hub.allowed_rooms:
            raise TwirpError("invalid_argument", f"room {req.name!r} is not served here")
        created = self.hub.ensure_room(req.name, empty_timeout=req.empty_timeout or None,
                                       max_participants=req.max_participants,
                                       metadata=req.metadata)
        return created.to_proto()

    async def list_rooms(self, claims: Claims | None, req: Any) -> room.ListRoomsResponse:
        need_list(claims)
        names = set(req.names)
        return room.ListRoomsResponse(rooms=[r.to_proto() for r in self.hub.rooms.values()
                                             if not names or r.name in names])

    async def delete_room(self, claims: Claims | None, req: Any) -> room.DeleteRoomResponse:
        need_create(claims)
        await self.hub.close_room(self._room(req.room), models.ROOM_DELETED)
        return room.DeleteRoomResponse()

    async def update_room_metadata(self, claims: Claims | None, req: Any) -> models.Room:
        need_admin(claims, req.room)
        target = self._room(req.room)
        target.metadata = req.metadata
        info = target.to_proto()
        update = rtc.SignalResponse(room_update=rtc.RoomUpdate(room=info))
        for member in target.participants.values():
            await member.send(update)
        self.hub.notify()
        return info

    async def send_data(self, claims: Claims | None, req: Any) -> room.SendDataResponse:
        need_admin(claims, req.room)
        target = self._room(req.room)
        packet = models.DataPacket(
            kind=req.kind, destination_identities=req.destination_identities,
            user=models.UserPacket(payload=req.data, topic=req.topic, nonce=req.nonce,
                                   destination_sids=req.destination_sids,
                                   destination_identities=req.destination_identities))
        data.deliver(target, packet, reliable=req.kind == models.DataPacket.RELIABLE)
        return room.SendDataResponse()

    # ----- participants ----------------------------------------------------------------------

    async def list_participants(self, claims: Claims | None,
                                req: Any) -> room.ListParticipantsResponse:
        need_admin(claims, req.room)
        found = self.hub.rooms.get(req.room)
        members = list(found.participants.values()) if found is not None else []
        return room.ListParticipantsResponse(participants=[p.info() for p in members])

    async def get_participant(self, claims: Claims | None,
                              req: Any) -> models.ParticipantInfo:
        need_admin(claims, req.room)
        return self._participant(req.room, req.identity).info()

    async def remove_participant(self, claims: Claims | None,
                                 req: Any) -> room.RemoveParticipantResponse:
        need_admin(claims, req.room)
        participant = self._participant(req.room, req.identity)
        await participant.send(rtc.SignalResponse(leave=rtc.LeaveRequest(
            action=rtc.LeaveRequest.DISCONNECT, reason=models.PARTICIPANT_REMOVED)))
        await self.hub.remove(participant, models.PARTICIPANT_REMOVED)
        return room.RemoveParticipantResponse()

    async def mute_published_track(self, claims: Claims | None,
                                   req: Any) -> room.MuteRoomTrackResponse:
        need_admin(claims, req.room)
        participant = self._participant(req.room, req.identity)
        # Tells the SDK (which mutes its track and echoes the mute) and then everyone else.
        if not await participant.set_muted(req.track_sid, req.muted, from_client=False):
            raise TwirpError("not_found", "track not found")
        return room.MuteRoomTrackResponse(track=participant.tracks[req.track_sid].info)

    async def update_participant(self, claims: Claims | None,
                                 req: Any) -> models.ParticipantInfo:
        need_admin(claims, req.room)
        participant = self._participant(req.room, req.identity)
        await self.hub.update_participant(
            participant, name=req.name or None, metadata=req.metadata or None,
            attributes=dict(req.attributes),
            permission=req.permission if req.HasField("permission") else None)
        return participant.info()
