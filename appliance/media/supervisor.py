"""Keeps one device acquired: open, watch for loss, re-acquire with backoff, post its states."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from livekit import rtc

from appliance.errors import DeviceError
from appliance.media.lifecycle import TrackInput, TrackLifecycle
from appliance.session.model import Event, TrackKind, TrackState

log = logging.getLogger(__name__)


class Pipeline(Protocol):
    """What a supervisor needs from one acquisition (CameraPipeline, MicrophonePipeline)."""

    @property
    def track(self) -> rtc.LocalVideoTrack | rtc.LocalAudioTrack: ...

    @property
    def lost(self) -> asyncio.Future[str]: ...

    async def aclose(self) -> None: ...


P = TypeVar("P", bound=Pipeline)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Re-acquisition backoff: doubling from `initial` to `maximum`; reset after `stable`."""

    initial: float = 0.5
    maximum: float = 10.0
    stable: float = 30.0


class TrackSupervisor(Generic[P]):
    """One device's task. Posts TrackStateChanged for ACQUIRING/ACQUIRED/LOST/STOPPING/STOPPED.

    A lost device never touches the other device or the room: its pipeline is closed and
    reopened on its own, and the new track is handed out by `pipeline` for republishing.
    """

    def __init__(self, kind: TrackKind, opener: Callable[[], Awaitable[P]],
                 post: Callable[[Event], None], *, retry: RetryPolicy = RetryPolicy(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.kind = kind
        self.pipeline: P | None = None
        self.lifecycle = TrackLifecycle(kind)
        self.acquisitions = 0
        self._opener = opener
        self._post = post
        self._retry = retry
        self._clock = clock
        self._enabled = True
        self._kick = asyncio.Event()  # enable/disable changed, or closing
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def state(self) -> TrackState:
        return self.lifecycle.state

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"media-{self.kind.value}")

    async def wait_for(self, predicate: Callable[[TrackState], bool]) -> None:
        """Wait until the lifecycle state satisfies `predicate` (wrap in asyncio.timeout)."""
        async with self._changed:
            await self._changed.wait_for(lambda: predicate(self.state))

    async def set_enabled(self, enabled: bool) -> None:
        if enabled != self._enabled:
            self._enabled = enabled
            self._kick.set()

    def _step(self, event: TrackInput, reason: str = "") -> None:
        self.lifecycle, changed = self.lifecycle.step(event, self._clock(), reason)
        if changed is not None:
            self._post(changed)
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _pause(self, seconds: float) -> None:
        """Backoff timer: ends early when enabled/disabled changes or we close."""
        self._kick.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._kick.wait(), seconds)

    async def _run(self) -> None:
        delay = self._retry.initial
        while not self._closed:
            if not self._enabled:
                if self.state is not TrackState.STOPPED:
                    self._step(TrackInput.STOP, "disabled")
                await self._pause(3600.0)
                continue
            self._step(TrackInput.ACQUIRE)
            try:
                pipeline = await self._opener()
            except (DeviceError, OSError) as exc:
                self._step(TrackInput.ACQUIRE_FAILED, str(exc))
                log.warning("%s: cannot acquire (%s); retry in %.1f s", self.kind.value, exc,
                            delay)
                await self._pause(delay)
                delay = min(delay * 2, self._retry.maximum)
                continue
            self.acquisitions += 1
            self.pipeline = pipeline
            acquired_at = self._clock()
            self._step(TrackInput.ACQUIRED)
            try:
                while not pipeline.lost.done() and self._enabled and not self._closed:
                    self._kick.clear()
                    kicked = asyncio.ensure_future(self._kick.wait())
                    waiters: set[asyncio.Future[Any]] = {pipeline.lost, kicked}
                    try:
                        await asyncio.wait(waiters,
                                           return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        kicked.cancel()
            finally:
                self.pipeline = None
            if pipeline.lost.done():
                self._step(TrackInput.DEVICE_LOST, pipeline.lost.result())
                await pipeline.aclose()
                if self._clock() - acquired_at >= self._retry.stable:
                    delay = self._retry.initial
                await self._pause(delay)
                delay = min(delay * 2, self._retry.maximum)
            else:
                self._step(TrackInput.STOP, "closing" if self._closed else "disabled")
                await pipeline.aclose()
                self._step(TrackInput.STOPPED)
                delay = self._retry.initial

    async def aclose(self) -> None:
        """Stop the task and release the device; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._kick.set()
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), 10.0)
            except TimeoutError:
                log.error("%s: supervisor did not stop in 10 s; cancelling", self.kind.value)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        pipeline, self.pipeline = self.pipeline, None
        if pipeline is not None:
            await pipeline.aclose()
        if self.state is not TrackState.STOPPING:
            self._step(TrackInput.STOP, "closing")
        if self.state is TrackState.STOPPING:
            self._step(TrackInput.STOPPED)
