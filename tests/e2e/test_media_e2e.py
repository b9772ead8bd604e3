"""Media end to end: the kiosk's media layer in a real SDK Room against the LiveKit test double.

Most tests here use a thin stand-in for the session's link (publish what `local_tracks()`
hands out with `publish_options()`, republish on ACQUIRED, forward subscriptions), so they pin
the media layer, not the session machine. The degradation ladder lives in the session machine,
so its tests run the daemon's own kiosk (`build_kiosk`) and drive the connection quality the
real way: the double tells the SDK.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from session_e2e_helpers import (
    IDENTITY,
    e2e_config,
    history_of,
    on_air,
    published_both,
    running_session,
    wait_state,
    write_alsa,
)
from session_e2e_helpers import ROOM as SESSION_ROOM

from appliance.config import AudioConfig, CameraConfig, Config, MicrophoneConfig, SpeakerConfig
from appliance.devserver.model import Quality as ServerQuality
from appliance.devserver.stats import dominant_frequency
from appliance.media import MediaManager, MediaOverrides
from appliance.media.audio import ToneCapture
from appliance.media.backends import CameraChoice
from appliance.media.pattern import CameraFaults, TestPatternCamera
from appliance.media.supervisor import RetryPolicy
from appliance.session.model import (
    Event,
    Quality,
    State,
    TrackKind,
    TrackState,
    TrackStateChanged,
)

pytestmark = pytest.mark.e2e

ROOM = "media"
FAST = RetryPolicy(initial=0.2, maximum=1.0, stable=5.0)


def kiosk_config(*, camera: str = "test", width: int = 640, height: int = 360, fps: int = 30,
                 encoding: str = "raw", mic: str = "alsa", speaker: str = "alsa") -> Config:
    return Config(
        camera=CameraConfig(backend=camera, width=width, height=height, fps=fps,  # type: ignore[arg-type]
                            encoding=encoding),  # type: ignore[arg-type]
        microphone=MicrophoneConfig(backend=mic, device="kiosk_mic"),  # type: ignore[arg-type]
        speaker=SpeakerConfig(backend=speaker, device="kiosk_spk"),  # type: ignore[arg-type]
        # The shipped defaults (all processing on): noise suppression takes ~12 dB off a
        # steady sine, but the tone stays the dominant frequency.
        audio=AudioConfig())


class Kiosk:
    """The media layer in a real Room, published the way the session's link does it."""

    def __init__(self, media: MediaManager) -> None:
        self.media = media
        self.room = rtc.Room()
        self.events: list[Event] = []
        self.publications: dict[TrackKind, rtc.LocalTrackPublication] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()

    def post(self, event: Event) -> None:  # thread-safe, like Runner.post
        self._loop.call_soon_threadsafe(self._on_event, event)

    def _on_event(self, event: Event) -> None:
        self.events.append(event)
        if (isinstance(event, TrackStateChanged) and self.room.isconnected()
                and event.state in (TrackState.ACQUIRED, TrackState.LOST)):
            self._spawn(self.sync())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def join(self, url: str, token: str) -> None:
        room = self.room

        @room.on("track_subscribed")
        def _sub(track: rtc.RemoteTrack, _pub: Any, participant: rtc.RemoteParticipant) -> None:
            self.media.remote_track_subscribed(participant.identity, track)

        await self.media.start(self.post)
        await room.connect(url, token)
        await self.sync()

    async def sync(self) -> None:
        """Publish tracks not on air; drop publications whose device went away."""
        async with self._lock:
            tracks = self.media.local_tracks()
            lp = self.room.local_participant
            for kind, pub in list(self.publications.items()):
                if tracks.get(kind) is not pub.track:
                    del self.publications[kind]
                    await lp.unpublish_track(pub.sid)
            for kind, track in tracks.items():
                if kind not in self.publications:
                    self.publications[kind] = await lp.publish_track(
                        track, self.media.publish_options(kind))

    async def aclose(self) -> None:
        for task in list(self._tasks):
            await asyncio.gather(task, return_exceptions=True)
        await self.media.aclose()
        await self.room.disconnect()


@pytest.fixture
async def kiosk_factory(devserver: Any) -> AsyncIterator[Callable[..., Any]]:
    made: list[Kiosk] = []

    async def make(cfg: Config, overrides: MediaOverrides | None = None) -> Kiosk:
        kiosk = Kiosk(MediaManager(cfg, overrides or MediaOverrides(retry=FAST)))
        made.append(kiosk)
        await kiosk.join(devserver.url, devserver.mint_token("kiosk", ROOM))
        return kiosk

    yield make
    for kiosk in made:
        await kiosk.aclose()


def audio_stats(srv: Any) -> Any:
    return srv.track_stats(ROOM, "kiosk", "audio")


def video_stats(srv: Any) -> Any:
    return srv.track_stats(ROOM, "kiosk", "video")


async def viewer_tone(sdk: Any, srv: Any) -> tuple[float | None, Any]:
    """A second real SDK client subscribes to the kiosk and measures the tone it hears."""
    _room, events = await sdk.connect(srv.url, srv.mint_token("viewer", ROOM))
    track, _pub, _who = await events.wait(
        "track_subscribed", timeout=15, match=lambda t, p, who: who.identity == "kiosk"
        and t.kind == rtc.TrackKind.KIND_AUDIO)
    pcm = await read_audio(track, 1.0, skip=0.5)
    return dominant_frequency(pcm, 48000), track


async def read_audio(track: Any, seconds: float, skip: float = 0.0) -> np.ndarray:
    stream = rtc.AudioStream(track, sample_rate=48000, num_channels=1)
    chunks: list[np.ndarray] = []
    need, skipped = int(48000 * seconds), int(48000 * skip)
    try:
        async with asyncio.timeout(15):
            async for event in stream:
                pcm = np.frombuffer(event.frame.data, dtype=np.int16).copy()
                if skipped > 0:
                    skipped -= len(pcm)
                    continue
                chunks.append(pcm)
                if sum(map(len, chunks)) >= need:
                    break
    finally:
        await stream.aclose()
    return np.concatenate(chunks)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2))) if len(x) else 0.0


async def test_audio_mic_tone_mute_and_far_end_speaker(
        devserver: Any, sdk: Any, kiosk_factory: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _mic, spk = write_alsa(tmp_path, monkeypatch, 440.0)
    kiosk = await kiosk_factory(kiosk_config(camera="none"))

    # 440 Hz into the kiosk's ALSA microphone: measured by the double ...
    stats = await devserver.wait_for(
        lambda: (s := audio_stats(devserver)) and s.audio.frames >= 100 and s, timeout=15,
        what="two seconds of kiosk audio at the double")
    assert stats.audio.dominant_hz == pytest.approx(440, abs=5)
    # ... and by a second real SDK client in the room.
    hz, viewer_track = await viewer_tone(sdk, devserver)
    assert hz == pytest.approx(440, abs=5)

    # Muted: no tone energy reaches the double (nor the viewer).
    assert await kiosk.media.set_track_muted(TrackKind.MICROPHONE, True)
    before = stats.audio.frames
    loud = rms(stats.audio.last_second())
    try:
        await devserver.wait_for(
            lambda: stats.audio.frames >= before + 60
            and rms(stats.audio.last_second()) < loud * 0.01, timeout=6,
            what="silence at the double while muted")
    except TimeoutError:
        # Nothing decoded at all is also "no tone energy": the SDK may stop sending.
        assert stats.audio.frames < before + 60, (rms(stats.audio.last_second()), loud)
    assert rms(await read_audio(viewer_track, 0.5, skip=0.3)) < loud * 0.01
    assert await kiosk.media.set_track_muted(TrackKind.MICROPHONE, False)

    # A 1 kHz far-end tone comes out of the kiosk's speaker (the ALSA playback file).
    await devserver.add_far_end(ROOM, tone_hz=1000, video=False)
    speaker = kiosk.media.speaker
    assert speaker is not None
    async with asyncio.timeout(15):
        await speaker.played.reached(200)
    played = np.frombuffer(spk.read_bytes(), dtype="<i2")
    assert dominant_frequency(played[-48000:], 48000) == pytest.approx(1000, abs=5)


async def test_pattern_camera_size_order_and_rate(devserver: Any, kiosk_factory: Any) -> None:
    fps = 30
    await kiosk_factory(kiosk_config(mic="none", speaker="none", fps=fps))
    stats = await devserver.wait_for(
        lambda: (s := video_stats(devserver)) and s.video.stamped_frames >= 15 and s,
        timeout=15, what="stamped frames at the double")
    v = stats.video
    f0, t0 = v.frames, time.monotonic()
    await devserver.wait_for(lambda: time.monotonic() - t0 >= 10.0, timeout=20,
                             what="a 10 s window of decoded frames")
    rate = (v.frames - f0) / (time.monotonic() - t0)
    assert (v.width, v.height) == (640, 360)
    assert v.out_of_order == 0
    assert rate >= 0.8 * fps, f"{rate:.1f} fps decoded, gaps {v.gaps}"


async def test_h264_path_decoded_by_double(devserver: Any, kiosk_factory: Any) -> None:
    kiosk = await kiosk_factory(kiosk_config(mic="none", speaker="none", encoding="h264"))
    assert kiosk.media.publish_options(TrackKind.CAMERA).video_codec == rtc.VideoCodec.H264
    stats = await devserver.wait_for(
        lambda: (s := video_stats(devserver)) and s.video.stamped_frames >= 30 and s,
        timeout=20, what="stamped H.264 frames decoded at the double")
    assert (stats.video.width, stats.video.height) == (640, 360)
    assert stats.video.out_of_order == 0


async def test_camera_lost_audio_flows_camera_republished(devserver: Any,
                                                          kiosk_factory: Any) -> None:
    faults = CameraFaults()
    over = MediaOverrides(
        camera=CameraChoice("test", lambda: TestPatternCamera(faults), False, "test"),
        microphone=lambda: ToneCapture(440.0), retry=FAST, use_config_devices=False)
    kiosk = await kiosk_factory(kiosk_config(width=320, height=240, fps=15), over)
    first = await devserver.wait_for(
        lambda: (s := video_stats(devserver)) and s.video.stamped_frames >= 5 and s,
        timeout=15, what="first camera track")
    audio = await devserver.wait_for(
        lambda: (s := audio_stats(devserver)) and s.audio.frames >= 50 and s, timeout=15,
        what="kiosk audio")

    faults.lose()
    await devserver.wait_for(lambda: any(
        isinstance(e, TrackStateChanged) and e.kind is TrackKind.CAMERA
        and e.state is TrackState.LOST for e in kiosk.events) or None, timeout=10,
        what="camera LOST posted")
    # The camera is gone for a while: audio keeps arriving at the double throughout.
    n, t0 = audio.audio.frames, time.monotonic()
    await devserver.wait_for(lambda: time.monotonic() - t0 >= 2.0, timeout=10,
                             what="2 s without a camera")
    assert audio.audio.frames - n >= 50 * 1.5  # >= 75 % of 2 s of 20 ms frames
    assert audio.audio.dominant_hz == pytest.approx(440, abs=5)
    assert TrackKind.MICROPHONE in kiosk.publications

    faults.replug()
    second = await devserver.wait_for(
        lambda: (s := video_stats(devserver)) and s is not first
        and s.video.stamped_frames >= 5 and s, timeout=20, what="camera republished")
    assert second.video.width == 320
    assert audio_stats(devserver) is audio  # the microphone was never republished


def ladder_config(devserver: Any, width: int, height: int) -> Config:
    """The session e2e configuration with a quick ladder: 1 s of POOR steps down, 2 s of
    GOOD steps back up (the shipped 10 s / 30 s would make these tests long)."""
    return dataclasses.replace(e2e_config(devserver), camera=CameraConfig(
        backend="test", width=width, height=height, fps=15, degrade_after=1.0,
        restore_after=2.0))


def kiosk_video(devserver: Any) -> Any:
    return devserver.track_stats(SESSION_ROOM, IDENTITY, "video")


def video_muted_at_double(devserver: Any) -> bool | None:
    """The double's mute flag on the kiosk's video publication (None: nothing published)."""
    p = devserver.participant(SESSION_ROOM, IDENTITY)
    tracks = [t for t in (p.tracks.values() if p else []) if t.kind == "video"]
    return tracks[0].muted if len(tracks) == 1 else None


def rungs_seen(history: list[State]) -> list[int]:
    """The ladder's rung indices the runner went through, repeats folded."""
    rungs: list[int] = []
    for state in history:
        if not rungs or rungs[-1] != state.ladder.index:
            rungs.append(state.ladder.index)
    return rungs


async def test_degradation_driven_by_quality_injection(devserver: Any) -> None:
    """Sustained POOR steps the camera 720p -> 360p -> audio only; GOOD brings 720p back."""
    cfg = ladder_config(devserver, 1280, 720)
    async with running_session(cfg) as runner:
        await wait_state(runner, on_air)
        stats = await devserver.wait_for(
            lambda: (s := kiosk_video(devserver)) and s.video.stamped_frames >= 5 and s,
            timeout=15, what="720p frames")
        assert (stats.video.width, stats.video.height) == (1280, 720)
        await devserver.faults.connection_quality(IDENTITY, ServerQuality.POOR)
        await devserver.wait_for(lambda: stats.video.height == 360 or None, timeout=15,
                                 what="stepped down to 360p")
        s = await wait_state(runner, lambda s: s.ladder.rung.size is None and s.camera_muted,
                             within=10)
        assert s.quality is Quality.POOR and s.degradation_label == "audio only"
        await devserver.wait_for(lambda: video_muted_at_double(devserver) is True, timeout=10,
                                 what="the camera muted at the double (audio only)")
        await devserver.faults.connection_quality(IDENTITY, ServerQuality.GOOD)
        await devserver.wait_for(lambda: stats.video.height == 720 or None, timeout=20,
                                 what="back up to 720p")
        await wait_state(runner, lambda s: s.ladder.index == 0 and s.video_live, within=10)
        assert kiosk_video(devserver) is stats  # muted and unmuted, never republished
        assert rungs_seen(history_of(runner)) == [0, 1, 2, 1, 0]


async def test_audio_only_rung_pauses_the_camera_and_good_quality_brings_it_back(
        devserver: Any) -> None:
    """Poor quality down to audio only: the camera is muted (not private) and its LED is dark;
    good quality again: the same publication is unmuted and frames arrive again."""
    cfg = ladder_config(devserver, 320, 240)  # rungs: 240p, audio only
    async with running_session(cfg) as runner:
        await wait_state(runner, on_air)
        stats = await devserver.wait_for(
            lambda: (s := kiosk_video(devserver)) and s.video.stamped_frames >= 5 and s,
            timeout=15, what="kiosk video at the double")
        assert video_muted_at_double(devserver) is False

        await devserver.faults.connection_quality(IDENTITY, ServerQuality.POOR)
        s = await wait_state(runner, lambda s: s.ladder.rung.size is None and s.camera_muted,
                             within=10)
        assert not s.video_live and s.mic_live  # the camera LED is dark, the microphone live
        assert s.camera is TrackState.PUBLISHED  # paused and muted, not unpublished
        await devserver.wait_for(lambda: video_muted_at_double(devserver) is True, timeout=10,
                                 what="the camera muted at the double (audio only)")
        assert runner.state.ladder.rung.size is None and not runner.state.video_live

        frames_before = stats.video.frames
        counter_before = stats.video.last_counter or 0
        await devserver.faults.connection_quality(IDENTITY, ServerQuality.GOOD)
        s = await wait_state(runner, lambda s: s.video_live, within=15)
        assert s.camera is TrackState.PUBLISHED and s.ladder.index == 0 and not s.camera_muted
        await devserver.wait_for(lambda: video_muted_at_double(devserver) is False, timeout=10,
                                 what="the camera unmuted at the double")
        await devserver.wait_for(
            lambda: stats.video.frames >= frames_before + 10
            and (stats.video.last_counter or 0) > counter_before, timeout=15,
            what="fresh camera frames at the double again")
        assert kiosk_video(devserver) is stats  # the same publication throughout

        history = history_of(runner)
        assert not any(h.camera_privacy for h in history)  # never mistaken for privacy
        audio_only = [h for h in history if h.ladder.rung.size is None]
        assert audio_only, "the audio-only rung was never reached"
        assert not any(h.video_live for h in audio_only)  # the LED never lied on that rung
        assert rungs_seen(history) == [0, 1, 0]


async def test_session_runner_with_media_layer(devserver: Any) -> None:
    """The real session Runner drives MediaManager: published, camera lost and republished."""
    faults = CameraFaults()
    cfg = dataclasses.replace(e2e_config(devserver), camera=CameraConfig(
        backend="test", width=320, height=240, fps=15))
    media = MediaManager(cfg, MediaOverrides(
        camera=CameraChoice("test", lambda: TestPatternCamera(faults), False, "test"),
        microphone=lambda: ToneCapture(440.0), retry=FAST, use_config_devices=False))
    identity = cfg.livekit.identity
    async with running_session(cfg, media=media) as runner:
        assert runner.media is media
        await wait_state(runner, published_both, within=20)
        audio = await devserver.wait_for(
            lambda: (s := devserver.track_stats(cfg.livekit.room, identity, "audio"))
            and s.audio.frames >= 50 and s, timeout=15, what="kiosk audio via the runner")
        assert audio.audio.dominant_hz == pytest.approx(440, abs=5)
        first = await devserver.wait_for(
            lambda: (s := devserver.track_stats(cfg.livekit.room, identity, "video"))
            and s.video.stamped_frames >= 5 and s, timeout=15, what="kiosk video")
        faults.lose()
        await wait_state(runner, lambda s: s.camera is TrackState.LOST, within=10)
        assert runner.state.microphone is TrackState.PUBLISHED
        faults.replug()
        await wait_state(runner, lambda s: s.camera is TrackState.PUBLISHED, within=20)
        await devserver.wait_for(
            lambda: ((s := devserver.track_stats(cfg.livekit.room, identity, "video"))
            and s is not first and s.video.stamped_frames >= 5) or None, timeout=15,
            what="camera republished by the runner")

