"""MediaManager as the session sees it: states posted, tracks handed out, devices re-acquired."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import numpy as np
import pytest
from livekit import rtc
from media_helpers import Posted, WatchedCamera, closed_within, collect_audio, collect_frames

from appliance.config import AudioConfig, CameraConfig, Config, MicrophoneConfig, SpeakerConfig
from appliance.devserver.stats import dominant_frequency
from appliance.errors import DeviceError
from appliance.media import MediaManager, MediaOverrides
from appliance.media.audio import MicrophoneFaults, ToneCapture
from appliance.media.backends import CameraChoice
from appliance.media.pattern import CameraFaults, TestPatternCamera
from appliance.media.supervisor import RetryPolicy
from appliance.session.media import MediaLayer
from appliance.session.model import TrackKind, TrackState

CAM, MIC = TrackKind.CAMERA, TrackKind.MICROPHONE
S = TrackState
FAST = RetryPolicy(initial=0.05, maximum=0.2, stable=5.0)


def config(**camera: object) -> Config:
    cam = dataclasses.replace(CameraConfig(backend="test", width=320, height=240, fps=30),
                              **camera)  # type: ignore[arg-type]
    return Config(camera=cam, microphone=MicrophoneConfig(backend="test"),
                  speaker=SpeakerConfig(backend="none"),
                  audio=AudioConfig(echo_cancellation=False, noise_suppression=False,
                                    auto_gain_control=False, high_pass_filter=True))


def manager(cam_faults: CameraFaults, mic_faults: MicrophoneFaults) -> MediaManager:
    over = MediaOverrides(
        camera=CameraChoice("test", lambda: TestPatternCamera(cam_faults), False, "test"),
        microphone=lambda: ToneCapture(440.0, faults=mic_faults),
        retry=FAST, use_config_devices=False)
    return MediaManager(config(), over)


def acquired(kind: TrackKind) -> Callable[[object], bool]:
    return lambda e: getattr(e, "kind", None) is kind and getattr(e, "state", None) is S.ACQUIRED


async def test_start_posts_states_and_hands_out_tracks(posted: Posted) -> None:
    media = manager(CameraFaults(), MicrophoneFaults())
    assert isinstance(media, MediaLayer)
    await media.start(posted)
    try:
        await posted.wait(acquired(CAM))
        await posted.wait(acquired(MIC))
        tracks = media.local_tracks()
        assert isinstance(tracks[CAM], rtc.LocalVideoTrack)
        assert isinstance(tracks[MIC], rtc.LocalAudioTrack)
        assert posted.states(CAM) == [S.ACQUIRING, S.ACQUIRED]
        opts = media.publish_options(CAM)
        assert opts.source == rtc.TrackSource.SOURCE_CAMERA and not opts.simulcast
        assert media.publish_options(MIC).source == rtc.TrackSource.SOURCE_MICROPHONE
    finally:
        await media.aclose()
        await media.aclose()
    assert posted.states(CAM)[-2:] == [S.STOPPING, S.STOPPED]
    assert posted.states(MIC)[-2:] == [S.STOPPING, S.STOPPED]


async def test_camera_lost_audio_unaffected_camera_back(posted: Posted) -> None:
    cam_faults = CameraFaults()
    media = manager(cam_faults, MicrophoneFaults())
    await media.start(posted)
    try:
        await posted.wait(acquired(CAM))
        await posted.wait(acquired(MIC))
        first = media.local_tracks()[CAM]
        mic_track = media.local_tracks()[MIC]
        mic = media.microphone.pipeline if media.microphone else None
        assert mic is not None
        cam_faults.lose()
        await posted.wait(lambda e: getattr(e, "kind", None) is CAM and e.state is S.LOST)
        assert CAM not in media.local_tracks()
        # Audio keeps flowing while the camera is gone: same track, tone still there.
        async with asyncio.timeout(5):
            await mic.sent.reached(mic.sent.count + 50)  # half a second more while lost
        pcm = await collect_audio(mic_track, 0.5, skip=0.05)
        assert abs((dominant_frequency(pcm, 48000) or 0) - 440.0) < 5
        assert media.local_tracks()[MIC] is mic_track
        n = len(posted.events)
        cam_faults.replug()
        await posted.wait(acquired(CAM), start=n)
        second = media.local_tracks()[CAM]
        assert second is not first  # a fresh track to republish
        assert len(await collect_frames(second, 3)) == 3
        assert [s for s in posted.states(MIC)] == [S.ACQUIRING, S.ACQUIRED]
        cam_states = posted.states(CAM)
        assert cam_states[:3] == [S.ACQUIRING, S.ACQUIRED, S.LOST]
        assert cam_states[-2:] == [S.ACQUIRING, S.ACQUIRED]
    finally:
        await media.aclose()


async def test_microphone_io_error_reacquired(posted: Posted) -> None:
    mic_faults = MicrophoneFaults()
    media = manager(CameraFaults(), mic_faults)
    await media.start(posted)
    try:
        await posted.wait(acquired(MIC))
        assert await media.set_track_muted(MIC, True)  # the SDK track flipped: an echo is due
        assert not await media.set_track_muted(MIC, True)  # already muted: nothing flips
        n = len(posted.events)
        mic_faults.fail_next_read(opens_failing=2)
        await posted.wait(lambda e: getattr(e, "kind", None) is MIC and e.state is S.LOST)
        await posted.wait(acquired(MIC), start=n)
        assert posted.states(MIC) == [S.ACQUIRING, S.ACQUIRED, S.LOST,
                                      S.ACQUIRING, S.LOST, S.ACQUIRING, S.LOST,  # refused
                                      S.ACQUIRING, S.ACQUIRED]
        assert mic_faults.opens == 4  # first open, two refused, one good
        track = media.local_tracks()[MIC]
        assert track.muted  # mute survives re-acquisition
        assert not await media.set_track_muted(MIC, True)  # the new track opened muted
        pcm = await collect_audio(track, 0.3)
        assert np.abs(pcm).max(initial=0) == 0
        assert CAM in media.local_tracks()  # the camera never noticed
    finally:
        await media.aclose()


async def test_camera_disabled_and_enabled(posted: Posted) -> None:
    media = manager(CameraFaults(), MicrophoneFaults())
    await media.start(posted)
    try:
        await posted.wait(acquired(CAM))
        await media.set_camera_enabled(False)
        await posted.wait(lambda e: getattr(e, "kind", None) is CAM and e.state is S.STOPPED)
        assert CAM not in media.local_tracks()
        n = len(posted.events)
        await media.set_camera_enabled(True)
        await posted.wait(acquired(CAM), start=n)
    finally:
        await media.aclose()


async def test_video_mode_switches_and_pauses_capture_without_muting(posted: Posted) -> None:
    """The session's SetVideoMode: capture at the rung's size, pause for audio only; the
    camera's LiveKit mute is a separate SetTrackMuted, so pausing alone never mutes."""
    cam_faults = CameraFaults()
    media = MediaManager(config(width=1280, height=720), MediaOverrides(
        camera=CameraChoice("test", lambda: WatchedCamera(cam_faults), False, "test"),
        retry=FAST, use_config_devices=False))
    await media.start(posted)
    try:
        await posted.wait(acquired(CAM))
        track = media.local_tracks()[CAM]
        pipeline = media.camera.pipeline if media.camera else None
        assert pipeline is not None
        await media.set_video_mode((640, 360))
        frames = await collect_frames(track, 4)
        assert (frames[-1].width, frames[-1].height) == (640, 360)
        assert not track.muted
        await media.set_video_mode(None)  # audio only: capture paused ...
        assert await closed_within(pipeline.device)
        assert not track.muted  # ... but the mute is the session's own command
        assert await media.set_track_muted(CAM, True)
        assert track.muted
        assert not await media.set_track_muted(CAM, True)  # no flip: no echo to expect
        assert await media.set_track_muted(CAM, False)
        await media.set_video_mode((1280, 720))
        frames = await collect_frames(track, 4)
        assert (frames[-1].width, frames[-1].height) == (1280, 720)
        assert not track.muted
        assert media.local_tracks()[CAM] is track  # the same track throughout: no republish
        assert posted.states(CAM) == [S.ACQUIRING, S.ACQUIRED]
    finally:
        await media.aclose()


async def test_video_mode_and_camera_mute_apply_to_a_camera_opened_later(
        posted: Posted) -> None:
    """Wishes set while the camera is gone are applied to the next acquisition."""
    cam_faults = CameraFaults()
    media = MediaManager(config(width=1280, height=720), MediaOverrides(
        camera=CameraChoice("test", lambda: WatchedCamera(cam_faults), False, "test"),
        retry=FAST, use_config_devices=False))
    await media.start(posted)
    try:
        await posted.wait(acquired(CAM))
        cam_faults.lose()
        await posted.wait(lambda e: getattr(e, "kind", None) is CAM and e.state is S.LOST)
        assert not await media.set_track_muted(CAM, True)  # no track: nothing flipped
        await media.set_video_mode(None)
        n = len(posted.events)
        cam_faults.replug()
        await posted.wait(acquired(CAM), start=n)
        track = media.local_tracks()[CAM]
        pipeline = media.camera.pipeline if media.camera else None
        assert pipeline is not None
        assert track.muted  # opened muted, before it is ever published
        assert await closed_within(pipeline.device)  # and paused (audio only)
        await media.set_video_mode((640, 360))
        assert await media.set_track_muted(CAM, False)
        frames = await collect_frames(track, 4)
        assert (frames[-1].width, frames[-1].height) == (640, 360)
    finally:
        await media.aclose()


async def test_h264_test_camera_publishes_encoded(posted: Posted) -> None:
    media = MediaManager(config(encoding="h264"), MediaOverrides(retry=FAST))
    await media.start(posted)
    try:
        await posted.wait(acquired(CAM))
        opts = media.publish_options(CAM)
        assert opts.video_codec == rtc.VideoCodec.H264
        assert opts.video_encoder == rtc.VideoEncoderBackend.ENCODER_BACKEND_PRE_ENCODED
        assert not opts.simulcast
        pipeline = media.camera.pipeline if media.camera else None
        assert pipeline is not None and pipeline.encoded
        async with asyncio.timeout(10):
            await pipeline.sent.reached(10)
    finally:
        await media.aclose()



async def test_simulate_camera_unplugs_and_replugs_the_configured_test_camera(
        posted: Posted) -> None:
    over = MediaOverrides(retry=FAST, speaker=None)
    media = MediaManager(config(), over)  # the test camera as the configuration resolves it
    await media.start(posted)
    try:
        await posted.wait(acquired(CAM))
        media.simulate_camera(False)
        await posted.wait(lambda e: getattr(e, "kind", None) is CAM and e.state is S.LOST)
        n = len(posted.events)
        media.simulate_camera(True)
        await posted.wait(acquired(CAM), start=n)
    finally:
        await media.aclose()
    real = MediaManager(config(backend="none"), MediaOverrides(retry=FAST))
    await real.start(Posted())
    try:
        with pytest.raises(DeviceError, match="only the test camera"):
            real.simulate_camera(False)
    finally:
        await real.aclose()
