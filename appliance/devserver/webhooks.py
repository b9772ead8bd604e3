"""Webhooks from the double: signed `application/webhook+json` POSTs, sent in the background."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp
from google.protobuf.json_format import MessageToJson
from livekit import api
from livekit.protocol import models, webhook

log = logging.getLogger(__name__)

EVENTS = ("room_started", "room_finished", "participant_joined", "participant_left",
          "participant_connection_aborted", "track_published", "track_unpublished")
CONTENT_TYPE = "application/webhook+json"
_QUEUE_MAX = 1000  # a receiver that is down long enough loses events, counted in num_dropped


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook POST that a receiver accepted (2xx)."""

    url: str
    event: str
    event_id: str
    attempts: int
    queued_at: float  # time.monotonic() when the event happened
    delivered_at: float


class Webhooks:
    """A queue and a sender task per URL; `emit` never waits, so signalling never blocks.

    Each event is POSTed in order, retried `attempts` times in all with a doubling delay,
    then dropped (LiveKit retries a few times too, and never holds up the room for a webhook).
    """

    def __init__(self, urls: Sequence[str], api_key: str, api_secret: str, *,
                 attempts: int = 3, retry_delay: float = 0.2, timeout: float = 5.0) -> None:
        self.urls = list(urls)
        self._key, self._secret = api_key, api_secret
        self._attempts = max(1, attempts)
        self._retry_delay = retry_delay
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._queues: dict[str, asyncio.Queue[tuple[webhook.WebhookEvent, float]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._dropped: dict[str, int] = {}
        self.deliveries: list[Delivery] = []
        self.failures = 0  # events given up after every attempt
        self._in_flight = 0
        self.on_change: Callable[[], None] = lambda: None  # the hub's notify, for wait_for

    def start(self) -> None:
        if self._session is not None or not self.urls:
            return
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        for url in self.urls:
            queue: asyncio.Queue[tuple[webhook.WebhookEvent, float]] = asyncio.Queue(_QUEUE_MAX)
            self._queues[url] = queue
            self._dropped[url] = 0
            self._tasks.append(asyncio.create_task(self._run(url, queue),
                                                   name=f"devserver-webhook-{url}"))

    def emit(self, event: str, *, room: models.Room | None = None,
             participant: models.ParticipantInfo | None = None,
             track: models.TrackInfo | None = None) -> None:
        """Queue an event for every URL (no-op without URLs)."""
        if not self._queues:
            return
        message = webhook.WebhookEvent(event=event, id="EV_" + secrets.token_hex(6),
                                       created_at=int(time.time()))
        if room is not None:
            message.room.CopyFrom(room)
        if participant is not None:
            message.participant.CopyFrom(participant)
        if track is not None:
            message.track.CopyFrom(track)
        now = time.monotonic()
        for url, queue in self._queues.items():
            try:
                queue.put_nowait((message, now))
                self._in_flight += 1
            except asyncio.QueueFull:
                self._dropped[url] += 1
                log.warning("webhook queue for %s is full: dropped %s", url, event)

    def busy(self) -> bool:
        """Whether any event is still queued or being sent."""
        return self._in_flight > 0

    def sign(self, body: str) -> str:
        """The Authorization value LiveKit sends: a JWT whose sha256 claim hashes the body."""
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        return (api.AccessToken(self._key, self._secret).with_sha256(digest)
                .with_ttl(datetime.timedelta(minutes=5)).to_jwt())

    async def _run(self, url: str, queue: asyncio.Queue[tuple[webhook.WebhookEvent, float]],
                   ) -> None:
        while True:
            message, queued_at = await queue.get()
            message.num_dropped, self._dropped[url] = self._dropped[url], 0
            body = MessageToJson(message, indent=None)
            for attempt in range(1, self._attempts + 1):
                if await self._post(url, body):
                    self.deliveries.append(Delivery(url, message.event, message.id, attempt,
                                                    queued_at, time.monotonic()))
                    break
                if attempt < self._attempts:
                    await asyncio.sleep(self._retry_delay * 2 ** (attempt - 1))  # retry backoff
            else:
                self.failures += 1
                log.warning("webhook %s to %s: gave up after %d attempts", message.event, url,
                            self._attempts)
            queue.task_done()
            self._in_flight -= 1
            self.on_change()

    async def _post(self, url: str, body: str) -> bool:
        assert self._session is not None
        headers = {"Content-Type": CONTENT_TYPE, "Authorization": self.sign(body)}
        try:
            async with self._session.post(url, data=body.encode(), headers=headers) as resp:
                if 200 <= resp.status < 300:
                    return True
                log.info("webhook to %s answered %d", url, resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("webhook to %s failed: %r", url, exc)
        return False

    async def aclose(self, flush: float = 2.0) -> None:
        """Send what is queued (for up to `flush` seconds), then stop."""
        for queue in self._queues.values():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.join(), flush)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._queues.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
