"""Real SDK clients publish and subscribe through the double, in both signalling modes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit import rtc

pytestmark = pytest.mark.e2e

MODES = [pytest.param(True, id="v1-single-pc"), pytest.param(False, id="rtc-two-pc")]


@pytest.mark.parametrize("single_pc", MODES)
async def test_publish_measure_and_forward(devserver: Any, sdk: Any, single_pc: bool) -> None:
    kiosk, _ = await sdk.connect(devserver.url, devserver.mint_token("kiosk", "lobby"),
                                 single_pc=single_pc)
    await sdk.publish_tone(kiosk, 440.0)
    await sdk.publish_pattern(kiosk, 640, 480, fps=30)

    audio = await devserver.wait_for(
        lambda: (s := devserver.track_stats("lobby", "kiosk", "audio")) and s.audio.frames >= 60
        and s, timeout=15, what="a second of kiosk audio at the double")
    assert audio.audio.dominant_hz == pytest.approx(440, abs=5)
    assert audio.packets > 0
    assert audio.payload_bytes > audio.packets * 20  # Opus frames are tens of bytes each
    video = await devserver.wait_for(
        lambda: (s := devserver.track_stats("lobby", "kiosk", "video"))
        and s.video.stamped_frames >= 20 and s, timeout=15, what="stamped kiosk video")
    assert video.video.out_of_order == 0
    assert video.video.last_counter > video.video.first_counter
    assert video.video.width > 0 and video.video.latency_ms is not None
    assert video.payload_bytes > video.packets * 50

    _viewer, events = await sdk.connect(devserver.url, devserver.mint_token("viewer", "lobby"),
                                       single_pc=single_pc)
    subscribed: dict[int, Any] = {}
    while len(subscribed) < 2:
        track, _pub, participant = await events.wait("track_subscribed", timeout=15)
        assert participant.identity == "kiosk"
        subscribed[track.kind] = track
    hz = await asyncio.wait_for(sdk.tone_hz(subscribed[rtc.TrackKind.KIND_AUDIO]), 15)
    assert hz == pytest.approx(440, abs=5)
    sizes = await asyncio.wait_for(sdk.video_frames(subscribed[rtc.TrackKind.KIND_VIDEO], 10), 15)
    assert all(w > 0 and h > 0 for w, h in sizes)


@pytest.mark.parametrize("single_pc", MODES)
async def test_far_end_tone_reaches_the_kiosk(devserver: Any, sdk: Any, single_pc: bool) -> None:
    far = await devserver.add_far_end("lobby", tone_hz=1000, video=True)
    _kiosk, events = await sdk.connect(devserver.url, devserver.mint_token("kiosk", "lobby"),
                                      single_pc=single_pc)
    tracks: dict[int, Any] = {}
    while len(tracks) < 2:
        track, _pub, participant = await events.wait("track_subscribed", timeout=15)
        assert participant.identity == "far-end"
        tracks[track.kind] = track
    hz = await asyncio.wait_for(sdk.tone_hz(tracks[rtc.TrackKind.KIND_AUDIO]), 15)
    assert hz == pytest.approx(1000, abs=5)
    sizes = await asyncio.wait_for(sdk.video_frames(tracks[rtc.TrackKind.KIND_VIDEO], 5), 15)
    assert sizes[-1] == (320, 240)

    await far.leave()
    (gone,) = await events.wait("participant_disconnected", timeout=10)
    assert gone.identity == "far-end"
    await far.rejoin()
    (back,) = await events.wait("participant_connected", timeout=10)
    assert back.identity == "far-end"
    await events.wait("track_subscribed", timeout=15)


async def test_sdk_falls_back_to_two_pcs_without_v1_path(devserver_factory: Any,
                                                        sdk: Any) -> None:
    srv = await devserver_factory(v1_path=False)  # an older LiveKit server
    room, _ = await sdk.connect(srv.url, srv.mint_token("kiosk", "lobby"), single_pc=True)
    await sdk.publish_tone(room, 440.0)
    stats = await srv.wait_for(
        lambda: (s := srv.track_stats("lobby", "kiosk", "audio")) and s.audio.frames >= 60 and s,
        timeout=15, what="audio over the /rtc fallback")
    assert not srv.participant("lobby", "kiosk").single_pc
    assert stats.audio.dominant_hz == pytest.approx(440, abs=5)
