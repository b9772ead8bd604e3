"""The double's HTTP side without media: token endpoint, /validate, control API, auth rules."""

from __future__ import annotations

import datetime
from typing import Any

import aiohttp
import pytest

from appliance.devserver.auth import AuthFailure, bearer_token, mint_token, verify
from appliance.devserver.auth_defaults import DEV_API_KEY, DEV_API_SECRET
from appliance.devserver.server import DevServer
from appliance.errors import ApplianceError, DevServerError


async def _post(url: str, body: Any = None, key: str | None = None,
                raw: bytes | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as session:
        kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
        async with session.post(url, headers=headers, **kwargs) as resp:
            return resp.status, await resp.json()


async def _get(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        return resp.status, await resp.text()


async def test_token_endpoint_issues_a_token_the_server_accepts(devserver: DevServer) -> None:
    status, body = await _post(f"{devserver.http_url}/token",
                               {"identity": "kiosk", "room": "lobby"}, key="device-key-1")
    assert status == 200
    assert body["url"] == devserver.url
    grant = verify(body["token"], devserver.api_key, devserver.api_secret)
    assert (grant.identity, grant.room) == ("kiosk", "lobby")
    assert grant.can_update_metadata  # as the fleet grants it: the kiosk's health attributes


@pytest.mark.parametrize(
    ("key", "body", "raw", "status", "error"),
    [
        ("wrong", {"identity": "k", "room": "r"}, None, 401, "unknown device key"),
        (None, {"identity": "k", "room": "r"}, None, 401, "unknown device key"),
        ("device-key-1", None, b"{not json", 400, "body must be JSON"),
        ("device-key-1", ["k", "r"], None, 400, "JSON object"),
        ("device-key-1", {"identity": "k"}, None, 400, "missing or empty field(s): room"),
        ("device-key-1", {"identity": "", "room": 3}, None, 400, "identity, room"),
    ],
)
async def test_token_endpoint_refusals(devserver: DevServer, key: str | None, body: Any,
                                       raw: bytes | None, status: int, error: str) -> None:
    got, answer = await _post(f"{devserver.http_url}/token", body, key=key, raw=raw)
    assert got == status
    assert error in answer["error"]


@pytest.mark.parametrize("status", [401, 503])
async def test_token_endpoint_fault(devserver: DevServer, status: int) -> None:
    devserver.faults.reject(status, seconds=60, target="token")
    got, _ = await _post(f"{devserver.http_url}/token", {"identity": "k", "room": "r"},
                         key="device-key-1")
    assert got == status
    devserver.faults.clear()
    got, _ = await _post(f"{devserver.http_url}/token", {"identity": "k", "room": "r"},
                         key="device-key-1")
    assert got == 200


async def test_validate_endpoint(devserver: DevServer) -> None:
    good = devserver.mint_token("kiosk", "lobby")
    assert await _get(f"{devserver.http_url}/rtc/validate", good) == (200, "success")
    assert await _get(f"{devserver.http_url}/rtc/v1/validate", good) == (200, "success")
    status, text = await _get(f"{devserver.http_url}/rtc/validate")
    assert status == 401 and "Bearer" in text
    devserver.faults.reject(503, seconds=60)
    assert (await _get(f"{devserver.http_url}/rtc/validate", good))[0] == 503


async def test_rtc_without_websocket_upgrade_is_refused_cleanly(devserver: DevServer) -> None:
    status, text = await _get(f"{devserver.http_url}/rtc/v1", devserver.mint_token("k", "r"))
    assert status == 400 and "join_request" in text


def test_verify_rules() -> None:
    def token(**kw: Any) -> str:
        return mint_token(DEV_API_KEY, DEV_API_SECRET, "kiosk", "lobby", **kw)

    assert verify(token(), DEV_API_KEY, DEV_API_SECRET).room == "lobby"
    cases = [
        (token(ttl=datetime.timedelta(seconds=-5)), "token is expired"),
        (mint_token("other", DEV_API_SECRET, "k", "r"), "invalid API key"),
        (mint_token(DEV_API_KEY, "x" * 40, "k", "r"), "Signature verification failed"),
        (token(room_join=False), "permissions denied"),
        ("not.a.jwt", "invalid authorization token"),
    ]
    for bad, message in cases:
        with pytest.raises(AuthFailure, match=message) as info:
            verify(bad, DEV_API_KEY, DEV_API_SECRET)
        assert info.value.status == 401
        assert isinstance(info.value, ApplianceError)
    with pytest.raises(AuthFailure, match="Bearer"):
        bearer_token("Basic abc", None)
    assert bearer_token(None, "from-query") == "from-query"  # JS SDK: access_token=


async def test_control_endpoint_drives_every_fault(devserver: DevServer) -> None:
    base = devserver.control_url
    calls: list[tuple[str, dict[str, Any]]] = [
        ("reject", {"status": 503, "seconds": 1}),
        ("reject", {"status": 401, "seconds": 1, "target": "token"}),
        ("refuse-resumes", {"refuse": True}),
        ("freeze", {"seconds": 0.01}),
        ("thaw", {}),
        ("black-hole", {"on": True}),
        ("black-hole", {"on": False}),
        ("close-sockets", {}),
        ("leave", {"action": "RESUME"}),
        ("quality", {"identity": "nobody", "quality": "POOR"}),
        ("refresh-token", {}),
        ("mute", {"identity": "nobody", "kind": "audio"}),
        ("far-end", {"room": "lobby", "tone_hz": 500, "video": False}),
        ("far-end/leave", {"room": "lobby"}),
        ("forget", {}),
        ("clear", {}),
    ]
    for name, body in calls:
        status, answer = await _post(f"{base}/{name}", body)
        assert (status, answer["ok"]) == (200, True), (name, answer)
    assert devserver.faults.refuse_resumes is False  # cleared by the last call
    status, answer = await _post(f"{base}/leave", {"action": "EXPLODE"})
    assert status == 400 and "leave action" in answer["error"]
    status, answer = await _post(f"{base}/reject", {"status": 500, "seconds": 1})
    assert status == 400
    async with aiohttp.ClientSession() as session, session.get(f"{base}/state") as resp:
        assert (await resp.json()) == {"rooms": {}}


async def test_far_end_is_visible_in_state(devserver: DevServer) -> None:
    far = await devserver.add_far_end("lobby", tone_hz=700, video=True)
    state = devserver.snapshot()["rooms"]["lobby"]["participants"]["far-end"]
    assert {t["kind"] for t in state["tracks"]} == {"audio", "video"}
    await far.leave()
    assert devserver.participant("lobby", "far-end") is None


def test_refuses_non_loopback_without_allow_remote() -> None:
    with pytest.raises(DevServerError, match="not loopback"):
        DevServer(host="0.0.0.0")
    assert isinstance(DevServer(host="::1"), DevServer)
