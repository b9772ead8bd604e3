"""The console without a browser: login required, cookie flags, CSRF on every POST, SSE."""

from __future__ import annotations

import re

import aiohttp
from fleet_support import Running, Wall, start_service

from appliance.fleet.store import Store


async def login(http: aiohttp.ClientSession, fleet: Running, password: str) -> int:
    async with http.get(f"{fleet.url}/login") as resp:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert csrf is not None
    async with http.post(f"{fleet.url}/login", allow_redirects=False,
                         data={"csrf": csrf.group(1), "name": "alice",
                               "password": password}) as resp:
        assert resp.status == 303
        return 0 if resp.headers["Location"] == "/" else 1


async def test_login_is_required_and_cookies_are_strict(fleet: Running) -> None:
    await fleet.store.set_operator("alice", "correct horse")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{fleet.url}/", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/login"
        for path in ("/api/devices", "/events"):
            async with http.get(f"{fleet.url}{path}") as resp:
                assert resp.status == 401
        async with http.post(f"{fleet.url}/login", data={"name": "alice",
                                                         "password": "correct horse"}) as resp:
            assert resp.status == 403  # no login-form token: a cross-site login attempt
        assert await login(http, fleet, "wrong password") == 1
        async with http.get(f"{fleet.url}/login") as resp:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
            assert csrf is not None
        async with http.post(f"{fleet.url}/login", allow_redirects=False,
                             data={"csrf": csrf.group(1), "name": "alice",
                                   "password": "correct horse"}) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/"
            cookie = resp.headers["Set-Cookie"]
            assert "fleet_session=" in cookie and "HttpOnly" in cookie
            assert "SameSite=Strict" in cookie
        async with http.get(f"{fleet.url}/") as resp:
            page = await resp.text()
            assert resp.status == 200 and "Kiosk fleet" in page
            assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        assert [a.status for a in await fleet.store.audit_rows() if a.action == "login"] == [
            200, 401]


async def test_every_post_needs_the_csrf_token(fleet: Running) -> None:
    await fleet.store.set_operator("alice", "correct horse")
    await fleet.store.enrol("kiosk-1", "lobby")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await login(http, fleet, "correct horse") == 0
        async with http.get(f"{fleet.url}/") as resp:
            token = re.search(r'name="csrf-token" content="([^"]+)"', await resp.text())
            assert token is not None
        url = f"{fleet.url}/api/devices/kiosk-1/revoke"
        async with http.post(url) as resp:
            assert resp.status == 403
        async with http.post(url, headers={"X-CSRF-Token": "guess"}) as resp:
            assert resp.status == 403
        assert not (await fleet.store.device("kiosk-1")).revoked  # type: ignore[union-attr]
        async with http.post(url, headers={"X-CSRF-Token": token.group(1)}) as resp:
            # revoked in the registry; LiveKit (a closed port here) could not be asked
            assert resp.status == 502
        assert (await fleet.store.device("kiosk-1")).revoked  # type: ignore[union-attr]
        async with http.get(f"{fleet.url}/events") as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            first = await resp.content.readuntil(b"\n\n")
            assert first.startswith(b"event: devices\n") and b'"revoked": true' in first
        async with http.post(f"{fleet.url}/logout", data={"csrf": "x"}) as resp:
            assert resp.status == 403
        async with http.post(f"{fleet.url}/logout", data={"csrf": token.group(1)},
                             allow_redirects=False) as resp:
            assert resp.status == 303
        async with http.get(f"{fleet.url}/api/devices") as resp:
            assert resp.status == 401


async def post_login(http: aiohttp.ClientSession, fleet: Running, password: str,
                     headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
    async with http.get(f"{fleet.url}/login") as resp:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert csrf is not None
    async with http.post(f"{fleet.url}/login", allow_redirects=False, headers=headers,
                         data={"csrf": csrf.group(1), "name": "alice",
                               "password": password}) as resp:
        await resp.read()
        return resp


async def test_repeated_failures_are_refused_with_429_until_the_window_ends(
        store: Store) -> None:
    wall = Wall()
    fleet = await start_service(store, wall=wall)
    try:
        await store.set_operator("alice", "correct horse")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            for _ in range(5):
                resp = await post_login(http, fleet, "wrong password")
                assert resp.headers["Location"] == "/login?failed=1"
            wall.now += 60
            resp = await post_login(http, fleet, "correct horse")  # even the right one
            assert resp.status == 429 and resp.headers["Retry-After"] == "840"
            async with http.get(f"{fleet.url}/api/devices") as resp:
                assert resp.status == 401
            async with http.post(f"{fleet.url}/login", data={"name": "alice"}) as refused:
                assert refused.status == 403  # the form's token is still checked first
            wall.now += 841
            resp = await post_login(http, fleet, "correct horse")
            assert resp.status == 303 and resp.headers["Location"] == "/"
        rows = [(a.status, a.detail) for a in reversed(await store.audit_rows())
                if a.action == "login"]
        assert rows == [(401, "")] * 4 + [
            (401, "blocked for 900 s: too many failures (name+address)"),
            (429, "refused for 840 s: too many failed logins (name+address)"), (200, "")]
    finally:
        await fleet.runner.cleanup()


async def test_the_client_address_comes_from_a_trusted_proxy_only(store: Store) -> None:
    await store.set_operator("alice", "correct horse")
    forwarded = {"X-Forwarded-For": "192.0.2.66, 203.0.113.7"}
    for trusted, expected in (((), "127.0.0.1"), (("127.0.0.1",), "203.0.113.7")):
        fleet = await start_service(store, trusted_proxies=trusted)
        try:
            async with aiohttp.ClientSession(
                    cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                await post_login(http, fleet, "wrong password", headers=forwarded)
            (row, *_) = await store.audit_rows()
            assert row.action == "login" and row.remote == expected
        finally:
            await fleet.runner.cleanup()
