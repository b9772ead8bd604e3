"""The operators' console: throttled login, database sessions, pages, live updates, actions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from appliance.fleet import keys
from appliance.fleet.livekit import RPC_ACTIONS
from appliance.fleet.logins import LoginPolicy, LoginThrottle, Refused
from appliance.fleet.store import Device, device_dict

if TYPE_CHECKING:
    from appliance.fleet.service import FleetService

log = logging.getLogger(__name__)

SESSION_COOKIE = "fleet_session"
LOGIN_COOKIE = "fleet_login"
ACTIONS = (*RPC_ACTIONS, "remove", "revoke")


class Console:
    """The console's routes over one service; its only memory is the open event streams."""

    def __init__(self, service: FleetService, policy: LoginPolicy) -> None:
        self.service, self.store, self.settings = service, service.store, service.settings
        self.throttle = LoginThrottle(service.store, policy)
        self._subscribers: set[asyncio.Queue[str]] = set()
        self._snapshot: dict[str, dict[str, Any]] = {}
        self._decoy = ""  # a hash checked for unknown names, so they take as long as known ones

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/login", self.login_page), web.post("/login", self.login),
            web.post("/logout", self.logout), web.get("/", self.console),
            web.get("/static/{name}", self.static), web.get("/api/devices", self.api_devices),
            web.get("/events", self.events),
            web.post("/api/devices/{identity}/{action}", self.action),
        ]

    # ----- live changes --------------------------------------------------------------------------

    async def changes_forever(self) -> None:
        while True:
            if self._subscribers:
                try:
                    await self._publish_changes()
                except Exception:
                    log.exception("reading changes failed")
            await asyncio.sleep(self.settings.change_interval)

    async def _publish_changes(self) -> None:
        current = {d.identity: _public(d) for d in await self.store.devices()}
        changed = [v for k, v in current.items() if self._snapshot.get(k) != v]
        gone = [k for k in self._snapshot if k not in current]
        self._snapshot = current
        for item in changed:
            self._send("device", item)
        for identity in gone:
            self._send("gone", {"identity": identity})

    def _send(self, event: str, data: Any) -> None:
        message = f"event: {event}\ndata: {json.dumps(data)}\n\n"
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(message)

    async def events(self, request: web.Request) -> web.StreamResponse:
        if await self._operator(request) is None:
            return web.json_response({"error": "log in first"}, status=401)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        queue: asyncio.Queue[str] = asyncio.Queue(10_000)
        devices = [_public(d) for d in await self.store.devices()]
        await resp.write(f"event: devices\ndata: {json.dumps(devices)}\n\n".encode())
        self._subscribers.add(queue)
        try:
            while True:
                try:
                    async with asyncio.timeout(15):
                        message = await queue.get()
                except TimeoutError:
                    message = ": keep-alive\n\n"
                await resp.write(message.encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._subscribers.discard(queue)
        return resp

    # ----- login and sessions --------------------------------------------------------------------

    async def _operator(self, request: web.Request) -> tuple[str, str] | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        session = await self.store.session(cookie, now=self.service.wall())
        return None if session is None else (session.operator, session.csrf)

    def _cookie(self, resp: web.StreamResponse, name: str, value: str, max_age: float) -> None:
        resp.set_cookie(name, value, max_age=int(max_age), httponly=True, samesite="Strict",
                        secure=self.settings.secure_cookies, path="/")

    def _login_form(self, error: str, status: int = 200,
                    headers: dict[str, str] | None = None) -> web.Response:
        token = secrets.token_urlsafe(24)
        html = _page("login.html").replace("{{csrf}}", token).replace("{{error}}", error)
        resp = web.Response(text=html, content_type="text/html", status=status, headers=headers)
        self._cookie(resp, LOGIN_COOKIE, token, 600)
        return resp

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        return self._login_form("Wrong name or password." if request.query.get("failed") else "")

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        expected = request.cookies.get(LOGIN_COOKIE, "")
        given = str(form.get("csrf", ""))
        if not expected or not secrets.compare_digest(expected, given):
            return web.Response(status=403, text="login form expired: reload the page")
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        remote = client_address(request, self.settings.trusted_proxies)
        attempt = await self.throttle.begin(name, remote, self.service.wall())
        if isinstance(attempt, Refused):
            wait = max(1, math.ceil(attempt.retry_after))
            await self.store.audit("login", status=429, actor=name, remote=remote,
                                   detail=f"refused for {wait} s: too many failed logins "
                                          f"({attempt.scope.value})")
            return self._login_form(f"Too many failed logins: try again in {_minutes(wait)}.",
                                    status=429, headers={"Retry-After": str(wait)})
        hashed = await self.store.operator_hash(name)
        if not self._decoy:
            self._decoy = await asyncio.to_thread(keys.hash_secret, secrets.token_urlsafe(16))
        checked = await self.service.verify_password(hashed or self._decoy, password)
        ok = hashed is not None and checked
        if not ok:
            blocked = await self.throttle.failed(attempt, self.service.wall())
            detail = "" if not blocked else (
                f"blocked for {self.throttle.policy.window:.0f} s: too many failures "
                f"({', '.join(s.value for s in blocked)})")
            await self.store.audit("login", status=401, actor=name, remote=remote,
                                   detail=detail)
            return _redirect("/login?failed=1")
        await self.throttle.succeeded(attempt, self.service.wall())
        await self.store.audit("login", status=200, actor=name, remote=remote)
        cookie, _ = await self.store.new_session(name, self.settings.session_ttl,
                                                 now=self.service.wall())
        resp = _redirect("/")
        self._cookie(resp, SESSION_COOKIE, cookie, self.settings.session_ttl)
        resp.del_cookie(LOGIN_COOKIE, path="/")
        return resp

    async def logout(self, request: web.Request) -> web.StreamResponse:
        who = await self._operator(request)
        if who is None or not _csrf_ok(request, who[1], (await request.post()).get("csrf")):
            return web.Response(status=403, text="forbidden")
        await self.store.end_session(request.cookies[SESSION_COOKIE])
        resp = _redirect("/login")
        resp.del_cookie(SESSION_COOKIE, path="/")
        return resp

    # ----- pages and actions ---------------------------------------------------------------------

    async def console(self, request: web.Request) -> web.StreamResponse:
        who = await self._operator(request)
        if who is None:
            return _redirect("/login")
        html = _page("console.html").replace("{{csrf}}", who[1]).replace(
            "{{operator}}", _escape(who[0]))
        return web.Response(text=html, content_type="text/html")

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        types = {"console.js": "text/javascript", "console.css": "text/css"}
        if name not in types:
            raise web.HTTPNotFound()
        return web.Response(text=_page(name), content_type=types[name])

    async def api_devices(self, request: web.Request) -> web.StreamResponse:
        if await self._operator(request) is None:
            return web.json_response({"error": "log in first"}, status=401)
        return web.json_response([_public(d) for d in await self.store.devices()])

    async def action(self, request: web.Request) -> web.StreamResponse:
        who = await self._operator(request)
        if who is None:
            return web.json_response({"error": "log in first"}, status=401)
        if not _csrf_ok(request, who[1], None):
            return web.json_response({"error": "missing or wrong CSRF token"}, status=403)
        identity, action = request.match_info["identity"], request.match_info["action"]
        if action not in ACTIONS:
            return web.json_response({"error": f"no action {action!r}"}, status=404)
        device = await self.store.device(identity)
        if device is None:
            return web.json_response({"error": f"no kiosk {identity!r}"}, status=404)
        status, result = await self.service.perform(device, action, who[0])
        await self.store.audit(f"console:{action}", status=status, identity=identity,
                               actor=who[0],
                               remote=client_address(request, self.settings.trusted_proxies),
                               detail=json.dumps(result)[:500])
        return web.json_response(result, status=status)


def client_address(request: web.Request, trusted_proxies: tuple[str, ...]) -> str:
    """Who is asking: the peer's address, or behind a trusted reverse proxy the nearest
    X-Forwarded-For hop it did not add itself (anything further left, a client can forge)."""
    remote = request.remote or ""
    if remote not in trusted_proxies:
        return remote
    hops = [h.strip() for value in request.headers.getall("X-Forwarded-For", [])
            for h in value.split(",") if h.strip()]
    while hops and remote in trusted_proxies:
        remote = hops.pop()
    return remote


def _minutes(seconds: int) -> str:
    return f"{seconds} s" if seconds < 90 else f"{math.ceil(seconds / 60)} minutes"


def _public(d: Device) -> dict[str, Any]:
    return device_dict(d)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _csrf_ok(request: web.Request, expected: str, form_value: object) -> bool:
    given = request.headers.get("X-CSRF-Token") or (form_value if isinstance(form_value, str)
                                                    else "")
    return bool(given) and secrets.compare_digest(expected, given)


def _page(name: str) -> str:
    return resources.files("appliance.fleet").joinpath("static", name).read_text("utf-8")


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
