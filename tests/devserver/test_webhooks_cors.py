"""Webhooks (checked by livekit-api's WebhookReceiver on a loopback receiver) and CORS headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from livekit import api
from livekit.protocol import models, rtc, webhook
from signal_client import raw

from appliance.devserver.server import DevServer


@dataclass
class Receiver:
    """A webhook endpoint on loopback that verifies each POST the way LiveKit's docs say."""

    srv_key: str
    srv_secret: str
    fail_first: int = 0  # answer 503 to this many POSTs first (retries)
    events: list[webhook.WebhookEvent] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    posts: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.posts += 1
        if self.posts <= self.fail_first:
            return web.Response(status=503)
        receiver = api.WebhookReceiver(api.TokenVerifier(self.srv_key, self.srv_secret))
        body = (await request.read()).decode()
        event = receiver.receive(body, request.headers["Authorization"])
        self.events.append(event)
        self.content_types.append(request.content_type)
        self.changed.set()
        return web.Response(text="ok")

    async def wait(self, predicate: Callable[[list[str]], bool],
                   timeout: float = 10.0) -> list[str]:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not predicate(names := [e.event for e in self.events]):
                self.changed.clear()
                await self.changed.wait()
        return names


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    from appliance.devserver.auth_defaults import DEV_API_KEY, DEV_API_SECRET

    rec = Receiver(DEV_API_KEY, DEV_API_SECRET, fail_first=2)
    app = web.Application()
    app.add_routes([web.post("/hook", rec.handle)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield rec, f"http://127.0.0.1:{port}/hook"
    await runner.cleanup()


async def test_webhooks_are_signed_ordered_and_retried(devserver_factory: Any,
                                                       receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    srv: DevServer = await devserver_factory(webhook_urls=[url], webhook_attempts=4)
    async with raw(srv, "a") as a:
        await a.next("join")
        await a.send(add_track=rtc.AddTrackRequest(cid="mic", type=models.AUDIO))
        await a.next("track_published")
        far = await srv.add_far_end("lobby", video=False)
        await rec.wait(lambda n: n.count("participant_joined") == 2 and "track_published" in n)
        await far.leave()
        await a.send(leave=rtc.LeaveRequest(reason=models.CLIENT_INITIATED))
    await rec.wait(lambda n: n.count("participant_left") == 2)
    async with api.LiveKitAPI(srv.http_url, srv.api_key, srv.api_secret) as lk:
        await lk.room.delete_room(api.DeleteRoomRequest(room="lobby"))
    names = await rec.wait(lambda n: "room_finished" in n)
    assert names == ["room_started", "participant_joined", "participant_joined",
                     "track_published", "track_unpublished", "participant_left",
                     "participant_left", "room_finished"]
    assert set(rec.content_types) == {"application/webhook+json"}
    assert rec.posts == len(names) + 2  # the first two answers were 503: retried, not lost
    joined = rec.events[1]
    assert (joined.room.name, joined.participant.identity) == ("lobby", "a")
    assert rec.events[3].track.type == models.AUDIO and rec.events[3].participant.identity \
        == "far-end"
    assert all(e.id.startswith("EV_") and e.created_at > 0 for e in rec.events)
    delivery = srv.hub.webhooks.deliveries[0]
    assert delivery.attempts == 3 and delivery.delivered_at >= delivery.queued_at


async def test_connection_aborted_when_media_never_connected(
        devserver_factory: Any, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    rec.fail_first = 0
    srv: DevServer = await devserver_factory(webhook_urls=[url], departure_timeout=0.2)
    async with raw(srv, "a") as a:
        await a.next("join")
    # The socket closed without a leave and no resume came: the session times out.
    names = await rec.wait(lambda n: "participant_connection_aborted" in n)
    assert "participant_left" not in names
    await rec.wait(lambda n: "room_finished" in n)  # the empty room closes after departure


async def test_an_unreachable_receiver_never_blocks_signalling(devserver_factory: Any) -> None:
    srv: DevServer = await devserver_factory(webhook_urls=["http://127.0.0.1:9/nowhere"],
                                             webhook_attempts=2)
    async with raw(srv, "a") as a, raw(srv, "b") as b:
        await a.next("join")
        await b.next("join")
        assert (await a.next("update")).participants[0].identity == "b"
    await srv.wait_for(lambda: srv.hub.webhooks.failures >= 2, timeout=10,
                       what="webhooks given up")


async def _request(method: str, url: str, **headers: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(
            method, url, headers=headers) as resp:
        return resp.status, resp.headers


async def test_cors_on_validate_and_twirp(devserver: DevServer) -> None:
    origin = "http://kiosk-console.example"
    status, headers = await _request("GET", f"{devserver.http_url}/rtc/validate", Origin=origin)
    # A refusal the browser can read: the 401 and its reason, not "Failed to fetch".
    assert status == 401 and headers["Access-Control-Allow-Origin"] == "*"
    token = devserver.mint_token("k", "lobby")
    status, headers = await _request("GET", f"{devserver.http_url}/rtc/v1/validate",
                                     Origin=origin, Authorization=f"Bearer {token}")
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    twirp = f"{devserver.http_url}/twirp/livekit.RoomService/ListRooms"
    status, headers = await _request(
        "OPTIONS", twirp, Origin=origin, **{"Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers":
                                            "authorization,content-type"})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == origin
    assert headers["Access-Control-Allow-Methods"] == "POST"
    assert headers["Access-Control-Allow-Headers"] == "authorization,content-type"
    assert headers["Access-Control-Max-Age"] == "86400"
    status, headers = await _request("POST", twirp, Origin=origin,
                                     **{"Content-Type": "application/json"})
    assert status == 401 and headers["Access-Control-Allow-Origin"] == origin
    # Never on the control API (a web page must not be able to drive faults).
    status, headers = await _request("OPTIONS", f"{devserver.control_url}/forget",
                                     Origin=origin, **{"Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in headers
