"""Session e2e helpers: the daemon's own kiosk (real SDK, test-backend media) against the double."""

from __future__ import annotations

import asyncio
import gc
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from state_waits import wait_state as _wait_state

from appliance.config import (
    CameraConfig,
    Config,
    LiveKitConfig,
    MicrophoneConfig,
    ReconnectConfig,
    SpeakerConfig,
)
from appliance.kiosk import Kiosk, build_kiosk
from appliance.session.media import MediaLayer
from appliance.session.model import State, StopRequested, TrackState
from appliance.session.runner import Runner
from appliance.systemd import Notifier

IDENTITY, ROOM = "kiosk-1", "lobby"
# Short backoff so outages resolve within the e2e time budget.
FAST = ReconnectConfig(backoff_initial=0.3, backoff_max=3.0, auth_backoff_max=4.0,
                       stable_after=60.0, media_stall_timeout=4.0)


def e2e_config(srv: Any, **livekit: Any) -> Config:
    lk = dict(url=srv.url, room=ROOM, identity=IDENTITY, name="Kiosk 1",
              api_key=srv.api_key, api_secret=srv.api_secret)
    lk.update(livekit)
    return Config(livekit=LiveKitConfig(**lk),
                  camera=CameraConfig(backend="test", width=320, height=240, fps=15),
                  microphone=MicrophoneConfig(backend="test"),
                  speaker=SpeakerConfig(backend="none"), reconnect=FAST)


def on_air(s: State) -> bool:
    return s.video_live and s.mic_live


async def wait_state(runner: Runner, predicate: Callable[[State], bool],
                     within: float = 20.0) -> State:
    """Like state_waits.wait_state with an end-to-end deadline (joins take real time)."""
    return await _wait_state(runner, predicate, within)


@asynccontextmanager
async def running_session(cfg: Config, *, devices: bool = False,
                          media: MediaLayer | None = None) -> AsyncIterator[Runner]:
    """The daemon's own wiring (`build_kiosk`), run as a task; yields its runner.

    `devices` opens the GPIO front end and the control socket as `appliance run` does. The
    kiosk is `runner.kiosk` (see `kiosk_of`); every state the runner went through is in
    `runner.history`.
    """
    kiosk = build_kiosk(cfg, media=media, notifier=Notifier({}), devices=devices)
    runner = kiosk.runner
    history: list[State] = [runner.state]
    runner.add_listener(history.append)
    runner.history = history  # type: ignore[attr-defined]
    runner.kiosk = kiosk  # type: ignore[attr-defined]
    task = asyncio.create_task(kiosk.run(), name="e2e-kiosk")
    try:
        yield runner
    finally:
        runner.post(StopRequested(runner.clock(), "test teardown"))
        try:
            async with asyncio.timeout(8):
                await task
        finally:
            if not task.done():
                task.cancel()
            # drop dead Rooms' native handles while the loop runs (see appliance.kiosk)
            gc.collect()


def kiosk_of(runner: Runner) -> Kiosk:
    """The kiosk `running_session` built around `runner`."""
    kiosk: Kiosk = runner.kiosk  # type: ignore[attr-defined]
    return kiosk


def history_of(runner: Runner) -> list[State]:
    """Every state the runner has been in since `running_session` built it, oldest first."""
    history: list[State] = runner.history  # type: ignore[attr-defined]
    return history


def server_tracks(srv: Any) -> dict[str, str]:
    """sid -> kind of what the kiosk has published at the double right now."""
    p = srv.participant(ROOM, IDENTITY)
    if p is None:
        return {}
    return {sid: getattr(t, "kind", "?") for sid, t in p.tracks.items()}


def published_both(s: State) -> bool:
    return s.camera is TrackState.PUBLISHED and s.microphone is TrackState.PUBLISHED


def write_alsa(tmp: Path, monkeypatch: pytest.MonkeyPatch, tone_hz: float = 440.0,
               seconds: float = 60.0) -> tuple[Path, Path]:
    """File-plugin PCMs over `null`: kiosk_mic reads a tone, kiosk_spk writes what is played."""
    mic, spk = tmp / "mic.raw", tmp / "spk.raw"
    t = np.arange(int(48000 * seconds)) / 48000
    mic.write_bytes((np.sin(2 * math.pi * tone_hz * t) * 0.3 * 32767).astype("<i2").tobytes())
    conf = tmp / "asound.conf"
    conf.write_text(
        "</usr/share/alsa/alsa.conf>\n"
        f'pcm.kiosk_mic {{ type file slave.pcm "null" file "/dev/null" infile "{mic}" '
        'format "raw" }\n'
        f'pcm.kiosk_spk {{ type file slave.pcm "null" file "{spk}" format "raw" }}\n')
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))
    return mic, spk


__all__ = ["FAST", "IDENTITY", "ROOM", "e2e_config", "history_of", "kiosk_of", "on_air",
           "published_both", "running_session", "server_tracks", "wait_state",
           "write_alsa"]
