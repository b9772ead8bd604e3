"""Pipelines into real SDK sources, read back through rtc streams on the local tracks."""

from __future__ import annotations

import asyncio
import copy

import numpy as np
from livekit import rtc
from media_helpers import (
    AlsaFiles,
    WatchedCamera,
    closed_within,
    collect_audio,
    collect_frames,
    luma,
)

from appliance.devserver.stats import dominant_frequency
from appliance.media.audio import AlsaCapture, AlsaPlayback, MicrophoneFaults, ToneCapture
from appliance.media.camera import CameraPipeline
from appliance.media.microphone import MicrophonePipeline
from appliance.media.pattern import CameraFaults, TestPatternCamera
from appliance.media.speaker import Speaker
from appliance.media.stamp import read_stamp
from appliance.media.video import VideoMode


async def test_alsa_microphone_tone_reaches_the_source(alsa_files: AlsaFiles) -> None:
    alsa_files.write_tone(440.0, 5.0)
    apm = rtc.AudioProcessingModule(high_pass_filter=True)
    mic = await MicrophonePipeline.open(AlsaCapture("kiosk_mic"), apm, muted=False)
    try:
        pcm = await collect_audio(mic.track, 1.0, skip=0.2)
    finally:
        await mic.aclose()
        await mic.aclose()
    hz = dominant_frequency(pcm, 48000)
    assert hz is not None and abs(hz - 440.0) < 5
    assert mic.sent.count >= 100


async def test_muted_microphone_sends_nothing() -> None:
    mic = await MicrophonePipeline.open(ToneCapture(440.0), None, muted=True)
    try:
        assert mic.track.muted
        pcm = await collect_audio(mic.track, 0.5)
        assert mic.sent.count == 0 and mic.frames_dropped_muted > 0
        assert np.abs(pcm).max(initial=0) == 0
        assert not mic.set_muted(True)  # already muted: the LiveKit flag did not flip
        assert mic.set_muted(False)  # flipped: the SDK will echo it
        assert not mic.track.muted and not mic.muted
        pcm = await collect_audio(mic.track, 0.5, skip=0.1)
        assert np.abs(pcm).max() > 1000
    finally:
        await mic.aclose()


async def test_microphone_io_error_resolves_lost() -> None:
    faults = MicrophoneFaults()
    mic = await MicrophonePipeline.open(ToneCapture(440.0, faults=faults), None, muted=False)
    faults.fail_next_read()
    reason = await asyncio.wait_for(mic.lost, 5)
    assert "I/O error" in reason
    await mic.aclose()


async def test_camera_frames_in_order_at_size() -> None:
    cam = await CameraPipeline.open(TestPatternCamera(), VideoMode(640, 360, 30), encoded=False)
    try:
        frames = await collect_frames(cam.track, 15)
    finally:
        await cam.aclose()
        await cam.aclose()
    assert {(f.width, f.height) for f in frames} == {(640, 360)}
    counters = [s.counter for s in (read_stamp(luma(f)) for f in frames) if s]
    assert len(counters) >= 14 and counters == sorted(counters)


async def test_camera_mode_switch_and_pause() -> None:
    device = WatchedCamera()
    cam = await CameraPipeline.open(device, VideoMode(640, 360, 30), encoded=False)
    try:
        await collect_frames(cam.track, 2)
        cam.set_mode(VideoMode(320, 180, 30))
        frames = await collect_frames(cam.track, 10)
        assert (frames[-1].width, frames[-1].height) == (320, 180)
        cam.set_mode(None)
        assert await closed_within(device)  # paused: the device is released
        assert not cam.track.muted  # pausing is not muting: the session mutes separately
        cam.set_mode(VideoMode(640, 360, 30))
        frames = await collect_frames(cam.track, 10)
        assert (frames[-1].width, frames[-1].height) == (640, 360)
        assert cam.mode == VideoMode(640, 360, 30)
    finally:
        await cam.aclose()


async def test_camera_set_muted_reports_whether_the_flag_flipped() -> None:
    cam = await CameraPipeline.open(TestPatternCamera(), VideoMode(320, 180, 30), encoded=False)
    try:
        assert not cam.set_muted(False)  # opened unmuted: nothing to flip
        assert cam.set_muted(True) and cam.track.muted
        assert not cam.set_muted(True)
        assert cam.set_muted(False) and not cam.track.muted
        frames = await collect_frames(cam.track, 3)  # still capturing after the round trip
        assert (frames[-1].width, frames[-1].height) == (320, 180)
    finally:
        await cam.aclose()


async def test_camera_loss_resolves_lost() -> None:
    faults = CameraFaults()
    cam = await CameraPipeline.open(TestPatternCamera(faults), VideoMode(320, 240, 30),
                                    encoded=False)
    faults.lose()
    assert "lost" in await asyncio.wait_for(cam.lost, 5)
    await cam.aclose()


async def test_speaker_plays_remote_audio_to_alsa(alsa_files: AlsaFiles) -> None:
    # A local tone track stands in for a remote one: AudioStream reads both the same way.
    far = await MicrophonePipeline.open(ToneCapture(1000.0), None, muted=False)
    apm = rtc.AudioProcessingModule(echo_cancellation=True)
    speaker = Speaker(lambda: AlsaPlayback("kiosk_spk"), apm)
    speaker.start()
    speaker.add_track(far.track)
    try:
        async with asyncio.timeout(10):
            await speaker.played.reached(120)  # 1.2 s of audio written
    finally:
        await speaker.aclose()
        await speaker.aclose()
        await far.aclose()
    played = alsa_files.played()[-48000:]
    hz = dominant_frequency(played, 48000)
    assert hz is not None and abs(hz - 1000.0) < 5


async def test_speaker_without_device_does_not_crash() -> None:
    from appliance.errors import DeviceError

    opened = asyncio.Event()
    loop = asyncio.get_running_loop()

    def factory() -> AlsaPlayback:
        loop.call_soon_threadsafe(opened.set)
        raise DeviceError("no card")

    speaker = Speaker(factory, None)
    speaker.start()
    await asyncio.wait_for(opened.wait(), 5)
    await speaker.aclose()


async def test_speaker_takes_the_new_track_object_of_a_rejoin(alsa_files: AlsaFiles) -> None:
    # After the SDK's own rejoin the same publication comes back as a new track object, and
    # its subscription may be handled before the old object's unsubscription: the late
    # unsubscription of the old object must not silence the new one.
    far = await MicrophonePipeline.open(ToneCapture(1000.0), None, muted=False)
    speaker = Speaker(lambda: AlsaPlayback("kiosk_spk"), None)
    speaker.start()
    again = copy.copy(far.track)  # same sid, another object, as after a rejoin
    try:
        speaker.add_track(far.track)
        speaker.add_track(again)
        await speaker.remove_track(far.track.sid, far.track)  # the old object's, late
        async with asyncio.timeout(10):
            await speaker.played.reached(60)  # still playing: the new object's feed
    finally:
        await speaker.aclose()
        await far.aclose()
    played = alsa_files.played()[-24000:]
    hz = dominant_frequency(played, 48000)
    assert hz is not None and abs(hz - 1000.0) < 5
