"""The composition root: what talks to what in a running kiosk, wired explicitly in one place.

    config ─> TokenSource ──────────────┐
    config ─> MediaManager ── post ─────┤
    config ─> LiveKitLink ─── post ─────┼─> Runner (one queue -> pure machine -> effects)
    config ─> GpioFrontEnd ── post ─────┤        │
    RemoteOps (RPC via the link) ─ post ┤        │
    NetWatch, timers, signals ── post ──┘        └─> listeners: GpioFrontEnd.show(state) (LEDs),
                                                     HealthPublisher (attributes via the link),
                                                     sd_notify STATUS=; ControlServer reads state

Adapters only post events (facts) and execute effects; the machine alone owns the state that
LEDs, STATUS= and the control socket show.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from appliance import __version__
from appliance.config import Config
from appliance.control import ControlError
from appliance.control.server import ControlServer
from appliance.crashes import CrashLedger
from appliance.devices.gpio import GpioFrontEnd
from appliance.errors import DeviceError
from appliance.remote.health import HealthPublisher, static_attributes
from appliance.remote.rpc import RemoteOps
from appliance.session.media import MediaLayer, NullMedia
from appliance.session.model import Event, StopRequested
from appliance.session.runner import Runner
from appliance.session.tokens import TokenSource
from appliance.systemd import Notifier

log = logging.getLogger(__name__)

# SIGTERM must end the process with status 0 within systemd's 5 s whatever the SDK is doing: past
# this many seconds after the stop request, whatever still runs (a hung native call, a blocking
# read in a worker thread) is abandoned and the process exits at once.
HARD_EXIT_AFTER = 4.0


def build_media(cfg: Config) -> MediaLayer:
    if cfg.camera.backend == "none" and cfg.microphone.backend == "none" and (
            cfg.speaker.backend == "none"):
        return NullMedia()
    from appliance.media.manager import MediaManager

    return MediaManager(cfg)


@dataclass
class Kiosk:
    """One running kiosk: the runner plus the adapters around it."""

    cfg: Config
    runner: Runner
    media: MediaLayer
    devices: bool = True  # open GPIO and the control socket (tests of the room alone say False)
    health: HealthPublisher | None = None
    gpio: GpioFrontEnd | None = None
    control: ControlServer | None = None

    async def run(self) -> int:
        """Open the buttons/LEDs and the control socket, run the session, close them again."""
        self.runner.bind()
        async with AsyncExitStack() as stack:
            if self.devices:
                await self._open_gpio(stack)
                await self._open_control(stack)
            if self.health is not None:
                stack.push_async_callback(self.health.aclose)
                stack.callback(self.runner.add_listener(self.health.on_state))
            return await self.runner.run()

    async def _open_gpio(self, stack: AsyncExitStack) -> None:
        try:
            gpio = await asyncio.to_thread(GpioFrontEnd.from_config, self.cfg, self.runner.post)
        except DeviceError as exc:
            # The room matters more than the buttons: stay up, say so (a ConfigError still stops).
            log.error("GPIO unavailable, running without buttons and LEDs: %s", exc)
            return
        self.gpio = gpio

        async def close() -> None:
            self.gpio = None
            await asyncio.to_thread(gpio.close)

        stack.push_async_callback(close)  # LEDs dark last, after the session ended
        stack.callback(self.runner.add_listener(gpio.show))
        gpio.show(self.runner.state)

    async def _open_control(self, stack: AsyncExitStack) -> None:
        # The test camera can be unplugged on request (the demo's `c` key); real ones cannot.
        simulate: Callable[[bool], None] | None = getattr(self.media, "simulate_camera", None)
        server = ControlServer(self.cfg.control.socket, state=lambda: self.runner.state,
                               gpio=self.gpio,
                               simulate_camera=simulate if self.cfg.camera.backend == "test"
                               else None, clock=self.runner.clock)
        try:
            await server.start()
        except ControlError as exc:
            # A convenience, not the kiosk's job: stay in the room without it, loudly.
            log.error("control socket unavailable: %s", exc)
            return
        self.control = server
        stack.push_async_callback(server.aclose)


def build_kiosk(cfg: Config, *, media: MediaLayer | None = None,
                notifier: Notifier | None = None,
                clock: Callable[[], float] = time.monotonic, devices: bool = True,
                crashes: int = 0) -> Kiosk:
    from appliance.rtc.livekit import LiveKitLink, RemoteTrackSink  # livekit: a heavy import

    tokens = TokenSource(cfg)
    media = media if media is not None else build_media(cfg)
    # The media manager plays the room's audio and chooses how its tracks are published.
    sink = media if isinstance(media, RemoteTrackSink) else None

    runner: Runner
    ops = RemoteOps(cfg, post=lambda ev: runner.post(ev), state=lambda: runner.state,
                    clock=clock)

    def link_factory(post: Callable[[Event], None]) -> LiveKitLink:
        return LiveKitLink(post, clock=clock, on_token=tokens.observe_refreshed, sink=sink,
                           rpc_methods=ops.methods)

    runner = Runner(cfg, link_factory=link_factory, media=media, tokens=tokens,
                    notifier=notifier or Notifier(), clock=clock, crashes=crashes)
    health = None
    if cfg.remote.attributes:
        health = HealthPublisher(lambda: runner.link, static_attributes(
            __version__, cfg.gpio.profile), clock=clock)
    return Kiosk(cfg, runner, media, devices=devices, health=health)


def _hard_exit(ledger: CrashLedger) -> None:
    log.error("shutdown still not finished %.1f s after the stop request: abandoning what "
              "hangs and exiting now", HARD_EXIT_AFTER)
    ledger.end()  # a stop that had to be cut short is still a requested stop, not a crash
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(0)


async def run_kiosk(cfg: Config) -> int:
    """`appliance run`: the kiosk until SIGTERM/SIGINT, then exit 0 within 5 s."""
    ledger = CrashLedger.from_environment()
    kiosk = build_kiosk(cfg, crashes=ledger.begin())
    runner = kiosk.runner
    loop = asyncio.get_running_loop()
    guard: list[threading.Timer] = []

    def on_signal(name: str) -> None:
        if not guard:
            timer = threading.Timer(HARD_EXIT_AFTER, _hard_exit, args=(ledger,))
            timer.daemon = True
            timer.start()
            guard.append(timer)
        runner.post(StopRequested(runner.clock(), name))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signal.Signals(signum).name)
    try:
        status = await kiosk.run()
        ledger.end()  # only a clean return clears the marker; a crash never gets here
        return status
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        # Release dead Rooms' native handles while the loop still runs: a handle dropped by the
        # collector at interpreter exit has crashed the livekit FFI (SIGSEGV, seen in e2e runs).
        gc.collect()
