"""LiveKit-protocol test double with real WebRTC media: a test and demo counterpart, not an SFU.

Production is LiveKit server or LiveKit Cloud. This package lets the real `livekit.rtc.Room`
run against a loopback server so the SDK's own join, publish, subscribe, resume and rejoin
code is exercised for real (README "The LiveKit test double" lists the protocol facts it relies on).

In-process use (tests, demo)::

    from appliance.devserver import DevServer

    async with DevServer(port=0, device_keys={"kiosk-1": "k1"}) as srv:
        token = srv.mint_token("kiosk", "lobby")          # ttl=, name=, room_join=, can_publish=
        await room.connect(srv.url, token)                 # srv.url is ws://127.0.0.1:<port>
        stats = await srv.wait_for(
            lambda: (s := srv.track_stats("lobby", "kiosk", "audio")) and s.audio.frames > 50
            and s, timeout=10, what="kiosk audio")
        assert abs(stats.audio.dominant_hz - 440) < 5
        far = await srv.add_far_end("lobby", identity="far-end", tone_hz=1000, video=True)
        await far.leave(); await far.rejoin()
        await srv.faults.close_sockets("kiosk")           # the SDK resumes
        srv.faults.reject(503, seconds=5)                 # new connections answer 503

Stable API (DevServer): `url`, `http_url`, `control_url`, `mint_token()`, `faults`
(`appliance.devserver.faults.Faults`), `rooms`, `participant(room, identity)`,
`track_stats(room, identity, kind) -> TrackStats`, `events` (join / resume / resume_refused /
leave records), `wait_for(predicate, timeout, what)`, `add_far_end()`, `remove_far_end()`,
`snapshot()`. TrackStats: `packets`, `decoded_frames`, `audio.frames`, `audio.dominant_hz`
(last second), `video.frames`, `video.width`/`height`, `video.stamped_frames`, `video.gaps`,
`video.out_of_order`, `video.latency_ms` (median capture-to-decode of stamped frames).
Subscriptions as LiveKit keeps them (subscriptions.py): `participant(room, identity)
.subscriptions` has `auto` (the client's auto_subscribe), `wanted` (track sids) and
`forwarded()` (the PublishedTracks being sent to it now).

LiveKit's server side: Twirp RoomService at `/twirp/livekit.RoomService/*` (roomservice.py;
`srv.api_token(room=, room_create=, room_list=, room_admin=)` mints an API token), data packets
and RPC between participants (data.py), webhooks to `webhook_urls=` (webhooks.py;
`srv.hub.webhooks.deliveries`), connection quality graded every `quality_interval=` seconds
(quality.py), CORS on /rtc/*validate and /twirp (http.py), the best simulcast layer
decoded and forwarded (simulcast.py; `track.layer`).

The frame stamp format lives in `appliance.media.stamp` (numpy only); synthetic media for
real SDK clients (tone, stamped pattern) in `appliance.devserver.sdkfeed`. Other constructor
options: `rooms=` (serve only these), `v1_path=False` (an older server without /rtc/v1),
`departure_timeout=`, `ping_interval=`, `ping_timeout=`, `control_port=`, `allow_remote=`,
`webhook_attempts=`.

Media connects only inside a network namespace with a non-loopback interface
(`scripts/netns-run`), because libwebrtc ignores loopback interfaces; the double offers only
127.0.0.1 candidates.

Importing this package is cheap; `DevServer` pulls in aiortc and aiohttp on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appliance.devserver.auth_defaults import DEV_API_KEY, DEV_API_SECRET

if TYPE_CHECKING:
    from appliance.devserver.server import DevServer

__all__ = ["DEV_API_KEY", "DEV_API_SECRET", "DevServer"]


def __getattr__(name: str) -> Any:
    if name == "DevServer":
        from appliance.devserver.server import DevServer

        return DevServer
    raise AttributeError(name)
