"""A LiveKit access token's claims, read without verifying (planning and sanity checks only)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def token_claims(token: str) -> dict[str, Any] | None:
    """The JWT payload as a dict, or None if `token` is not a JWT with a JSON object payload."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def token_expiry(token: str) -> float | None:
    """The JWT's `exp` (wall-clock seconds): when to fetch or mint the next token."""
    claims = token_claims(token)
    exp = None if claims is None else claims.get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def token_room_identity(token: str) -> tuple[str | None, str | None]:
    """(room from the `video` grant, identity from `sub`), each None where absent."""
    claims = token_claims(token) or {}
    video = claims.get("video")
    room = video.get("room") if isinstance(video, dict) else None
    sub = claims.get("sub")
    return (room if isinstance(room, str) else None, sub if isinstance(sub, str) else None)
