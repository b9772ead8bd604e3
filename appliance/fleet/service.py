"""`appliance fleet serve`: the token endpoint, the webhook receiver, the presence poller, the
operators' console (`console.py`) and housekeeping, as one aiohttp app over `store.Store`."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from livekit import api

from appliance.fleet import keys
from appliance.fleet.console import Console, client_address
from appliance.fleet.livekit import LiveKitOps
from appliance.fleet.logins import LoginPolicy
from appliance.fleet.store import Device, Store

log = logging.getLogger(__name__)

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
    # Peers whose X-Forwarded-For names the client (your reverse proxy); nobody else's is read.
    trusted_proxies: tuple[str, ...] = ()
    logins: LoginPolicy = field(default_factory=LoginPolicy)
    audit_days: float = 90.0  # audit rows older than this are deleted; 0 keeps them forever
    housekeeping_interval: float = 60.0  # expired sessions, login limits, old audit rows
    housekeeping_batch: int = 1000  # rows per delete (one short transaction each) ...
    housekeeping_batches: int = 10  # ... and at most this many per table per pass
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
    """`clock` paces the per-instance token bucket; `wall` dates sessions, login limits and
    audit retention (tests move both instead of sleeping)."""

    def __init__(self, store: Store, settings: FleetSettings, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.store, self.settings, self.wall = store, settings, wall
        self.lk = LiveKitOps(settings.livekit_url, settings.api_key, settings.api_secret)
        self.bucket = TokenBucket(settings.global_rate, settings.global_burst, clock)
        self.verified = keys.VerifiedCache()
        self._verify_slots = asyncio.Semaphore(settings.verify_concurrency)
        self._webhooks = api.WebhookReceiver(
            api.TokenVerifier(settings.api_key, settings.api_secret))
        self._tasks: list[asyncio.Task[None]] = []
        self.console = Console(self, settings.logins)
        self.polls = 0  # RoomService rounds done (tests wait on it)

    # ----- lifetime --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_security_headers])
        app.add_routes([
            web.post("/token", self.token), web.post("/webhook", self.webhook),
            web.get("/healthz", self.healthz), *self.console.routes(),
        ])
        app.cleanup_ctx.append(self._background)
        return app

    async def _background(self, _app: web.Application) -> AsyncIterator[None]:
        self._tasks = [asyncio.create_task(self._poll_forever(), name="fleet-poll"),
                       asyncio.create_task(self.console.changes_forever(),
                                           name="fleet-changes"),
                       asyncio.create_task(self._housekeeping_forever(),
                                           name="fleet-housekeeping")]
        yield
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.lk.aclose()

    async def healthz(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True, "schema": await self.store.schema_version()})

    # ----- the token endpoint ------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.StreamResponse:
        remote = client_address(request, self.settings.trusted_proxies)
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

    async def verify_password(self, hashed: str, password: str) -> bool:
        async with self._verify_slots:
            return await asyncio.to_thread(keys.verify_secret, hashed, password)

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

    # ----- housekeeping --------------------------------------------------------------------------

    async def housekeep_once(self) -> dict[str, int]:
        """One pass: expired sessions, spent login limits, audit rows past retention. Bounded:
        per table at most `housekeeping_batches` deletes of `housekeeping_batch` rows; what is
        left waits for the next pass. Returns how many rows went, per table."""
        now, cfg = self.wall(), self.settings
        jobs: dict[str, Callable[[], Awaitable[int]]] = {
            "sessions": lambda: self.store.prune_sessions(now, cfg.housekeeping_batch),
            "login_limits": lambda: self.store.prune_login_limits(now, cfg.housekeeping_batch),
        }
        if cfg.audit_days > 0:
            before = now - cfg.audit_days * 86400.0
            jobs["audit"] = lambda: self.store.prune_audit(before, cfg.housekeeping_batch)
        deleted = {}
        for table, job in jobs.items():
            total = 0
            for _ in range(cfg.housekeeping_batches):
                count = await job()
                total += count
                if count < cfg.housekeeping_batch:
                    break
            deleted[table] = total
        if any(deleted.values()):
            log.info("housekeeping deleted %s",
                     ", ".join(f"{n} from {t}" for t, n in deleted.items() if n))
        return deleted

    async def _housekeeping_forever(self) -> None:
        while True:
            try:
                await self.housekeep_once()
            except Exception:
                log.exception("housekeeping failed")
            await asyncio.sleep(self.settings.housekeeping_interval)

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


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    resp = await handler(request)
    resp.headers.setdefault("Content-Security-Policy",
                            "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    return resp
