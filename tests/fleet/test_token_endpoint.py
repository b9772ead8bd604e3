"""The token endpoint's contract, with the kiosk's own TokenSource as the client."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fleet_support import API_KEY, API_SECRET, Running, start_service
from google.protobuf.json_format import MessageToJson
from livekit import api
from livekit.protocol import models, webhook

from appliance.config import Config, LiveKitConfig
from appliance.errors import AuthRejected, TokenError
from appliance.fleet.store import Store
from appliance.session.tokens import TokenSource


def kiosk_source(tmp_path: Path, fleet: Running, key: str, *, identity: str = "kiosk-1",
                 room: str = "lobby") -> TokenSource:
    key_file = tmp_path / f"key-{identity}"
    key_file.write_text(key + "\n")
    os.chmod(key_file, 0o600)
    cfg = Config(livekit=LiveKitConfig(url="ws://unused.invalid", room=room, identity=identity,
                                       token_url=fleet.token_url, device_key_file=key_file))
    return TokenSource(cfg)


def claims(token: str) -> api.Claims:
    return api.TokenVerifier(API_KEY, API_SECRET).verify(token)


async def test_a_device_key_buys_a_token_for_the_registry_room(fleet: Running,
                                                               tmp_path: Path) -> None:
    key = await fleet.store.enrol("kiosk-1", "lobby", display_name="Front desk")
    # The kiosk asks for another room: the registry decides, not the request.
    source = kiosk_source(tmp_path, fleet, key, room="boardroom")
    try:
        url, token = await source.get()
    finally:
        await source.aclose()
    assert url == "ws://127.0.0.1:9"
    c = claims(token)
    assert c.identity == "kiosk-1" and c.name == "Front desk"
    assert c.video is not None and c.video.room == "lobby" and c.video.room_join
    assert c.video.can_publish and c.video.can_subscribe and c.video.can_update_own_metadata
    assert source.expires_in() is not None and 200 < source.expires_in() <= 300  # type: ignore[operator]
    (issue, *_) = await fleet.store.audit_rows(identity="kiosk-1")
    assert issue.action == "issue" and issue.status == 200 and "boardroom" in issue.detail
    d = await fleet.store.device("kiosk-1")
    assert d is not None and d.tokens_issued == 1 and d.last_token_at is not None


async def test_unknown_and_revoked_keys_are_auth_faults(fleet: Running, tmp_path: Path) -> None:
    key = await fleet.store.enrol("kiosk-1", "lobby")
    other = await fleet.store.enrol("kiosk-2", "lobby")
    forged = key[:-4] + "AAAA" if not key.endswith("AAAA") else key[:-4] + "BBBB"
    for bad in (forged, "fk1.0123456789abcdef." + "A" * 43, "not-a-key"):
        source = kiosk_source(tmp_path, fleet, bad)
        with pytest.raises(AuthRejected, match="401"):
            await source.get()
        await source.aclose()
    await fleet.store.revoke("kiosk-2")
    source = kiosk_source(tmp_path, fleet, other, identity="kiosk-2")
    with pytest.raises(AuthRejected, match="403"):
        await source.get()
    await source.aclose()
    refusals = [(a.status, a.detail) for a in await fleet.store.audit_rows()
                if a.action == "refuse"]
    assert (403, "device revoked") in refusals and len(refusals) == 4


async def test_rate_limits_refuse_with_429(store: Store, tmp_path: Path) -> None:
    fleet = await start_service(store, device_limit=2, global_rate=0.001, global_burst=4,
                                token_ttl=600.0)
    try:
        key = await store.enrol("kiosk-1", "lobby")
        source = kiosk_source(tmp_path, fleet, key)
        await source.get(fresh=True)
        await source.get(fresh=True)
        with pytest.raises(TokenError, match="429"):  # per device
            await source.get(fresh=True)
        await source.get(fresh=False)  # the cached token is still good: no request
        async with aiohttp.ClientSession() as http:
            await http.post(fleet.token_url)  # the 4th request: the bucket is empty now
            async with http.post(fleet.token_url, headers={"Authorization": f"Bearer {key}"},
                                 json={}) as resp:
                assert resp.status == 429 and resp.headers["Retry-After"] == "1"
        await source.aclose()
        details = [a.detail for a in await store.audit_rows() if a.status == 429]
        assert details == ["global rate limit", "device rate limit"]
    finally:
        await fleet.runner.cleanup()


def signed(event: webhook.WebhookEvent, secret: str = API_SECRET) -> tuple[str, str]:
    body = MessageToJson(event)
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = api.AccessToken(API_KEY, secret).with_sha256(digest).to_jwt()
    return body, token


async def test_webhooks_move_presence(fleet: Running) -> None:
    await fleet.store.enrol("kiosk-1", "lobby")

    async def post(kind: str, secret: str = API_SECRET, **participant: Any) -> int:
        event = webhook.WebhookEvent(event=kind, room=models.Room(name="lobby"),
                                     participant=models.ParticipantInfo(**participant))
        body, token = signed(event, secret)
        async with aiohttp.ClientSession() as http, http.post(
                f"{fleet.url}/webhook", data=body,
                headers={"Authorization": token,
                         "Content-Type": "application/webhook+json"}) as resp:
            return resp.status

    attrs = {"kiosk.state": "in-room", "kiosk.fault": "none", "kiosk.mic": "live",
             "kiosk.version": "0.1.0"}
    assert await post("participant_joined", identity="kiosk-1", sid="PA_1",
                      attributes=attrs) == 200
    d = await fleet.store.device("kiosk-1")
    assert d is not None and d.presence == "in-room" and d.mic == "live" and d.version == "0.1.0"
    assert await post("participant_left", secret="wrong-secret-0123456789abcdef0123",
                      identity="kiosk-1", sid="PA_1") == 401
    assert await post("participant_left", identity="kiosk-1", sid="PA_OLD") == 200
    assert (await fleet.store.device("kiosk-1")).presence == "in-room"  # type: ignore[union-attr]
    assert await post("participant_connection_aborted", identity="kiosk-1", sid="PA_1") == 200
    assert (await fleet.store.device("kiosk-1")).presence == "reconnecting"  # type: ignore[union-attr]
    assert await post("participant_left", identity="kiosk-1", sid="PA_1") == 200
    assert (await fleet.store.device("kiosk-1")).presence == "out"  # type: ignore[union-attr]
