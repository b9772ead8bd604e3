"""`DevServer`: the in-process handle on the double that tests, the demo and the CLI use."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web
from livekit import api
from livekit.protocol import models

from appliance.devserver import auth, rtcpatch
from appliance.devserver.farend import FarEnd
from appliance.devserver.faults import Faults
from appliance.devserver.http import (
    control_routes,
    cors_middleware,
    signalling_routes,
    token_routes,
)
from appliance.devserver.hub import Hub, ServerEvent, find_track
from appliance.devserver.model import Room
from appliance.devserver.participant import Participant
from appliance.devserver.quality import grade_forever
from appliance.devserver.roomservice import RoomService
from appliance.devserver.stats import TrackStats
from appliance.devserver.webhooks import Webhooks
from appliance.errors import DevServerError

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DevServer:
    """The LiveKit-protocol test double. Use as `async with DevServer(...) as srv:`.

    `port=0` picks a free port (read `srv.url` after start). `rooms` limits the rooms a token
    may name (others are refused with 403, like a server whose room does not exist);
    `v1_path=False` answers /rtc/v1 with 404, like an older server, so the SDK falls back to
    /rtc. `departure_timeout`, `ping_interval` and `ping_timeout` are the server's timings
    (LiveKit's defaults: 20 s, 5 s, 15 s); tests shorten them. `webhook_urls` receive LiveKit's
    signed webhooks (`webhook_attempts` tries each); connection quality is graded and sent to
    every participant every `quality_interval` seconds. `listen_socket` and `control_socket`
    are sockets already bound and listening (handed in by a parent process), served instead of
    binding `host:port` and `control_port`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = auth.DEV_API_KEY,
        api_secret: str = auth.DEV_API_SECRET,
        *,
        device_keys: Mapping[str, str] | None = None,
        allow_remote: bool = False,
        control_port: int | None = None,
        departure_timeout: float = 20.0,
        ping_interval: int = 5,
        ping_timeout: int = 15,
        v1_path: bool = True,
        rooms: Iterable[str] | None = None,
        webhook_urls: Iterable[str] = (),
        webhook_attempts: int = 3,
        quality_interval: float = 5.0,
        listen_socket: socket.socket | None = None,
        control_socket: socket.socket | None = None,
    ) -> None:
        if listen_socket is not None:
            host = listen_socket.getsockname()[0]
        if control_socket is not None and not is_loopback(control_socket.getsockname()[0]):
            raise DevServerError("the control API serves loopback only: control_socket is bound "
                                 f"to {control_socket.getsockname()[0]}")
        if not is_loopback(host) and not allow_remote:
            raise DevServerError(f"refusing to bind {host}: not loopback (pass allow_remote)")
        self.host, self.port = host, port
        self.api_key, self.api_secret = api_key, api_secret
        self.device_keys: dict[str, str] = dict(device_keys or {})
        self._control_port = control_port
        self._listen_socket, self._control_socket = listen_socket, control_socket
        self._v1_path = v1_path
        self._hub_args: dict[str, Any] = dict(departure_timeout=departure_timeout,
                                              ping_interval=ping_interval,
                                              ping_timeout=ping_timeout,
                                              allowed_rooms=None if rooms is None
                                              else frozenset(rooms))
        self.webhook_urls = list(webhook_urls)
        self._webhook_attempts = webhook_attempts
        self._quality_interval = quality_interval
        self._hub: Hub | None = None
        self._runners: list[web.AppRunner] = []
        self.control_url = ""

    # ----- lifetime --------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve (the control API on loopback only)."""
        rtcpatch.apply()
        webhooks = Webhooks(self.webhook_urls, self.api_key, self.api_secret,
                            attempts=self._webhook_attempts)
        self._hub = Hub(self.api_key, self.api_secret, webhooks=webhooks, **self._hub_args)
        webhooks.start()
        self._hub.spawn(grade_forever(self._hub, self._quality_interval), "devserver-quality")
        app = web.Application(middlewares=[cors_middleware])
        app.add_routes(signalling_routes(self._hub, v1=self._v1_path) + token_routes(self)
                       + RoomService(self._hub).routes())
        separate_control = (self._control_port is not None or self._control_socket is not None
                            or not is_loopback(self.host))
        if not separate_control:
            app.add_routes(control_routes(self))
        try:
            self.port = await self._serve(app, self.host, self.port, self._listen_socket)
            if separate_control:
                control = web.Application()
                control.add_routes(control_routes(self))
                cport = await self._serve(control, "127.0.0.1", self._control_port or 0,
                                          self._control_socket)
                self.control_url = f"http://127.0.0.1:{cport}/control"
            else:
                self.control_url = f"{self.http_url}/control"
        except BaseException:
            await self.aclose()  # a constructor that fails closes what it opened
            raise
        log.info("devserver listening on %s (control %s)", self.url, self.control_url)

    async def _serve(self, app: web.Application, host: str, port: int,
                     sock: socket.socket | None) -> int:
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        site: web.BaseSite = (web.TCPSite(runner, host, port, reuse_address=True) if sock is None
                              else web.SockSite(runner, sock))
        await site.start()
        # aiohttp exposes the bound addresses (port 0 means "pick one") only through the runner.
        addresses = runner.addresses
        bound: int = addresses[0][1] if addresses else port
        return bound

    async def aclose(self) -> None:
        """Close every session and stop listening (safe to call twice)."""
        if self._hub is not None:
            await self._hub.aclose()
        runners, self._runners = self._runners, []
        for runner in reversed(runners):
            await runner.cleanup()

    async def __aenter__(self) -> DevServer:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    # ----- addresses and tokens --------------------------------------------------------------

    @property
    def url(self) -> str:
        """The LiveKit URL to give `rtc.Room.connect` (ws://host:port)."""
        return f"ws://{self._url_host}:{self.port}"

    @property
    def http_url(self) -> str:
        """Base of the HTTP endpoints (/token, /rtc/validate)."""
        return f"http://{self._url_host}:{self.port}"

    @property
    def _url_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def mint_token(self, identity: str, room: str, *,
                   ttl: datetime.timedelta = datetime.timedelta(hours=1), name: str | None = None,
                   room_join: bool = True, can_publish: bool = True,
                   can_subscribe: bool = True, can_update_own_metadata: bool = False) -> str:
        """A token this server accepts (ttl <= 0 gives an expired one, for tests)."""
        return auth.mint_token(self.api_key, self.api_secret, identity, room, ttl=ttl,
                               name=name, room_join=room_join, can_publish=can_publish,
                               can_subscribe=can_subscribe,
                               can_update_own_metadata=can_update_own_metadata)

    def api_token(self, *, room: str = "", room_create: bool = False, room_list: bool = False,
                  room_admin: bool = False) -> str:
        """A server-API token (for RoomService) with the given grants."""
        grants = api.VideoGrants(room=room, room_create=room_create, room_list=room_list,
                                 room_admin=room_admin)
        return api.AccessToken(self.api_key, self.api_secret).with_grants(grants).to_jwt()

    # ----- state for tests -------------------------------------------------------------------

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            raise DevServerError("devserver is not started")
        return self._hub

    @property
    def faults(self) -> Faults:
        """Fault injection (see appliance.devserver.faults.Faults)."""
        return self.hub.faults

    @property
    def rooms(self) -> dict[str, Room]:
        return self.hub.rooms

    @property
    def events(self) -> list[ServerEvent]:
        """Joins, resumes, refused resumes and leaves, in order."""
        return self.hub.events

    def participant(self, room: str, identity: str) -> Participant | None:
        r = self.hub.rooms.get(room)
        return r.participants.get(identity) if r is not None else None

    def track_stats(self, room: str, identity: str, kind: str) -> TrackStats | None:
        """Figures of the latest `kind` ('audio'/'video') track `identity` published in `room`."""
        track = find_track(self.hub, room, identity, kind)
        return track.stats if track is not None else None

    # `timeout` as in asyncio.wait_for: the call reads as a test's intent.
    async def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0,  # noqa: ASYNC109
                       what: str = "condition") -> T:
        """Wait until `predicate()` is truthy, woken by state changes; TimeoutError otherwise."""
        return await self.hub.wait_for(predicate, timeout, what)

    async def add_far_end(self, room: str, identity: str = "far-end", tone_hz: float = 1000.0,
                          video: bool = True, video_size: tuple[int, int] = (320, 240),
                          fps: int = 15) -> FarEnd:
        """Add a participant publishing a tone (and a stamped pattern) to `room`."""
        handle = FarEnd(self.hub, room, identity, tone_hz, video, video_size, fps)
        await handle.join()
        return handle

    async def remove_far_end(self, room: str, identity: str = "far-end") -> bool:
        participant = self.participant(room, identity)
        if participant is None or not participant.far_end:
            return False
        await self.hub.remove(participant, models.CLIENT_INITIATED)
        return True

    def snapshot(self) -> dict[str, Any]:
        """JSON-able view of rooms, participants (with their attributes), tracks, figures."""
        def track(t: Any) -> dict[str, Any]:
            s: TrackStats = t.stats
            out: dict[str, Any] = {"sid": t.sid, "kind": t.kind, "muted": t.muted,
                                   "packets": s.packets, "bytes": s.payload_bytes,
                                   "frames": s.decoded_frames}
            if t.kind == "audio":
                out["dominant_hz"] = s.audio.dominant_hz
            else:
                out.update(width=s.video.width, height=s.video.height, gaps=s.video.gaps,
                           layer=t.layer,
                           stamped=s.video.stamped_frames, latency_ms=s.video.latency_ms)
            return out

        return {"rooms": {
            name: {"sid": r.sid, "participants": {
                p.identity: {"sid": p.sid, "connected": p.connected, "resumes": p.resumes,
                             "quality": models.ConnectionQuality.Name(p.quality),
                             "attributes": dict(p.attributes),
                             "auto_subscribe": p.subscriptions.auto,
                             "subscribed": [{"sid": t.sid, "kind": t.kind,
                                             "publisher": t.owner.identity}
                                            for t in p.subscriptions.forwarded()],
                             "tracks": [track(t) for t in p.tracks.values()]}
                for p in r.participants.values()}}
            for name, r in self.hub.rooms.items()}}
