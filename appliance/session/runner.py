"""The imperative shell: one event queue, the pure machine, effect execution, timers, watchdog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

from appliance.config import Config
from appliance.errors import AuthRejected, ConfigError, DeviceError, TokenError
from appliance.session import machine, truth
from appliance.session.link import JoinFailed, RoomLink
from appliance.session.media import MediaLayer
from appliance.session.model import (
    CancelRetry,
    Connect,
    ConnectFailed,
    ConnectRequested,
    Disconnect,
    Effect,
    Event,
    JoinFailure,
    MediaProgressSampled,
    MuteApplied,
    ProbeAnswered,
    ProbeVerdict,
    PublishTracks,
    RetryTimerFired,
    RoomConnected,
    RoomDisconnected,
    RoomState,
    ScheduleProbe,
    ScheduleRetry,
    SetCameraEnabled,
    SetTrackMuted,
    SetVideoMode,
    Shutdown,
    State,
    StopRequested,
    TickElapsed,
    TrackKind,
    initial_state,
    status_line,
)
from appliance.session.netwatch import NetWatch
from appliance.systemd import Notifier

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 60.0  # the SDK retries connect() 3 times itself; this only bounds a hang
STOP_DEADLINE = 2.5  # leaving the room may take this long before the runner ends regardless
TEARDOWN_STEP = 0.5  # each resource's close; systemd's 5 s budget covers all of them
ABANDON_AFTER = 0.75  # a join in flight gets this long, twice: to finish, then to cancel
STATS_TIMEOUT = 5.0
PROVING_INTERVAL = 0.25
PROBE_TIMEOUT = 2.0  # a validate the server does not answer in this long says "unreachable"

Listener = Callable[[State], object]


class Runner:
    """Owns the loop side of a session. `post()` is thread-safe; `state` is always immutable."""

    def __init__(self, cfg: Config, *, link_factory: Callable[[Callable[[Event], None]], RoomLink],
                 media: MediaLayer, tokens: Any, notifier: Notifier | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 tick: float = 1.0, stats_interval: float = 1.0,
                 netwatch: NetWatch | bool | None = True, crashes: int = 0) -> None:
        self.cfg = cfg
        self.clock = clock
        self.media = media
        self.tokens = tokens
        self.notifier = notifier or Notifier({})
        self.state = initial_state(
            cfg.livekit.identity, cfg.livekit.room, cfg.reconnect,
            camera_size=(cfg.camera.width, cfg.camera.height),
            ladder_timing=(cfg.camera.degrade_after, cfg.camera.restore_after),
            crashes=crashes, allow_remote_unmute=cfg.remote.allow_unmute)
        wd = self.notifier.watchdog_interval
        self.tick = min(tick, wd / 2) if wd else tick
        self.stats_interval = stats_interval
        self._link_factory = link_factory
        self.link: RoomLink | None = None
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._ops: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._op_running = False
        self._retry: asyncio.TimerHandle | None = None
        self._probe: asyncio.TimerHandle | None = None
        self._done = asyncio.Event()
        self._stop_at: float | None = None
        self._next_watchdog = 0.0
        self._escalated = False
        self._listeners: list[Listener] = []
        self._netwatch = (NetWatch(self.post, clock=clock) if netwatch is True
                          else netwatch or None)
        self.unexpected = 0
        self.events_handled = 0

    # --- outside world ------------------------------------------------------------------------

    def bind(self) -> None:
        """Adopt the running loop, so `post` works from other threads before `run` starts."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def post(self, event: Event) -> None:
        """Queue an event from any thread (gpiozero callbacks run on their own threads)."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self._queue.put_nowait(event)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(state)` on the loop thread after every change; returns its remover."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)
        return remove

    def snapshot(self) -> dict[str, Any]:
        return self.state.as_dict()

    @property
    def idle(self) -> bool:
        """Nothing queued or executing: every event so far is applied, every effect done."""
        return (self._queue.empty() and self._ops.empty() and not self._op_running
                and "session.connect" not in self._tasks
                and "session.disconnect" not in self._tasks)

    # --- the loop -----------------------------------------------------------------------------

    async def run(self) -> int:
        self.bind()
        async with AsyncExitStack() as stack:
            stack.push_async_callback(self._safe, "tokens", self.tokens.aclose)
            stack.push_async_callback(self._safe, "media", self.media.aclose)
            try:
                await self.media.start(self.post)
            except DeviceError as exc:  # the room matters more than the camera: join anyway
                log.error("media failed to start, joining without it: %s", exc)
            self.link = self._link_factory(self.post)
            stack.push_async_callback(self._safe, "room link", self.link.aclose)
            stack.push_async_callback(self._cancel_tasks)
            self._spawn("session.ticker", self._ticker())
            self._spawn("session.media-ops", self._run_ops())
            self._spawn("session.stats", self._sample_stats())
            if self._netwatch is not None:
                self._spawn("session.netwatch", self._netwatch.run())
            self.notifier.status(status_line(self.state))
            self.notifier.ready()  # config loaded, devices known, loop turning; joining may last
            self._next_watchdog = self.clock()
            self.post(ConnectRequested(self.clock()))
            await self._consume()
        return 0

    async def _consume(self) -> None:
        while not self._done.is_set():
            timeout = self.tick if self._stop_at is None else max(
                0.0, self._stop_at - self.clock())
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
            # that races with the queue's get, and the runner would never stop.
            try:
                async with asyncio.timeout(timeout):
                    event = await self._queue.get()
            except TimeoutError:
                event = None
            if event is not None:
                self.apply(event)
            self._pet_watchdog()
            if self._stop_at is not None and self.clock() >= self._stop_at:
                log.warning("stop deadline reached with room %s; exiting anyway",
                            self.state.room.value)
                break

    def apply(self, event: Event) -> None:
        old = self.state
        if not machine.expected(old, event):
            self.unexpected += 1
            log.warning("unexpected %s while %s: ignored", type(event).__name__, old.room.value)
            return
        new, effects = machine.transition(old, event)
        self.events_handled += 1
        if isinstance(event, StopRequested) and self._stop_at is None:
            self.notifier.stopping()
            self._stop_at = self.clock() + STOP_DEADLINE
            log.info("stop requested (%s)", event.reason)
        if new != old:
            self.state = new
            self._log_changes(old, new)
            self.notifier.status(status_line(new, self.clock()))
            for listener in list(self._listeners):
                try:
                    listener(new)
                except Exception:  # a broken LED must not stop the session; say so loudly
                    log.exception("state listener %r failed", listener)
        for effect in effects:
            self._dispatch(effect)

    def _log_changes(self, old: State, new: State) -> None:
        for name in ("room", "intent", "fault", "quality", "camera", "microphone"):
            before, after = getattr(old, name), getattr(new, name)
            if before != after:
                log.info("%s: %s -> %s", name, before.value, after.value)
        for name in ("mic_live", "video_live", "camera_privacy", "camera_remote_muted",
                     "mic_mute_wanted"):
            before, after = getattr(old, name), getattr(new, name)
            if before != after:
                log.info("%s: %s -> %s", name, before, after)
        if old.ladder.index != new.ladder.index:
            log.info("degradation: %s -> %s (quality %s)", old.ladder.rung.label,
                     new.ladder.rung.label, new.quality.value)
        if old.remotes != new.remotes:
            log.info("participants: %s", ", ".join(sorted(new.remotes)) or "none (alone)")

    def _pet_watchdog(self) -> None:
        interval = self.notifier.watchdog_interval
        now = self.clock()
        if interval is None or now < self._next_watchdog:
            return
        limit = self.cfg.watchdog.max_time_outside_room
        outside = self.state.outside_since
        if limit > 0 and outside is not None and now - outside > limit:
            if not self._escalated:
                self._escalated = True
                log.error("out of the room for %.0f s (limit %.0f s): letting systemd's "
                          "watchdog restart us", now - outside, limit)
            return
        self._escalated = False
        self.notifier.watchdog()
        self._next_watchdog = now + interval

    # --- effects ------------------------------------------------------------------------------

    def _dispatch(self, effect: Effect) -> None:
        if isinstance(effect, Connect):
            self._spawn("session.connect", self._connect(effect), on_crash=lambda: ConnectFailed(
                self.clock(), "the join crashed", JoinFailure.CRASHED))
        elif isinstance(effect, Disconnect):
            connecting = self._tasks.get("session.connect")
            self._spawn("session.disconnect", self._disconnect(effect.reason, connecting),
                        on_crash=lambda: RoomDisconnected(self.clock(), "disconnect crashed",
                                                          client_initiated=True))
        elif isinstance(effect, ScheduleRetry):
            self._arm_retry(effect.due)
        elif isinstance(effect, ScheduleProbe):
            self._arm_probe(effect.due)
        elif isinstance(effect, CancelRetry):
            for timer in (self._retry, self._probe):
                if timer is not None:
                    timer.cancel()
            self._retry = self._probe = None
        elif isinstance(effect, PublishTracks):
            self._ops.put_nowait(lambda: self._publish(effect.camera))
        elif isinstance(effect, SetTrackMuted):
            self._ops.put_nowait(lambda: self._set_muted(effect.kind, effect.muted))
        elif isinstance(effect, SetCameraEnabled):
            self._ops.put_nowait(lambda: self._set_camera(effect.enabled))
        elif isinstance(effect, SetVideoMode):
            self._ops.put_nowait(lambda: self.media.set_video_mode(effect.size))
        elif isinstance(effect, Shutdown):
            self._done.set()
        else:
            log.error("no executor for effect %r", effect)

    def _arm_retry(self, due: float) -> None:
        assert self._loop is not None
        if self._retry is not None:
            self._retry.cancel()
        delay = max(0.0, due - self.clock())
        self._retry = self._loop.call_later(delay, lambda: self.post(RetryTimerFired(self.clock())))
        lane = " (auth lane)" if self.state.auth_lane else ""
        log.info("retry %d in %.1f s%s", self.state.attempt, delay, lane)

    def _arm_probe(self, due: float) -> None:
        assert self._loop is not None
        if self._probe is not None:
            self._probe.cancel()
        delay = max(0.0, due - self.clock())
        self._probe = self._loop.call_later(
            delay, lambda: self._spawn("session.probe", self._run_probe()))

    async def _run_probe(self) -> None:
        """Ask the server whether a join would succeed now; the machine decides what follows."""
        self._probe = None
        assert self.link is not None
        try:
            url, token = await self.tokens.get(fresh=self.state.auth_lane, probe=True)
        except AuthRejected:
            verdict = ProbeVerdict.AUTH
        except ConfigError:
            verdict = ProbeVerdict.CONFIG
        except TokenError:
            verdict = ProbeVerdict.UNREACHABLE
        else:
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    verdict = await self.link.probe(url, token)
            except TimeoutError:
                verdict = ProbeVerdict.UNREACHABLE
        log.debug("probe: %s", verdict.value)
        self.post(ProbeAnswered(self.clock(), verdict))

    async def _connect(self, effect: Connect) -> None:
        assert self.link is not None
        try:
            url, token = await self.tokens.get(fresh=effect.fresh_token)
        except AuthRejected as exc:
            self.post(ConnectFailed(self.clock(), str(exc), JoinFailure.AUTH))
            return
        except ConfigError as exc:
            log.error("cannot get a token: %s", exc)
            self.post(ConnectFailed(self.clock(), str(exc), JoinFailure.CONFIG))
            return
        except TokenError as exc:
            log.warning("cannot get a token: %s", exc)
            self.post(ConnectFailed(self.clock(), str(exc)))
            return
        log.info("joining %s at %s (attempt %d)", self.cfg.livekit.room, url, effect.attempt + 1)
        try:
            async with asyncio.timeout(JOIN_TIMEOUT):
                remotes = await self.link.connect(url, token)
        except JoinFailed as exc:
            log.warning("join failed%s: %s", " (auth)" if exc.auth else "", exc.reason)
            cause = JoinFailure.AUTH if exc.auth else JoinFailure.UNREACHABLE
            self.post(ConnectFailed(self.clock(), exc.reason, cause))
            return
        except TimeoutError:
            self.post(ConnectFailed(self.clock(), f"join took over {JOIN_TIMEOUT:.0f} s"))
            return
        self.post(RoomConnected(self.clock(), remotes=remotes))

    async def _disconnect(self, reason: str, connecting: asyncio.Task[None] | None) -> None:
        assert self.link is not None
        log.info("leaving the room: %s", reason)
        if connecting is not None and not connecting.done():
            # Let a join in flight finish first (usually well under a second): a join cancelled
            # inside the SDK leaves its native side waiting 15 s for us. One that hangs (the
            # server does not answer) is cancelled, and abandoned if even that does not end it.
            done, _ = await asyncio.wait({connecting}, timeout=ABANDON_AFTER)
            if not done:
                connecting.cancel()
                done, _ = await asyncio.wait({connecting}, timeout=ABANDON_AFTER)
                if not done:
                    log.warning("the cancelled join did not end within %.1f s; abandoning it",
                                ABANDON_AFTER)
        await self.link.disconnect()
        self.post(RoomDisconnected(self.clock(), reason, client_initiated=True))

    async def _publish(self, camera: bool) -> None:
        assert self.link is not None
        if self.state.room is RoomState.CONNECTED:
            await self.link.publish(self.media.local_tracks(), camera=camera)

    async def _set_muted(self, kind: TrackKind, muted: bool) -> None:
        changed = await self.media.set_track_muted(kind, muted)
        self.post(MuteApplied(self.clock(), kind, muted, changed))

    async def _set_camera(self, enabled: bool) -> None:
        assert self.link is not None
        if not enabled:
            await self.link.unpublish(TrackKind.CAMERA)  # never show frames during privacy
        await self.media.set_camera_enabled(enabled)

    # --- tasks --------------------------------------------------------------------------------

    def _spawn(self, name: str, coro: Coroutine[Any, Any, None], *,
               on_crash: Callable[[], Event] | None = None) -> None:
        """Run `coro` as a named task; if it raises, log it and post `on_crash()` (if given)."""
        task = asyncio.get_running_loop().create_task(self._guard(name, coro, on_crash),
                                                      name=name)
        self._tasks[name] = task
        task.add_done_callback(lambda t: self._tasks.pop(name, None)
                               if self._tasks.get(name) is t else None)

    async def _guard(self, name: str, coro: Coroutine[Any, Any, None],
                     on_crash: Callable[[], Event] | None) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:  # an SDK surprise must not end the kiosk: log it, recover via events
            log.exception("task %s failed", name)
            if on_crash is not None:
                self.post(on_crash())

    async def _run_ops(self) -> None:
        while True:
            op = await self._ops.get()
            self._op_running = True
            try:
                await op()
            except Exception:  # one failed mute/publish must not stop later ones
                log.exception("media operation failed")
            finally:
                self._op_running = False

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick)  # cadence of TickElapsed, not synchronisation
            self.post(TickElapsed(self.clock()))

    async def _sample_stats(self) -> None:
        """Read outbound media counters while in the room; the machine judges them."""
        while True:
            # Sampling cadence: quicker while a sending track still has to prove it flows (a
            # join, an unmute), so its LED turns live within a fraction of a second.
            state = self.state
            proving = any(truth.sending(state, k) and not state.stall.proven(k)
                          for k in TrackKind)
            await asyncio.sleep(min(self.stats_interval, PROVING_INTERVAL) if proving
                                else self.stats_interval)
            link = self.link
            if link is None or self.state.room is not RoomState.CONNECTED:
                continue
            try:
                async with asyncio.timeout(STATS_TIMEOUT):
                    progress = await link.progress()
            except (TimeoutError, RuntimeError) as exc:
                log.debug("no stats this round: %s", exc)
                continue
            self.post(MediaProgressSampled(self.clock(), tuple(progress.items())))

    async def _cancel_tasks(self) -> None:
        for timer in (self._retry, self._probe):
            if timer is not None:
                timer.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=TEARDOWN_STEP)

    async def _safe(self, what: str, close: Callable[[], Awaitable[None]]) -> None:
        try:
            async with asyncio.timeout(TEARDOWN_STEP):
                await close()
        except TimeoutError:
            log.warning("closing %s took over %.1f s; moving on", what, TEARDOWN_STEP)
        except Exception:  # teardown continues past failures, in reverse order
            log.exception("closing %s failed", what)
