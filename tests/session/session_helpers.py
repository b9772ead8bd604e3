"""Runner test helpers: a fast config, a harness of fakes, waiting on state without sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from appliance.config import Config, LiveKitConfig, ReconnectConfig, WatchdogConfig
from appliance.rtc.fake import FakeLink, FakeMedia, FakeTokens
from appliance.session.runner import Runner
from appliance.systemd import Notifier


def fast_config(**reconnect: float) -> Config:
    rc = dict(backoff_initial=0.05, backoff_max=0.2, auth_backoff_max=0.3, stable_after=60.0,
              media_stall_timeout=0.3)
    rc.update(reconnect)
    return Config(livekit=LiveKitConfig(url="ws://fake", room="lobby", identity="kiosk-1",
                                        token="static-token-value"),
                  reconnect=ReconnectConfig(**rc), watchdog=WatchdogConfig())


@dataclass
class Harness:
    runner: Runner
    media: FakeMedia
    tokens: FakeTokens
    task: asyncio.Task[int]

    @property
    def link(self) -> FakeLink:
        assert isinstance(self.runner.link, FakeLink)
        return self.runner.link


@pytest.fixture
async def harness_factory() -> AsyncIterator[Callable[..., Any]]:
    made: list[Harness] = []

    async def make(cfg: Config | None = None, *, notifier: Notifier | None = None,
                   link_setup: Callable[[FakeLink], None] | None = None,
                   **kwargs: Any) -> Harness:
        cfg = cfg or fast_config()
        media, tokens = FakeMedia(), FakeTokens()

        def factory(post: Any) -> FakeLink:
            link = FakeLink(post)
            if link_setup is not None:
                link_setup(link)
            return link

        kwargs.setdefault("netwatch", False)
        kwargs.setdefault("stats_interval", 0.05)
        kwargs.setdefault("tick", 0.05)
        runner = Runner(cfg, link_factory=factory, media=media, tokens=tokens,
                        notifier=notifier, **kwargs)
        task = asyncio.create_task(runner.run(), name="test-runner")
        h = Harness(runner, media, tokens, task)
        made.append(h)
        return h

    yield make
    for h in made:
        if not h.task.done():
            h.task.cancel()
        await asyncio.gather(h.task, return_exceptions=True)
