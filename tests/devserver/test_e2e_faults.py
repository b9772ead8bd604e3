"""Every fault of the double drives the SDK behaviour the README's test-double section names."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit import rtc

pytestmark = pytest.mark.e2e

MODES = [pytest.param(True, id="v1-single-pc"), pytest.param(False, id="rtc-two-pc")]


async def _audio_frames(srv: Any, identity: str = "kiosk") -> int:
    stats = srv.track_stats("lobby", identity, "audio")
    return stats.audio.frames if stats is not None else 0


async def _kiosk(srv: Any, sdk: Any, single_pc: bool = True) -> tuple[Any, Any]:
    room, events = await sdk.connect(srv.url, srv.mint_token("kiosk", "lobby"),
                                     single_pc=single_pc)
    await sdk.publish_tone(room, 440.0)
    await srv.wait_for(lambda: (s := srv.track_stats("lobby", "kiosk", "audio"))
                       and s.audio.frames > 10, timeout=15, what="kiosk audio")
    return room, events


async def _media_flows_again(srv: Any) -> None:
    before = await _audio_frames(srv)
    await srv.wait_for(lambda: (s := srv.track_stats("lobby", "kiosk", "audio"))
                       and s.audio.frames > before + 25, timeout=20, what="audio after recovery")


@pytest.mark.parametrize("single_pc", MODES)
async def test_closed_socket_resumes(devserver: Any, sdk: Any, single_pc: bool) -> None:
    room, events = await _kiosk(devserver, sdk, single_pc)
    sid = devserver.participant("lobby", "kiosk").sid
    assert await devserver.faults.close_sockets("kiosk") == 1
    await events.wait("reconnecting")
    await events.wait("reconnected", timeout=20)
    assert [e.kind for e in devserver.events if e.identity == "kiosk"][-1] == "resume"
    assert devserver.participant("lobby", "kiosk").sid == sid  # same session, not a rejoin
    await _media_flows_again(devserver)
    assert room.connection_state == rtc.ConnectionState.CONN_CONNECTED


@pytest.mark.parametrize("single_pc", MODES)
async def test_refused_resume_rejoins_and_republishes(devserver: Any, sdk: Any,
                                                      single_pc: bool) -> None:
    _room, events = await _kiosk(devserver, sdk, single_pc)
    old_sid = devserver.participant("lobby", "kiosk").sid
    devserver.faults.set_refuse_resumes(True)
    await devserver.faults.close_sockets("kiosk")
    await events.wait("reconnected", timeout=30)
    kinds = [e.kind for e in devserver.events if e.identity == "kiosk"]
    assert "resume_refused" in kinds and kinds[-1] == "join"
    participant = devserver.participant("lobby", "kiosk")
    assert participant.sid != old_sid
    # The SDK republished its microphone on the fresh session and media flows again.
    await devserver.wait_for(lambda: (s := devserver.track_stats("lobby", "kiosk", "audio"))
                             and s.audio.frames > 25, timeout=20, what="republished audio")


async def test_leave_disconnect(devserver: Any, sdk: Any) -> None:
    _room, events = await _kiosk(devserver, sdk)
    await devserver.faults.leave("DISCONNECT", "kiosk")
    (reason,) = await events.wait("disconnected")
    assert reason != rtc.DisconnectReason.CLIENT_INITIATED
    assert devserver.participant("lobby", "kiosk") is None


async def test_leave_resume(devserver: Any, sdk: Any) -> None:
    _room, events = await _kiosk(devserver, sdk)
    await devserver.faults.leave("RESUME", "kiosk")
    await events.wait("reconnected", timeout=20)
    assert [e.kind for e in devserver.events if e.identity == "kiosk"][-1] == "resume"
    await _media_flows_again(devserver)


async def test_leave_reconnect_rejoins(devserver: Any, sdk: Any) -> None:
    _room, events = await _kiosk(devserver, sdk)
    old_sid = devserver.participant("lobby", "kiosk").sid
    await devserver.faults.leave("RECONNECT", "kiosk")
    await events.wait("reconnected", timeout=30)
    assert devserver.participant("lobby", "kiosk").sid != old_sid
    await devserver.wait_for(lambda: (s := devserver.track_stats("lobby", "kiosk", "audio"))
                             and s.audio.frames > 25, timeout=20, what="republished audio")


async def test_forget_all_state_rejoins(devserver: Any, sdk: Any) -> None:
    _room, events = await _kiosk(devserver, sdk)
    await devserver.faults.forget()
    await events.wait("reconnected", timeout=30)
    assert "resume_refused" in [e.kind for e in devserver.events]
    await devserver.wait_for(lambda: (s := devserver.track_stats("lobby", "kiosk", "audio"))
                             and s.audio.frames > 25, timeout=20, what="republished audio")


async def test_connection_quality(devserver: Any, sdk: Any) -> None:
    _room, events = await _kiosk(devserver, sdk)
    for quality, expected in (("POOR", rtc.ConnectionQuality.QUALITY_POOR),
                              ("LOST", rtc.ConnectionQuality.QUALITY_LOST),
                              ("EXCELLENT", rtc.ConnectionQuality.QUALITY_EXCELLENT)):
        await devserver.faults.connection_quality("kiosk", quality)
        participant, got = await events.wait("connection_quality_changed")
        assert participant.identity == "kiosk" and got == expected


async def test_refresh_token(devserver: Any, sdk: Any) -> None:
    _room, events = await sdk.connect(devserver.url, devserver.mint_token("kiosk", "lobby"))
    assert await devserver.faults.refresh_token("kiosk") == 1
    await events.wait("token_refreshed")


@pytest.mark.parametrize("single_pc", MODES)
async def test_server_mute_reaches_owner_and_subscriber(devserver: Any, sdk: Any,
                                                        single_pc: bool) -> None:
    _kiosk_room, kiosk_events = await _kiosk(devserver, sdk, single_pc)
    _viewer, viewer_events = await sdk.connect(
        devserver.url, devserver.mint_token("viewer", "lobby"), single_pc=single_pc)
    await viewer_events.wait("track_subscribed")
    assert await devserver.faults.mute("kiosk", "audio") == 1
    await kiosk_events.wait("track_muted")
    participant, _pub = await viewer_events.wait("track_muted")
    assert participant.identity == "kiosk"
    assert devserver.track_stats("lobby", "kiosk", "audio") is not None
    track = next(t for t in devserver.participant("lobby", "kiosk").tracks.values())
    assert track.muted


async def test_black_hole_stops_media_not_signalling(devserver: Any, sdk: Any) -> None:
    room, events = await _kiosk(devserver, sdk)
    devserver.faults.black_hole(True)
    stats = devserver.track_stats("lobby", "kiosk", "audio")
    # Once the frames already in flight have drained, nothing more arrives.
    await devserver.wait_for(lambda: stats.idle_for() > 1.0, timeout=5, what="media to stop")
    packets = stats.packets
    await room.local_participant.publish_data(b"ping")  # signalling and data stay up
    assert room.connection_state == rtc.ConnectionState.CONN_CONNECTED
    devserver.faults.black_hole(False)
    await devserver.wait_for(lambda: stats.packets > packets + 25, timeout=10,
                             what="media after the black hole")
    assert "reconnecting" not in events.names


async def test_reject_503_then_connect(devserver: Any, sdk: Any) -> None:
    devserver.faults.reject(503, seconds=30)
    with pytest.raises(rtc.ConnectError) as info:
        await sdk.connect(devserver.url, devserver.mint_token("kiosk", "lobby"))
    assert "503" in str(info.value) or "unavailable" in str(info.value)
    devserver.faults.clear()
    await sdk.connect(devserver.url, devserver.mint_token("kiosk", "lobby"))


async def test_reject_401_reason_in_connect_error(devserver: Any, sdk: Any) -> None:
    devserver.faults.reject(401, seconds=30)
    with pytest.raises(rtc.ConnectError, match="fault: unauthorized"):
        await sdk.connect(devserver.url, devserver.mint_token("kiosk", "lobby"))


@pytest.mark.parametrize("single_pc", MODES)
@pytest.mark.parametrize(
    ("token_kind", "reason"),
    [("expired", "token is expired"), ("bad-signature", "Signature verification failed"),
     ("no-join", "permissions denied")],
)
async def test_bad_tokens_are_rejected_with_reason(devserver: Any, sdk: Any, single_pc: bool,
                                                   token_kind: str, reason: str) -> None:
    import datetime

    from appliance.devserver.auth import mint_token

    if token_kind == "expired":
        token = devserver.mint_token("kiosk", "lobby", ttl=datetime.timedelta(seconds=-10))
    elif token_kind == "bad-signature":
        token = mint_token(devserver.api_key, "not-the-secret-" * 3, "kiosk", "lobby")
    else:
        token = devserver.mint_token("kiosk", "lobby", room_join=False)
    with pytest.raises(rtc.ConnectError, match=reason):
        await sdk.connect(devserver.url, token, single_pc=single_pc)


@pytest.mark.slow
async def test_frozen_signalling_makes_the_sdk_reconnect(devserver_factory: Any, sdk: Any) -> None:
    srv = await devserver_factory(ping_interval=1, ping_timeout=3)
    _room, events = await _kiosk(srv, sdk)
    srv.faults.freeze(6.0)
    await events.wait("reconnecting", timeout=10)  # ping timeout: the SDK gives up the socket
    await events.wait("reconnected", timeout=30)
    await _media_flows_again(srv)


@pytest.mark.parametrize("single_pc", MODES)
async def test_unpublish_and_leave_reach_the_subscriber(devserver: Any, sdk: Any,
                                                        single_pc: bool) -> None:
    kiosk, _ = await _kiosk(devserver, sdk, single_pc)
    _viewer, events = await sdk.connect(devserver.url, devserver.mint_token("viewer", "lobby"),
                                       single_pc=single_pc)
    await events.wait("track_subscribed")
    publication = next(iter(kiosk.local_participant.track_publications.values()))
    await kiosk.local_participant.unpublish_track(publication.sid)
    _pub, participant = await events.wait("track_unpublished")
    assert participant.identity == "kiosk"
    await devserver.wait_for(lambda: not devserver.participant("lobby", "kiosk").tracks,
                             timeout=10, what="unpublish at the double")
    await kiosk.disconnect()
    (gone,) = await events.wait("participant_disconnected")
    assert gone.identity == "kiosk"


async def test_dropped_socket_departs_after_the_timeout(devserver: Any, sdk: Any) -> None:
    await _kiosk(devserver, sdk)
    _viewer, events = await sdk.connect(devserver.url, devserver.mint_token("viewer", "lobby"))
    devserver.faults.reject(503, seconds=60)  # the kiosk cannot come back
    await devserver.faults.close_sockets("kiosk")
    (gone,) = await events.wait("participant_disconnected", timeout=15)  # departure: 5 s
    assert gone.identity == "kiosk"
    assert [e.kind for e in devserver.events if e.identity == "kiosk"][-1] == "leave"


@pytest.mark.parametrize("single_pc", MODES)
async def test_subscriber_follows_a_full_rejoin(devserver: Any, sdk: Any, single_pc: bool) -> None:
    kiosk, kiosk_events = await _kiosk(devserver, sdk, single_pc)
    _viewer, events = await sdk.connect(devserver.url, devserver.mint_token("viewer", "lobby"),
                                        single_pc=single_pc)
    await events.wait("track_subscribed")
    publication = next(iter(kiosk.local_participant.track_publications.values()))
    publication.track.mute()
    participant, _pub = await events.wait("track_muted")
    assert participant.identity == "kiosk"
    publication.track.unmute()
    await events.wait("track_unmuted")

    await devserver.faults.leave("RECONNECT", "kiosk")
    await kiosk_events.wait("reconnected", timeout=30)
    (track, _pub, participant) = await events.wait("track_subscribed", timeout=20)
    assert participant.identity == "kiosk"
    assert await asyncio.wait_for(sdk.tone_hz(track), 15) == pytest.approx(440, abs=5)


async def test_token_for_a_room_not_served_is_refused(devserver_factory: Any, sdk: Any) -> None:
    srv = await devserver_factory(rooms={"lobby"})
    with pytest.raises(rtc.ConnectError, match="'elsewhere' is not served here"):
        await sdk.connect(srv.url, srv.mint_token("kiosk", "elsewhere"))
    await sdk.connect(srv.url, srv.mint_token("kiosk", "lobby"))
