"""The fleet service's side of LiveKit: RoomService (list, remove) and kiosk RPCs."""

from __future__ import annotations

import json
import logging
from typing import Any

from livekit import api

log = logging.getLogger(__name__)

RPC_ACTIONS = {"identify": "kiosk.identify", "mute": "kiosk.mute", "rejoin": "kiosk.rejoin",
               "restart": "kiosk.restart"}


class LiveKitOps:
    """One LiveKitAPI client for RoomService, plus short-lived operator joins for RPCs."""

    def __init__(self, url: str, api_key: str, api_secret: str) -> None:
        self.url, self.api_key, self.api_secret = url, api_key, api_secret
        self._api: api.LiveKitAPI | None = None

    @property
    def client(self) -> api.LiveKitAPI:
        if self._api is None:  # created inside the running loop (it owns an aiohttp session)
            self._api = api.LiveKitAPI(self.url, self.api_key, self.api_secret)
        return self._api

    async def participants(self, room: str) -> list[Any]:
        resp = await self.client.room.list_participants(api.ListParticipantsRequest(room=room))
        return list(resp.participants)

    async def remove(self, room: str, identity: str) -> bool:
        """RemoveParticipant; False when it is not in the room."""
        try:
            await self.client.room.remove_participant(
                api.RoomParticipantIdentity(room=room, identity=identity))
        except api.TwirpError as exc:
            if exc.code == "not_found" or exc.status == 404:
                return False
            raise
        return True

    async def rpc(self, room: str, identity: str, action: str, operator: str,
                  payload: dict[str, Any] | None = None) -> str:
        """Call the kiosk's `kiosk.<action>` as a hidden `operator-fleet-<name>-<random>`."""
        from appliance.rtc.operator import call_kiosk, operator_token

        _, token = operator_token(self.api_key, self.api_secret, room, f"fleet-{operator}")
        return await call_kiosk(self.url, token, identity, RPC_ACTIONS[action],
                                json.dumps(payload) if payload else "")

    def mint(self, identity: str, room: str, name: str, ttl: float) -> str:
        """The kiosk's token: join its registry room, publish, subscribe, update own metadata."""
        import datetime

        grants = api.VideoGrants(room_join=True, room=room, can_publish=True,
                                 can_subscribe=True, can_update_own_metadata=True)
        return (api.AccessToken(self.api_key, self.api_secret).with_identity(identity)
                .with_name(name).with_grants(grants)
                .with_ttl(datetime.timedelta(seconds=ttl)).to_jwt())

    async def aclose(self) -> None:
        client, self._api = self._api, None
        if client is not None:
            await client.aclose()
