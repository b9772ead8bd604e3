"""A short-lived operator participant: joins a room, performs one RPC on a kiosk, leaves."""

from __future__ import annotations

import secrets

from livekit import api, rtc

from appliance.errors import ApplianceError
from appliance.rtc.compat import release_handles

RPC_TIMEOUT = 8.0


class OperatorError(ApplianceError, RuntimeError):
    """The operator could not reach the kiosk, or the kiosk refused (`code` from its reply)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


def operator_token(key: str, secret: str, room: str, who: str) -> tuple[str, str]:
    """A token for a hidden operator participant `operator-<who>-<random>` in `room`."""
    identity = f"operator-{who}-{secrets.token_hex(3)}"
    grants = api.VideoGrants(room_join=True, room=room, can_publish=False,
                             can_publish_data=True, can_subscribe=False, hidden=True)
    token = api.AccessToken(key, secret).with_identity(identity).with_grants(grants).to_jwt()
    return identity, token


async def call_kiosk(url: str, token: str, kiosk: str, method: str, payload: str = "") -> str:
    """Join with `token`, call `method` on `kiosk`, return its reply; OperatorError otherwise."""
    room = rtc.Room()
    try:
        try:
            await room.connect(url, token, rtc.RoomOptions(auto_subscribe=False))
        except rtc.ConnectError as exc:
            raise OperatorError(f"cannot join to reach {kiosk}: {exc.message}") from None
        try:
            return await room.local_participant.perform_rpc(
                destination_identity=kiosk, method=method, payload=payload,
                response_timeout=RPC_TIMEOUT)
        except rtc.RpcError as exc:
            raise OperatorError(f"{kiosk} answered {method} with error {exc.code}: "
                                f"{exc.message}", exc.code) from None
    finally:
        await room.disconnect()
        release_handles(room)
