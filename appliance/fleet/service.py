"""`appliance fleet serve`: the token endpoint, the webhook receiver, the presence poller and
the operators' console, as one aiohttp application over the registry (`store.Store`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web
from livekit import api

from appliance.fleet import keys
from appliance.fleet.livekit import RPC_ACTIONS, LiveKitOps
from appliance.fleet.store import Device, Store, device_dict

log = logging.getLogger(__name__)

SESSION_COOKIE = "fleet_session"
LOGIN_COOKIE = "fleet_login"
ACTIONS = (*RPC_ACTIONS, "remove", "revoke")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FleetSettings:
    """What the service needs besides its database. Times in seconds."""

    livekit_url: str  # the LiveKit server (wss://, https://; ws:// for the test double)
    api_key: str
    api_secret: str
    public_url: str = ""  # the URL handed to kiosks with their token (default: livekit_url)
    # At most the kiosk's refresh margin (300 s): every (re)join then fetches a fresh token, so
    # a revoked device is refused at its next join. A connected kiosk is not affected (the
    # server refreshes the tokens of connected participants).
    token_ttl: float = 300.0
    device_limit: int = 10  # token issues per device per window
    device_window: float = 60.0
    global_rate: float = 200.0  # token issues per second, per instance (token bucket)
    global_burst: float = 400.0
    poll_interval: float = 3.0  # RoomService ListParticipants per room
    change_interval: float = 0.5  # console: how often the registry is read for changes
    session_ttl: float = 12 * 3600.0
    secure_cookies: bool = False  # set behind HTTPS: cookies get `Secure`
    verify_concurrency: int = max(1, os.cpu_count() or 1)


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._level, self._at = burst, clock()

    def take(self) -> bool:
        now = self._clock()
        self._level = min(self.burst, self._level + (now - self._at) * self.rate)
        self._at = now
        if self._level >= 1.0:
            self._level -= 1.0
            return True
        return False


def _presence(state: str) -> str:
    if state in ("in-room", "reconnecting"):
        return state
    return "out" if state else "in-room"


def health_from_attributes(attrs: dict[str, str]) -> dict[str, str]:
    state = attrs.get("kiosk.state", "")
    return {"presence": _presence(state), "state": state,
            "fault": attrs.get("kiosk.fault", ""), "mic": attrs.get("kiosk.mic", ""),
            "camera": attrs.get("kiosk.camera", ""), "quality": attrs.get("kiosk.quality", ""),
            "version": attrs.get("kiosk.version", "")}


class FleetService:
    def __init__(self, store: Store, settings: FleetSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.settings = store, settings
        self.lk = LiveKitOps(settings.livekit_url, settings.api_key, settings.api_secret)
        self.bucket = TokenBucket(settings.global_rate, settings.global_burst, clock)
        self.verified = keys.VerifiedCache()
        self._verify_slots = asyncio.Semaphore(settings.verify_concurrency)
        self._webhooks = api.WebhookReceiver(
            api.TokenVerifier(settings.api_key, settings.api_secret))
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribers: set[asyncio.Queue[str]] = set()
        self._snapshot: dict[str, dict[str, Any]] = {}
        self.polls = 0  # RoomService rounds done (tests wait on it)

    # ----- lifetime --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_security_headers])
        app.add_routes([
            web.post("/token", self.token), web.post("/webhook", self.webhook),
            web.get("/healthz", self.healthz),
            web.get("/login", self.login_page), web.post("/login", self.login),
            web.post("/logout", self.logout), web.get("/", self.console),
            web.get("/static/{name}", self.static), web.get("/api/devices", self.api_devices),
            web.get("/events", self.events),
            web.post("/api/devices/{identity}/{action}", self.action),
        ])
        app.cleanup_ctx.append(self._background)
        return app

    async def _background(self, _app: web.Application) -> AsyncIterator[None]:
        self._tasks = [asyncio.create_task(self._poll_forever(), name="fleet-poll"),
                       asyncio.create_task(self._changes_forever(), name="fleet-changes")]
        yield
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.lk.aclose()

    async def healthz(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True, "schema": await self.store.schema_version()})

    # ----- the token endpoint ------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.StreamResponse:
        remote = request.remote or ""
        header = request.headers.get("Authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else ""
        parts = keys.split_key(key)
        if not self.bucket.take():
            await self.store.audit("refuse", status=429, key_id=parts[0] if parts else "",
                                   remote=remote, detail="global rate limit")
            return _refuse(429, "busy: too many token requests", retry_after=1)
        if parts is None:
            await self.store.audit("refuse", status=401, remote=remote,
                                   detail="no or malformed device key")
            return _refuse(401, "unknown device key")
        key_id, secret = parts
        device = await self.store.by_key_id(key_id)
        if device is None or not await self._verify(device, key_id, secret):
            await self.store.audit("refuse", status=401, key_id=key_id, remote=remote,
                                   identity=device.identity if device else "",
                                   detail="unknown device key")
            return _refuse(401, "unknown device key")
        if device.revoked:
            await self.store.audit("refuse", status=403, key_id=key_id, remote=remote,
                                   identity=device.identity, detail="device revoked")
            return _refuse(403, "device revoked")
        asked = await _asked(request)
        now = time.time()
        if not await self.store.issue(device.id, now=now, window=self.settings.device_window,
                                      limit=self.settings.device_limit):
            await self.store.audit("refuse", status=429, key_id=key_id, remote=remote,
                                   identity=device.identity, detail="device rate limit")
            return _refuse(429, "too many token requests for this device",
                           retry_after=int(self.settings.device_window))
        jwt = self.lk.mint(device.identity, device.room, device.display_name or device.identity,
                           self.settings.token_ttl)
        detail = f"room {device.room}, ttl {self.settings.token_ttl:.0f} s"
        if asked and asked != (device.identity, device.room):
            detail += f"; asked for {asked[0]!r} in {asked[1]!r}: the registry decides"
        await self.store.audit("issue", status=200, key_id=key_id, remote=remote,
                               identity=device.identity, detail=detail)
        return web.json_response({"token": jwt,
                                  "url": self.settings.public_url or self.settings.livekit_url})

    async def _verify(self, device: Device, key_id: str, secret: str) -> bool:
        if self.verified.known(key_id, device.key_hash, secret):
            return True
        async with self._verify_slots:  # argon2 is CPU-bound: in threads, a few at a time
            ok = await asyncio.to_thread(keys.verify_secret, device.key_hash, secret)
        if ok:
            self.verified.remember(key_id, device.key_hash, secret)
        return ok

    # ----- presence: webhooks and RoomService ----------------------------------------------

    async def webhook(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        try:
            event = self._webhooks.receive(body, request.headers.get("Authorization", ""))
        except Exception as exc:  # livekit-api raises plain Exception for a bad signature
            log.warning("webhook refused: %s", exc)
            return web.json_response({"error": "invalid webhook signature"}, status=401)
        kind, p = event.event, event.participant
        if kind in ("participant_joined", "participant_left",
                    "participant_connection_aborted") and p.identity:
            device = await self.store.device(p.identity)
            if device is not None and device.room == event.room.name:
                await self._on_participant(device, kind, p)
        elif kind == "room_finished":
            for d in await self.store.devices():
                if d.room == event.room.name and d.presence != "out":
                    await self.store.set_health(d.identity, presence="out", participant_sid="")
        return web.Response(text="ok")

    async def _on_participant(self, device: Device, kind: str, p: Any) -> None:
        now = time.time()
        if kind == "participant_joined" and device.revoked:
            log.warning("revoked %s joined %s: removing it", device.identity, device.room)
            await self._remove_revoked(device)
            return
        if kind == "participant_joined":
            fields: dict[str, Any] = {"presence": "in-room", "participant_sid": p.sid,
                                      "last_seen_at": now}
            attrs = dict(p.attributes)
            if "kiosk.state" in attrs:
                fields.update(health_from_attributes(attrs))
            await self.store.set_health(device.identity, **fields)
        elif device.participant_sid in ("", p.sid):  # not a newer session of the same kiosk
            presence = "reconnecting" if kind == "participant_connection_aborted" else "out"
            await self.store.set_health(device.identity, presence=presence, last_seen_at=now)

    async def poll_once(self) -> None:
        """One RoomService round: every room that has enrolled kiosks."""
        devices = await self.store.devices()
        rooms = sorted({d.room for d in devices})
        now = time.time()
        for room in rooms:
            try:
                present = {p.identity: p for p in await self.lk.participants(room)}
            except api.TwirpError as exc:
                if exc.status != 404:
                    log.warning("ListParticipants %s: %s", room, exc.message)
                    continue
                present = {}
            except (OSError, TimeoutError) as exc:
                log.warning("LiveKit unreachable (%s): presence not updated", exc)
                return
            except Exception as exc:  # aiohttp errors: keep polling, never crash the service
                log.warning("ListParticipants %s: %r", room, exc)
                continue
            for d in devices:
                if d.room != room:
                    continue
                p = present.get(d.identity)
                if p is not None and d.revoked:
                    await self._remove_revoked(d)
                elif p is not None:
                    fields: dict[str, Any] = {"presence": "in-room",
                                              "participant_sid": p.sid, "last_seen_at": now}
                    fields.update(health_from_attributes(dict(p.attributes)))
                    await self.store.set_health(d.identity, **fields)
                elif d.presence != "out":
                    await self.store.set_health(d.identity, presence="out")
        self.polls += 1

    async def _remove_revoked(self, device: Device) -> None:
        """A revoked kiosk in its room (a token issued before the revocation): send it away."""
        try:
            removed = await self.lk.remove(device.room, device.identity)
        except Exception as exc:
            log.warning("could not remove revoked %s: %r", device.identity, exc)
            return
        if removed:
            await self.store.audit("remove", identity=device.identity, actor="fleet",
                                   detail="revoked device found in its room")

    async def _poll_forever(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:
                log.exception("presence poll failed")
            await asyncio.sleep(self.settings.poll_interval)

    # ----- live changes for the console --------------------------------------------------------

    async def _changes_forever(self) -> None:
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
                    message = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    message = ": keep-alive\n\n"
                await resp.write(message.encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._subscribers.discard(queue)
        return resp

    # ----- console: login, pages, actions --------------------------------------------------------

    async def _operator(self, request: web.Request) -> tuple[str, str] | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        session = await self.store.session(cookie)
        return None if session is None else (session.operator, session.csrf)

    def _cookie(self, resp: web.StreamResponse, name: str, value: str, max_age: float) -> None:
        resp.set_cookie(name, value, max_age=int(max_age), httponly=True, samesite="Strict",
                        secure=self.settings.secure_cookies, path="/")

    async def login_page(self, request: web.Request) -> web.StreamResponse:
        token = secrets.token_urlsafe(24)
        error = "Wrong name or password." if request.query.get("failed") else ""
        html = _page("login.html").replace("{{csrf}}", token).replace("{{error}}", error)
        resp = web.Response(text=html, content_type="text/html")
        self._cookie(resp, LOGIN_COOKIE, token, 600)
        return resp

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        expected = request.cookies.get(LOGIN_COOKIE, "")
        given = str(form.get("csrf", ""))
        if not expected or not secrets.compare_digest(expected, given):
            return web.Response(status=403, text="login form expired: reload the page")
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        hashed = await self.store.operator_hash(name)
        ok = hashed is not None and await asyncio.to_thread(keys.verify_secret, hashed,
                                                            password)
        await self.store.audit("login", status=200 if ok else 401, actor=name,
                               remote=request.remote or "")
        if not ok:
            return _redirect("/login?failed=1")
        cookie, _ = await self.store.new_session(name, self.settings.session_ttl)
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
        status, result = await self.perform(device, action, who[0])
        await self.store.audit(f"console:{action}", status=status, identity=identity,
                               actor=who[0], remote=request.remote or "",
                               detail=json.dumps(result)[:500])
        return web.json_response(result, status=status)

    async def perform(self, device: Device, action: str, operator: str
                      ) -> tuple[int, dict[str, Any]]:
        """Carry out a console action; (HTTP status, JSON answer)."""
        from appliance.rtc.operator import OperatorError

        try:
            if action == "revoke":
                await self.store.revoke(device.identity, actor=operator)
                removed = await self.lk.remove(device.room, device.identity)
                return 200, {"revoked": True, "removed": removed}
            if action == "remove":
                return 200, {"removed": await self.lk.remove(device.room, device.identity)}
            payload = {"seconds": 60} if action == "identify" else None
            reply = await self.lk.rpc(device.room, device.identity, action, operator, payload)
            return 200, {"reply": reply}
        except OperatorError as exc:
            return (409 if exc.code else 502), {"error": str(exc)}
        except api.TwirpError as exc:
            return 502, {"error": f"LiveKit: {exc.message}"}
        except (OSError, TimeoutError) as exc:
            return 502, {"error": f"LiveKit unreachable: {exc}"}


# ----- helpers -----------------------------------------------------------------------------------


def _public(d: Device) -> dict[str, Any]:
    return device_dict(d)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _refuse(status: int, message: str, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return web.json_response({"error": message}, status=status, headers=headers)


async def _asked(request: web.Request) -> tuple[str, str] | None:
    """What the kiosk asked for (identity, room): logged, never obeyed."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(body, dict):
        return str(body.get("identity", "")), str(body.get("room", ""))
    return None


def _csrf_ok(request: web.Request, expected: str, form_value: object) -> bool:
    given = request.headers.get("X-CSRF-Token") or (form_value if isinstance(form_value, str)
                                                    else "")
    return bool(given) and secrets.compare_digest(expected, given)


def _page(name: str) -> str:
    return resources.files("appliance.fleet").joinpath("static", name).read_text("utf-8")


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    resp = await handler(request)
    resp.headers.setdefault("Content-Security-Policy",
                            "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    return resp
