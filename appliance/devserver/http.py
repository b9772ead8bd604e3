"""HTTP face of the double: signalling upgrade, /validate, the token endpoint, the control API."""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from appliance.devserver import auth
from appliance.devserver.hub import Hub, parse_connect
from appliance.errors import DevServerError

if TYPE_CHECKING:
    from appliance.devserver.server import DevServer

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "::1")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


CORS_PATHS = ("/rtc/", "/twirp/")  # what a browser calls; never the control API
_CORS_METHODS = ("GET", "POST", "HEAD")


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS as LiveKit answers it: any origin, any requested header, preflights cached a day.

    /rtc/validate answers `*` (LiveKit's auth middleware sets it); the rest echo the Origin.
    Without it a browser refused with 401 reports "Failed to fetch" instead of the reason.
    """
    origin = request.headers.get("Origin")
    validate = request.path.rstrip("/").endswith("/validate")
    if not request.path.startswith(CORS_PATHS) or (origin is None and not validate):
        return await handler(request)
    wanted = request.headers.get("Access-Control-Request-Method", "").upper()
    if request.method == "OPTIONS" and wanted and origin is not None:
        headers = {"Vary": "Origin, Access-Control-Request-Method, "
                           "Access-Control-Request-Headers"}
        if wanted in _CORS_METHODS:
            headers.update({"Access-Control-Allow-Origin": origin,
                            "Access-Control-Allow-Methods": wanted,
                            "Access-Control-Max-Age": "86400"})
            asked = request.headers.get("Access-Control-Request-Headers")
            if asked:
                headers["Access-Control-Allow-Headers"] = asked
        return web.Response(status=204, headers=headers)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    # LiveKit's auth middleware sets `*` on /rtc/validate whatever the request.
    response.headers["Access-Control-Allow-Origin"] = "*" if validate or origin is None else origin
    response.headers["Vary"] = "Origin"
    if isinstance(response, web.HTTPException):
        raise response
    return response


def _fail(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message)


def _verified(hub: Hub, request: web.Request) -> auth.Grant:
    rejection = hub.faults.rejection("rtc")
    if rejection is not None:
        raise auth.AuthFailure(rejection.status, rejection.message)
    token = auth.bearer_token(request.headers.get("Authorization"),
                              request.query.get("access_token"))
    grant = auth.verify(token, hub.api_key, hub.api_secret)
    if hub.allowed_rooms is not None and grant.room not in hub.allowed_rooms:
        raise auth.AuthFailure(403, f"permissions denied: room {grant.room!r} is not served here")
    return grant


def signalling_routes(hub: Hub, *, v1: bool = True) -> list[web.RouteDef]:
    """/rtc and /rtc/v1 (WebSocket) plus their /validate twins; without v1, /rtc/v1 is 404.

    A server without /rtc/v1 is an older LiveKit server: the SDK falls back to /rtc.
    """

    async def rtc_socket(request: web.Request) -> web.StreamResponse:
        v1 = request.path.rstrip("/").endswith("/v1")
        try:
            grant = _verified(hub, request)
            connect = parse_connect(v1, dict(request.query))
        except auth.AuthFailure as exc:
            log.info("refused %s: %d %s", request.path, exc.status, exc.message)
            return _fail(exc.status, exc.message)
        # A frozen server does not answer new connections either (the SDK times out).
        await hub.faults.wait_unfrozen(grant.identity)
        if request.transport is None or request.transport.is_closing():
            # The client gave up while we were frozen: joining now would evict its newer
            # session as a duplicate identity.
            return _fail(408, "client went away")
        ws = web.WebSocketResponse(max_msg_size=16 * 1024 * 1024, autoping=True)
        await ws.prepare(request)
        await hub.connect(ws, grant, connect)
        return ws

    async def validate(request: web.Request) -> web.StreamResponse:
        try:
            _verified(hub, request)
        except auth.AuthFailure as exc:
            return _fail(exc.status, exc.message)
        return web.Response(text="success")

    routes = [web.get("/rtc", rtc_socket), web.get("/rtc/validate", validate)]
    if v1:
        routes += [web.get("/rtc/v1", rtc_socket), web.get("/rtc/v1/validate", validate)]
    return routes


def token_routes(server: DevServer) -> list[web.RouteDef]:
    """POST /token: a device key buys a room token (the provisioning flow of issue 4)."""

    async def token(request: web.Request) -> web.StreamResponse:
        rejection = server.faults.rejection("token")
        if rejection is not None:
            return web.json_response({"error": rejection.message}, status=rejection.status)
        header = request.headers.get("Authorization", "")
        key = header[len(auth.BEARER) :].strip() if header.startswith(auth.BEARER) else ""
        device = next((name for name, k in server.device_keys.items() if k == key and key), None)
        if device is None:
            return web.json_response({"error": "unknown device key"}, status=401)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": "body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        missing = [f for f in ("identity", "room") if not isinstance(body.get(f), str)
                   or not body.get(f)]
        if missing:
            return web.json_response(
                {"error": f"missing or empty field(s): {', '.join(missing)}"}, status=400)
        # The grants the fleet's token endpoint gives (appliance.fleet.livekit): a kiosk
        # publishes its health as participant attributes.
        jwt = server.mint_token(body["identity"], body["room"], can_update_own_metadata=True)
        log.info("token for %s in %s (device %s)", body["identity"], body["room"], device)
        return web.json_response({"token": jwt, "url": server.url})

    return [web.post("/token", token)]


def control_routes(server: DevServer) -> list[web.RouteDef]:
    """POST /control/<fault> with a JSON body; GET /control/state. Loopback callers only."""
    faults = server.faults

    def endpoint(action: Callable[[dict[str, Any]], Awaitable[Any]]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            if request.remote not in LOOPBACK:
                return web.json_response({"error": "control is loopback-only"}, status=403)
            try:
                body = await request.json() if request.can_read_body else {}
            except json.JSONDecodeError:
                return web.json_response({"error": "body must be JSON"}, status=400)
            try:
                result = await action(body if isinstance(body, dict) else {})
            except (DevServerError, KeyError, TypeError, ValueError) as exc:
                return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
            return web.json_response({"ok": True, "result": result})

        return handler

    async def reject(b: dict[str, Any]) -> None:
        faults.reject(int(b["status"]), float(b["seconds"]), b.get("target", "rtc"))

    async def refuse_resumes(b: dict[str, Any]) -> None:
        faults.set_refuse_resumes(bool(b.get("refuse", True)))

    async def freeze(b: dict[str, Any]) -> None:
        faults.freeze(float(b["seconds"]), b.get("identity"))

    async def thaw(b: dict[str, Any]) -> None:
        faults.thaw()

    async def black_hole(b: dict[str, Any]) -> None:
        faults.black_hole(bool(b.get("on", True)), b.get("identity"))

    async def close_sockets(b: dict[str, Any]) -> int:
        return await faults.close_sockets(b.get("identity"))

    async def leave(b: dict[str, Any]) -> int:
        return await faults.leave(str(b["action"]), b.get("identity"))

    async def quality(b: dict[str, Any]) -> None:
        await faults.connection_quality(str(b["identity"]), str(b["quality"]), b.get("score"))

    async def refresh(b: dict[str, Any]) -> int:
        ttl = datetime.timedelta(seconds=float(b.get("ttl", 3600)))
        return await faults.refresh_token(b.get("identity"), ttl=ttl)

    async def mute(b: dict[str, Any]) -> int:
        return await faults.mute(str(b["identity"]), b.get("kind"), bool(b.get("muted", True)))

    async def forget(b: dict[str, Any]) -> None:
        await faults.forget()

    async def clear(b: dict[str, Any]) -> None:
        faults.clear()

    async def far_end(b: dict[str, Any]) -> str | None:
        handle = await server.add_far_end(str(b["room"]), identity=b.get("identity", "far-end"),
                                          tone_hz=float(b.get("tone_hz", 1000.0)),
                                          video=bool(b.get("video", True)))
        return handle.sid

    async def far_end_leave(b: dict[str, Any]) -> bool:
        return await server.remove_far_end(str(b["room"]), b.get("identity", "far-end"))

    async def state(request: web.Request) -> web.StreamResponse:
        if request.remote not in LOOPBACK:
            return web.json_response({"error": "control is loopback-only"}, status=403)
        return web.json_response(server.snapshot())

    actions: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
        "reject": reject, "refuse-resumes": refuse_resumes, "freeze": freeze, "thaw": thaw,
        "black-hole": black_hole, "close-sockets": close_sockets, "leave": leave,
        "quality": quality, "refresh-token": refresh, "mute": mute, "forget": forget,
        "clear": clear, "far-end": far_end, "far-end/leave": far_end_leave,
    }
    routes = [web.post(f"/control/{name}", endpoint(fn)) for name, fn in actions.items()]
    return [*routes, web.get("/control/state", state)]
