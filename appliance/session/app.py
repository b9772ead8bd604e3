"""`appliance run`: wires config, tokens, media, the LiveKit link and plugins into a Runner."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Callable

from appliance.config import Config
from appliance.session.media import MediaLayer, NullMedia
from appliance.session.model import Event, StopRequested
from appliance.session.runner import Plugin, Runner
from appliance.session.tokens import TokenSource
from appliance.systemd import Notifier

log = logging.getLogger(__name__)


def build_media(cfg: Config) -> MediaLayer:
    if cfg.camera.backend == "none" and cfg.microphone.backend == "none" and (
            cfg.speaker.backend == "none"):
        return NullMedia()
    from appliance.media.manager import MediaManager

    return MediaManager(cfg)


def default_plugins() -> list[Plugin]:
    """What joins every session besides the room: buttons and LEDs, then the control socket."""
    from appliance.control import session_plugin as control
    from appliance.devices import session_plugin as devices

    return [devices.attach, control.attach]


def build_runner(cfg: Config, *, media: MediaLayer | None = None,
                 notifier: Notifier | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 plugins: list[Plugin] | None = None) -> Runner:
    """`plugins` None means the default ones (buttons and LEDs, control socket)."""
    from appliance.rtc.livekit import LiveKitLink, RemoteTrackSink

    tokens = TokenSource(cfg)
    media = media if media is not None else build_media(cfg)
    # The media manager also plays the room's audio and chooses how its tracks are published.
    sink = media if isinstance(media, RemoteTrackSink) else None

    def link_factory(post: Callable[[Event], None]) -> LiveKitLink:
        return LiveKitLink(post, clock=clock, on_token=tokens.observe_refreshed, sink=sink)

    return Runner(cfg, link_factory=link_factory, media=media, tokens=tokens,
                  notifier=notifier or Notifier(), clock=clock,
                  plugins=default_plugins() if plugins is None else plugins)


async def run_session(cfg: Config) -> int:
    runner = build_runner(cfg)
    loop = asyncio.get_running_loop()

    def on_signal(name: str) -> None:
        runner.post(StopRequested(runner.clock(), name))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signal.Signals(signum).name)
    try:
        return await runner.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        # Release dead Rooms' native handles while the loop still runs: a handle dropped by the
        # collector at interpreter exit has crashed the livekit FFI (SIGSEGV, seen in e2e runs).
        gc.collect()
