"""A participant's signalling outbox: messages queued in order and sent by one writer task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)


class Outbox:
    """Sends queued messages to the current socket, in order, from its own task.

    A frozen or slow participant therefore never stalls the handlers of the others that
    broadcast to it. `wait_unfrozen` holds the writer while a freeze fault is on.
    """

    def __init__(self, name: str, wait_unfrozen: Callable[[], Awaitable[None]]) -> None:
        self._name = name
        self._wait_unfrozen = wait_unfrozen
        self._queue: asyncio.Queue[bytes] | None = None
        self._writer: asyncio.Task[None] | None = None

    def put(self, data: bytes) -> bool:
        """Queue one message; False when there is no socket."""
        if self._queue is None:
            return False
        self._queue.put_nowait(data)
        return True

    def start(self, ws: web.WebSocketResponse | None) -> None:
        """Write to `ws` from now on (None: to nothing); what was queued for the old is dropped."""
        if self._writer is not None:
            self._writer.cancel()
        self._writer = self._queue = None
        if ws is not None:
            self._queue = asyncio.Queue()
            self._writer = asyncio.create_task(self._write(ws, self._queue),
                                               name=f"devserver-send-{self._name}")

    async def flush(self, within: float) -> None:
        """Wait (up to `within` s) until everything queued was sent."""
        if self._queue is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), within)

    async def _write(self, ws: web.WebSocketResponse, queue: asyncio.Queue[bytes]) -> None:
        while True:
            data = await queue.get()
            try:
                await self._wait_unfrozen()
                await ws.send_bytes(data)
            except (ConnectionError, RuntimeError) as exc:
                log.info("%s: send failed: %s", self._name, exc)
            finally:
                queue.task_done()
