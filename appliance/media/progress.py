"""A frame counter bumped by a device thread that the event loop can await (tests, benches)."""

from __future__ import annotations

import asyncio
import threading


class Progress:
    """Counts frames; `await progress.reached(n)` wakes when the count gets to n."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def add(self, n: int = 1) -> None:
        """Called from the device thread; wakes the waiters whose target was reached."""
        self.count += n
        if self._waiters:  # racy read on purpose: the common case costs nothing
            self._release()

    async def reached(self, target: int) -> None:
        """Wait until `count >= target` (wrap in asyncio.timeout)."""
        future = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiters.append((target, future))
        self._release()
        await future

    def _release(self) -> None:
        with self._lock:
            due = [f for n, f in self._waiters if n <= self.count]
            self._waiters = [(n, f) for n, f in self._waiters if n > self.count]
        for future in due:
            future.get_loop().call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
