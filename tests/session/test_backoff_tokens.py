"""Backoff arithmetic, token sources (static, local mint, fleet endpoint), network edges, stalls."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from appliance.claims import token_expiry
from appliance.config import Config, LiveKitConfig, ReconnectConfig
from appliance.errors import AuthRejected, TokenError
from appliance.logs import redact
from appliance.session.backoff import MIN_DELAY, ceiling, retry_delay
from appliance.session.link import looks_like_auth
from appliance.session.model import TrackKind
from appliance.session.netwatch import LinkState, change_event, parse_default_route
from appliance.session.stall import Progress, StallWatch
from appliance.session.tokens import PROBE_MARGIN, REFRESH_MARGIN, TokenSource


def test_ceiling_doubles_and_caps() -> None:
    assert [ceiling(n, 1.0, 30.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert ceiling(10_000, 1.0, 30.0) == 30.0


def test_full_jitter_and_auth_lane() -> None:
    cfg = ReconnectConfig(backoff_initial=1, backoff_max=30, auth_backoff_max=300)
    assert retry_delay(cfg, 3, 0.999999) == pytest.approx(4.0, rel=1e-3)
    assert retry_delay(cfg, 3, 0.0) == MIN_DELAY
    # the slow lane starts where the fast one ends
    assert retry_delay(cfg, 1, 0.999999, auth=True) == pytest.approx(30.0, rel=1e-3)
    assert retry_delay(cfg, 9, 0.999999, auth=True) == pytest.approx(300.0, rel=1e-3)
    assert retry_delay(cfg, 9, 0.999999) == pytest.approx(30.0, rel=1e-3)


def _jwt(exp: float) -> str:
    body = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).rstrip(b"=").decode()
    return f"xx.{body}.sig"


def test_token_expiry_reads_exp_without_verifying() -> None:
    assert token_expiry(_jwt(1234)) == 1234.0
    assert token_expiry("garbage") is None


def _cfg(**lk: Any) -> Config:
    return Config(livekit=LiveKitConfig(url="ws://srv", room="lobby", identity="kiosk-1",
                                        name="Kiosk", **lk))


async def test_local_mint_reuses_then_remints_near_expiry() -> None:
    now = [1_000_000.0]
    src = TokenSource(_cfg(api_key="devkey", api_secret="s" * 40, token_ttl=600),
                      wall=lambda: now[0])
    url, first = await src.get()
    assert url == "ws://srv" and (await src.get())[1] == first
    assert redact(f"token={first}") == "token=***"
    exp = token_expiry(first)
    assert exp is not None
    now[0] = exp - REFRESH_MARGIN + 1  # inside the 5 minute margin: a new one
    from livekit import api

    claims = api.TokenVerifier("devkey", "s" * 40).verify(first, verify_signature=True)
    assert claims.identity == "kiosk-1" and claims.video is not None
    assert claims.video.room == "lobby"
    src._wall = lambda: exp - 100_000  # valid again for the verifier's sake
    assert (await src.get(fresh=True))[1] != "" and src.kind == "local"


async def test_refreshed_token_from_the_sdk_is_used_for_the_next_join() -> None:
    src = TokenSource(_cfg(token=_jwt(9e9)))
    src.observe_refreshed(_jwt(9e9 + 1))
    assert (await src.get())[1] == _jwt(9e9 + 1)


@pytest.fixture
async def endpoint(tmp_path: Path) -> Any:
    seen: list[dict[str, Any]] = []
    mode: dict[str, float] = {"status": 200, "exp": 9e9}

    async def token(request: web.Request) -> web.Response:
        seen.append({"auth": request.headers.get("Authorization"), "body": await request.json()})
        if mode["status"] != 200:
            return web.Response(status=int(mode["status"]), text="no")
        return web.json_response({"token": _jwt(mode["exp"]), "url": "ws://elsewhere"})

    app = web.Application()
    app.router.add_post("/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    key = tmp_path / "device.key"
    key.write_text("device-key-1\n")
    key.chmod(0o600)
    yield f"http://127.0.0.1:{port}/token", key, seen, mode
    await runner.cleanup()


async def test_endpoint_posts_identity_room_with_bearer_key(endpoint: Any) -> None:
    url, key, seen, mode = endpoint
    src = TokenSource(_cfg(token_url=url, device_key_file=key))
    try:
        got_url, token = await src.get()
        assert (got_url, token) == ("ws://elsewhere", _jwt(9e9))
        assert seen == [{"auth": "Bearer device-key-1",
                         "body": {"identity": "kiosk-1", "room": "lobby"}}]
        assert redact("key device-key-1") == "key ***"
        mode["status"] = 401
        with pytest.raises(AuthRejected):
            await src.get(fresh=True)
        mode["status"] = 503
        with pytest.raises(TokenError):
            await src.get(fresh=True)
    finally:
        await src.aclose()
        await src.aclose()  # idempotent


async def test_probes_reuse_a_token_that_joins_would_replace(endpoint: Any) -> None:
    """A fleet token lives the kiosk's refresh margin (300 s), so every join fetches one; a
    probe every ~1.25 s must not, or the endpoint's per-device limit locks the kiosk out."""
    url, key, seen, mode = endpoint
    now = [1_000_000.0]
    mode["exp"] = now[0] + REFRESH_MARGIN - 1  # as the fleet service issues them
    src = TokenSource(_cfg(token_url=url, device_key_file=key), wall=lambda: now[0])
    try:
        for _ in range(5):
            await src.get(probe=True)
        assert len(seen) == 1  # fetched once, then reused by every probe
        await src.get()
        assert len(seen) == 2  # a join still fetches a fresh one (a revoked key is refused)
        now[0] = mode["exp"] - PROBE_MARGIN + 1  # about to expire: even a probe fetches
        await src.get(probe=True)
        assert len(seen) == 3
        await src.get(probe=True, fresh=True)  # the auth lane always asks again
        assert len(seen) == 4
    finally:
        await src.aclose()


def test_auth_words() -> None:
    assert looks_like_auth("ws failure: HTTP 401 Unauthorized: fault: unauthorized")
    assert not looks_like_auth("connection refused (os error 111)")


def test_default_route_and_network_edges() -> None:
    table = ("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
             "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\n")
    assert parse_default_route(table)
    assert not parse_default_route(table.splitlines()[0])
    down, up = LinkState(), LinkState(frozenset({"eth0"}), True)
    assert change_event(None, down, 1.0) is not None and change_event(None, up, 1.0) is None
    ev = change_event(down, up, 2.0)
    assert ev is not None and ev.up
    ev = change_event(up, down, 3.0)
    assert ev is not None and not ev.up
    assert change_event(up, up, 4.0) is None


def test_stall_watch_needs_both_counters_to_grow() -> None:
    w = StallWatch()
    mic = TrackKind.MICROPHONE

    def feed(at: float, progress: Progress, sending: bool = True) -> float:
        nonlocal w
        w = w.observe(mic, at, progress, sending)
        return w.stalled_for(mic, at)

    assert feed(0, Progress(100, 0)) == 0
    assert feed(5, Progress(200, 0)) == 0  # no receiver reports ever: fine
    assert feed(6, Progress(300, 1)) == 0
    assert feed(12, Progress(900, 1)) == pytest.approx(6)  # sending, far end silent...
    assert feed(16.5, Progress(990, 1)) == pytest.approx(10.5)  # ...for 10.5 s
    assert feed(17, Progress(990, 1), sending=False) == 0  # muted: not watched
    assert feed(40, Progress(990, 1)) == 0  # fresh start after unmute
    # counters restarted (the SDK built a new peer connection): not progress by itself
    assert feed(41, Progress(10, 0)) == pytest.approx(1)
    assert feed(42, Progress(20, 1)) == 0  # real growth on the new connection


def test_read_link_state_from_a_fake_root(tmp_path: Path) -> None:
    from appliance.session.netwatch import NetWatch, read_link_state

    for name, state in (("lo", "unknown"), ("eth0", "up"), ("wlan0", "down")):
        (tmp_path / "sys/class/net" / name).mkdir(parents=True)
        (tmp_path / "sys/class/net" / name / "operstate").write_text(state + "\n")
    (tmp_path / "proc/net").mkdir(parents=True)
    (tmp_path / "proc/net/route").write_text("Iface\tDestination\tGateway\tFlags\n")
    state = read_link_state(tmp_path)
    assert state == LinkState(frozenset({"eth0"}), False)
    posted: list[object] = []
    watch = NetWatch(posted.append, clock=lambda: 7.0, read=lambda: state)
    assert watch.sample(LinkState()) is not None  # boot without network: say so once
    ev = watch.sample(state)
    assert ev is not None and ev.up and ev.at == 7.0
