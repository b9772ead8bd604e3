"""Selective subscription at the double with real SDK clients: auto_subscribe off, subscribe,
unsubscribe, resubscribe, resume; in both signalling modes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit import rtc

pytestmark = pytest.mark.e2e

MODES = [pytest.param(True, id="v1-single-pc"), pytest.param(False, id="rtc-two-pc")]
AUDIO, VIDEO = rtc.TrackKind.KIND_AUDIO, rtc.TrackKind.KIND_VIDEO


def forwarded(srv: Any, identity: str) -> list[tuple[str, str]]:
    """(publisher, kind) of every track the double sends to `identity` now."""
    p = srv.participant("lobby", identity)
    return sorted((t.owner.identity, t.kind) for t in p.subscriptions.forwarded())


def publication(room: Any, kind: int) -> Any:
    (pub,) = [pub for p in room.remote_participants.values()
              for pub in p.track_publications.values() if pub.kind == kind]
    return pub


@pytest.mark.parametrize("single_pc", MODES)
async def test_nothing_forwarded_until_subscribed(devserver: Any, sdk: Any,
                                                  single_pc: bool) -> None:
    await devserver.add_far_end("lobby", tone_hz=1000, video=True)
    room, events = await sdk.connect(devserver.url, devserver.mint_token("kiosk", "lobby"),
                                     single_pc=single_pc, auto_subscribe=False)
    kiosk = devserver.participant("lobby", "kiosk")
    assert not kiosk.subscriptions.auto
    # Forwarding is decided at join: with auto_subscribe off nothing was attached.
    assert forwarded(devserver, "kiosk") == []

    publication(room, AUDIO).set_subscribed(True)
    track, _pub, who = await events.wait("track_subscribed", timeout=15)
    assert (who.identity, track.kind) == ("far-end", AUDIO)
    assert forwarded(devserver, "kiosk") == [("far-end", "audio")]
    hz = await asyncio.wait_for(sdk.tone_hz(track), 15)
    assert hz == pytest.approx(1000, abs=5)
    assert events.names.count("track_subscribed") == 1  # a second of audio, and no video

    publication(room, VIDEO).set_subscribed(True)
    video, _pub, _who = await events.wait("track_subscribed", timeout=15,
                                          match=lambda t, *_: t.kind == VIDEO)
    sizes = await asyncio.wait_for(sdk.video_frames(video, 5), 15)
    assert sizes[-1] == (320, 240)

    # Unsubscribing stops the forwarding: the double ends what it sent to this participant.
    sent_audio = kiosk.outgoing[publication(room, AUDIO).sid].forward
    publication(room, AUDIO).set_subscribed(False)
    await devserver.wait_for(lambda: forwarded(devserver, "kiosk") == [("far-end", "video")],
                             timeout=10, what="audio no longer forwarded")
    assert sent_audio.readyState == "ended"
    await events.wait("track_unsubscribed", timeout=10, match=lambda t, *_: t.kind == AUDIO)

    # ... and subscribing again brings it back (on a fresh media section).
    publication(room, AUDIO).set_subscribed(True)
    again, _pub, _who = await events.wait("track_subscribed", timeout=15,
                                          match=lambda t, *_: t.kind == AUDIO)
    assert await asyncio.wait_for(sdk.tone_hz(again), 15) == pytest.approx(1000, abs=5)


@pytest.mark.parametrize("single_pc", MODES)
async def test_later_publications_wait_for_a_subscription(devserver: Any, sdk: Any,
                                                          single_pc: bool) -> None:
    room, events = await sdk.connect(devserver.url, devserver.mint_token("kiosk", "lobby"),
                                     single_pc=single_pc, auto_subscribe=False)
    publisher, _ = await sdk.connect(devserver.url, devserver.mint_token("cam", "lobby"),
                                     single_pc=single_pc)
    await sdk.publish_tone(publisher, 700.0)
    await sdk.publish_pattern(publisher, 320, 240, fps=15, simulcast=False)
    cam = devserver.participant("lobby", "cam")
    await devserver.wait_for(lambda: len(cam.tracks) == 2
                             and all(t.ready for t in cam.tracks.values()),
                             timeout=15, what="both tracks of the publisher arriving")
    assert forwarded(devserver, "kiosk") == []
    await events.wait("track_published", timeout=10, match=lambda p, _w: p.kind == AUDIO)
    publication(room, AUDIO).set_subscribed(True)
    track, _pub, _who = await events.wait("track_subscribed", timeout=15)
    assert track.kind == AUDIO
    assert await asyncio.wait_for(sdk.tone_hz(track), 15) == pytest.approx(700, abs=5)
    assert forwarded(devserver, "kiosk") == [("cam", "audio")]


async def test_resume_keeps_subscriptions(devserver: Any, sdk: Any) -> None:
    await devserver.add_far_end("lobby", tone_hz=1000, video=True)
    room, events = await sdk.connect(devserver.url, devserver.mint_token("kiosk", "lobby"),
                                     auto_subscribe=False)
    publication(room, AUDIO).set_subscribed(True)
    await events.wait("track_subscribed", timeout=15)
    await devserver.faults.close_sockets("kiosk")
    await events.wait("reconnected", timeout=20)
    # The SDK's SyncState names the subscribed track; the session kept it all along.
    assert forwarded(devserver, "kiosk") == [("far-end", "audio")]
    assert devserver.participant("lobby", "kiosk").resumes == 1
    track = publication(room, AUDIO).track
    assert await asyncio.wait_for(sdk.tone_hz(track), 15) == pytest.approx(1000, abs=5)


async def test_auto_subscribe_default_forwards_everything(devserver: Any, sdk: Any) -> None:
    await devserver.add_far_end("lobby", tone_hz=1000, video=True)
    _room, events = await sdk.connect(devserver.url, devserver.mint_token("viewer", "lobby"))
    assert devserver.participant("lobby", "viewer").subscriptions.auto
    for _ in range(2):
        await events.wait("track_subscribed", timeout=15)
    assert forwarded(devserver, "viewer") == [("far-end", "audio"), ("far-end", "video")]
