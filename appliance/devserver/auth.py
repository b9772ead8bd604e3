"""Access tokens for the double: minting, and verification with LiveKit's status codes and words."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import jwt
from livekit import api

from appliance.devserver.auth_defaults import DEV_API_KEY, DEV_API_SECRET
from appliance.errors import DevServerError

__all__ = ["DEV_API_KEY", "DEV_API_SECRET", "AuthFailure", "Grant", "mint_token", "verify"]
BEARER = "Bearer "


class AuthFailure(DevServerError):
    """A connection the double refuses, with the HTTP status and body a LiveKit server gives."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Grant:
    """What a verified token lets its holder do in the double."""

    identity: str
    room: str
    name: str
    metadata: str
    can_publish: bool
    can_subscribe: bool
    can_publish_data: bool = True
    can_update_metadata: bool = False  # LiveKit's canUpdateOwnMetadata: off unless granted
    attributes: tuple[tuple[str, str], ...] = ()


def mint_token(
    api_key: str,
    api_secret: str,
    identity: str,
    room: str,
    *,
    ttl: datetime.timedelta = datetime.timedelta(hours=1),
    name: str | None = None,
    room_join: bool = True,
    can_publish: bool = True,
    can_subscribe: bool = True,
    can_update_own_metadata: bool = False,
) -> str:
    """A signed JWT for `identity` in `room` (use ttl <= 0 to mint an already expired one)."""
    grants = api.VideoGrants(
        room_join=room_join, room=room, can_publish=can_publish, can_subscribe=can_subscribe,
        can_update_own_metadata=can_update_own_metadata,
    )
    token = api.AccessToken(api_key, api_secret).with_identity(identity).with_grants(grants)
    if name is not None:
        token = token.with_name(name)
    if ttl.total_seconds() <= 0:
        # AccessToken refuses to mint in the past; build the expired claims by hand instead.
        now = datetime.datetime.now(datetime.UTC)
        claims = {
            "sub": identity, "iss": api_key, "nbf": int(now.timestamp()) - 120,
            "exp": int((now + ttl).timestamp()) - 60,
            "video": {"roomJoin": room_join, "room": room},
        }
        return jwt.encode(claims, api_secret, algorithm="HS256")
    return token.with_ttl(ttl).to_jwt()


def bearer_token(authorization: str | None, query_token: str | None) -> str:
    """The token from `Authorization: Bearer` or, as the JS SDK sends it, `access_token=`."""
    if authorization:
        if not authorization.startswith(BEARER):
            raise AuthFailure(401, "invalid authorization header. Must start with Bearer ")
        return authorization[len(BEARER) :].strip()
    if query_token:
        return query_token
    raise AuthFailure(401, "invalid authorization header. Must start with Bearer ")


def verify(token: str, api_key: str, api_secret: str) -> Grant:
    """Check signature, issuer, expiry and the join grant; raise AuthFailure as LiveKit would."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthFailure(401, f"invalid authorization token: {exc}") from exc
    if unverified.get("iss") != api_key:
        raise AuthFailure(401, "invalid API key")
    try:
        claims = api.TokenVerifier(api_key, api_secret).verify(token)
    except jwt.ExpiredSignatureError as exc:
        raise AuthFailure(401, "invalid authorization token: token is expired") from exc
    except jwt.PyJWTError as exc:
        raise AuthFailure(401, f"invalid authorization token: {exc}") from exc
    video = claims.video
    if video is None or not video.room_join:
        raise AuthFailure(401, "permissions denied: token has no roomJoin grant")
    if not video.room:
        raise AuthFailure(401, "permissions denied: token names no room")
    if not claims.identity:
        raise AuthFailure(400, "identity cannot be empty")
    return Grant(
        identity=claims.identity,
        room=video.room,
        name=claims.name or "",
        metadata=claims.metadata or "",
        can_publish=video.can_publish,
        can_subscribe=video.can_subscribe,
        can_publish_data=video.can_publish_data,
        can_update_metadata=bool(video.can_update_own_metadata),
        attributes=tuple(sorted((claims.attributes or {}).items())),
    )
