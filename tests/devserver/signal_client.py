"""A bare LiveKit signalling client for tests of the double (no media)."""

from __future__ import annotations

import asyncio
import base64
import gzip
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from livekit.protocol import rtc

from appliance.devserver.server import DevServer


class RawClient:
    """A bare signalling client: send SignalRequests, read SignalResponses by kind."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, **fields: Any) -> None:
        await self.ws.send_bytes(rtc.SignalRequest(**fields).SerializeToString())

    async def next(self, kind: str, timeout: float = 5.0,  # noqa: ASYNC109
                   match: Callable[[Any], Any] | None = None) -> Any:
        """The next response of `kind` (for which `match` is true), skipping others."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.BINARY:
                    raise ConnectionError(f"socket ended: {msg.type}")
                response = rtc.SignalResponse.FromString(msg.data)
                if response.WhichOneof("message") == kind:
                    found = getattr(response, kind)
                    if match is None or match(found):
                        return found


@asynccontextmanager
async def raw(srv: DevServer, identity: str, query: str = "", *, header: bool = True,
              path: str = "/rtc", room: str = "lobby", token: str | None = None,
              ) -> AsyncIterator[RawClient]:
    token = token or srv.mint_token(identity, room)
    headers = {"Authorization": f"Bearer {token}"} if header else {}
    if not header:
        query = f"{query}&access_token={token}" if query else f"access_token={token}"
    url = f"{srv.url}{path}" + (f"?{query}" if query else "")
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
        yield RawClient(ws)


def v1_query(**join: Any) -> str:
    data = gzip.compress(rtc.JoinRequest(**join).SerializeToString())
    wrapped = rtc.WrappedJoinRequest(compression=rtc.WrappedJoinRequest.GZIP, join_request=data)
    return "join_request=" + base64.urlsafe_b64encode(wrapped.SerializeToString()).decode()
