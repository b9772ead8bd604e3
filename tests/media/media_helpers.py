"""Media test helpers: ALSA file-plugin configuration, event recorder, stream collectors."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.media.pattern import CameraFaults, TestPatternCamera
from appliance.media.video import VideoMode

ALSA_BASE = Path("/usr/share/alsa/alsa.conf")


@dataclass
class AlsaFiles:
    """The PCMs `kiosk_mic` (reads `mic`) and `kiosk_spk` (writes `spk`), 48 kHz mono S16."""

    mic: Path
    spk: Path

    def write_tone(self, hz: float, seconds: float, amplitude: float = 0.3) -> None:
        t = np.arange(int(48000 * seconds)) / 48000
        pcm = (np.sin(2 * math.pi * hz * t) * amplitude * 32767).astype("<i2")
        self.mic.write_bytes(pcm.tobytes())

    def played(self) -> np.ndarray:
        return np.frombuffer(self.spk.read_bytes(), dtype="<i2") if self.spk.exists() \
            else np.zeros(0, dtype="<i2")


@pytest.fixture
def alsa_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AlsaFiles:
    """A private ALSA configuration (ALSA_CONFIG_PATH) with the file plugin over `null`.

    alsa-lib re-reads its configuration when ALSA_CONFIG_PATH changes, so every test gets its
    own files. The `file` plugin is not paced in real time: capture_frame back-pressure paces.
    """
    files = AlsaFiles(tmp_path / "mic.raw", tmp_path / "spk.raw")
    files.write_tone(440.0, 1.0)
    conf = tmp_path / "asound.conf"
    conf.write_text(
        f"<{ALSA_BASE}>\n"
        f'pcm.kiosk_mic {{ type file slave.pcm "null" file "/dev/null" '
        f'infile "{files.mic}" format "raw" }}\n'
        f'pcm.kiosk_spk {{ type file slave.pcm "null" file "{files.spk}" format "raw" }}\n')
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))
    return files


@dataclass
class Posted:
    """Records posted session events; `await posted.wait(pred)` for the first match."""

    events: list[Any] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, event: Any) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait(self, pred: Callable[[Any], bool], within: float = 10.0,
                   start: int = 0) -> Any:
        async with asyncio.timeout(within):
            while True:
                for ev in self.events[start:]:
                    if pred(ev):
                        return ev
                self._changed.clear()
                await self._changed.wait()

    def states(self, kind: Any) -> list[Any]:
        return [e.state for e in self.events if getattr(e, "kind", None) is kind
                and hasattr(e, "state")]


@pytest.fixture
def posted() -> Posted:
    return Posted()


class WatchedCamera(TestPatternCamera):
    """The test-pattern camera, saying (thread-safely) whether the pipeline has it closed."""

    __test__ = False

    def __init__(self, faults: CameraFaults | None = None) -> None:
        super().__init__(faults)
        self.closed = threading.Event()

    def open(self, mode: VideoMode) -> None:
        super().open(mode)
        self.closed.clear()

    def close(self) -> None:
        super().close()
        self.closed.set()


async def closed_within(camera: Any, within: float = 5.0) -> bool:
    """True once a WatchedCamera is closed (a paused pipeline closes its device)."""
    return await asyncio.to_thread(camera.closed.wait, within)


async def collect_audio(track: Any, seconds: float, *, within: float = 10.0,
                        skip: float = 0.0) -> np.ndarray:
    """Read `seconds` of 48 kHz mono from a (local or remote) track through rtc.AudioStream."""
    from livekit import rtc

    stream = rtc.AudioStream.from_track(track=track, sample_rate=48000, num_channels=1)
    chunks: list[np.ndarray] = []
    need, dropped = int(48000 * seconds), int(48000 * skip)
    try:
        async with asyncio.timeout(within):
            async for event in stream:
                pcm = np.frombuffer(event.frame.data, dtype=np.int16).copy()
                if dropped > 0:
                    dropped -= len(pcm)
                    continue
                chunks.append(pcm)
                if sum(len(c) for c in chunks) >= need:
                    break
    finally:
        await stream.aclose()
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


async def collect_frames(track: Any, count: int, *, within: float = 10.0) -> list[Any]:
    """The next `count` rtc.VideoFrames of a track (through rtc.VideoStream)."""
    from livekit import rtc

    stream = rtc.VideoStream(track)
    frames: list[Any] = []
    try:
        async with asyncio.timeout(within):
            async for event in stream:
                frames.append(event.frame)
                if len(frames) >= count:
                    break
    finally:
        await stream.aclose()
    return frames


def luma(frame: Any) -> np.ndarray:
    data = np.frombuffer(frame.data, dtype=np.uint8)
    return data[: frame.width * frame.height].reshape(frame.height, frame.width)


@pytest.fixture
async def loop_lag() -> AsyncIterator[list[float]]:
    """Samples of event-loop lag (s) while the test runs: nothing may block the loop."""
    lags: list[float] = []
    loop = asyncio.get_running_loop()
    handle: list[asyncio.TimerHandle] = []

    def probe(due: float) -> None:
        now = loop.time()
        lags.append(now - due)
        handle[:] = [loop.call_at(now + 0.01, probe, now + 0.01)]

    probe(loop.time())
    yield lags
    handle[0].cancel()
