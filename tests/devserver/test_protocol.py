"""Signalling at the protocol level (raw WebSocket client, no media): joins, resumes, faults."""

from __future__ import annotations

import aiohttp
import pytest
from livekit.protocol import models, rtc
from signal_client import raw, v1_query

from appliance.devserver.server import DevServer


async def test_join_response_and_ping(devserver: DevServer) -> None:
    async with raw(devserver, "a") as a:
        join = await a.next("join")
        assert join.participant.identity == "a" and join.participant.sid.startswith("PA_")
        assert join.room.name == "lobby" and join.ping_interval > 0 and join.ping_timeout > 0
        assert not join.subscriber_primary and join.server_info.version
        await a.send(ping_req=rtc.Ping(timestamp=1234))
        assert (await a.next("pong_resp")).last_ping_timestamp == 1234


async def test_access_token_query_and_v1_join_request(devserver: DevServer) -> None:
    # The JavaScript SDK sends the token as a query parameter and joins on /rtc/v1.
    async with raw(devserver, "browser", v1_query(), header=False, path="/rtc/v1") as b:
        assert (await b.next("join")).participant.identity == "browser"


async def test_add_track_mute_and_broadcasts(devserver: DevServer) -> None:
    async with raw(devserver, "a") as a, raw(devserver, "b") as b:
        await a.next("join")
        join_b = await b.next("join")
        assert [p.identity for p in join_b.other_participants] == ["a"]
        joined = await a.next("update")
        assert joined.participants[0].identity == "b"
        await a.send(add_track=rtc.AddTrackRequest(cid="mic-1", name="mic", type=models.AUDIO,
                                                   source=models.MICROPHONE))
        published = await a.next("track_published")
        assert published.cid == "mic-1" and published.track.sid.startswith("TR_")
        update = await b.next("update")
        assert [t.sid for t in update.participants[0].tracks] == [published.track.sid]
        await a.send(mute=rtc.MuteTrackRequest(sid=published.track.sid, muted=True))
        update = await b.next("update")
        assert update.participants[0].tracks[0].muted
        await a.send(leave=rtc.LeaveRequest(reason=models.CLIENT_INITIATED))
        left = await b.next("update")
        assert left.participants[0].state == models.ParticipantInfo.DISCONNECTED


@pytest.mark.parametrize("v1", [False, True])
async def test_resume_known_and_unknown_sessions(devserver: DevServer, v1: bool) -> None:
    path = "/rtc/v1" if v1 else "/rtc"
    first = v1_query() if v1 else ""
    async with raw(devserver, "a", first, path=path) as a:
        sid = (await a.next("join")).participant.sid
        await devserver.faults.close_sockets("a")
    resume = v1_query(reconnect=True, participant_sid=sid) if v1 else f"reconnect=1&sid={sid}"
    async with raw(devserver, "a", resume, path=path) as a:
        await a.next("reconnect")
    assert devserver.participant("lobby", "a").resumes == 1
    unknown = (v1_query(reconnect=True, participant_sid="PA_nope") if v1
               else "reconnect=1&sid=PA_nope")
    async with raw(devserver, "a", unknown, path=path) as a:
        leave = await a.next("leave")
        assert leave.action == rtc.LeaveRequest.RECONNECT


async def test_freezing_one_participant_does_not_stall_the_others(devserver: DevServer) -> None:
    async with raw(devserver, "a") as a, raw(devserver, "b") as b:
        await a.next("join")
        await b.next("join")
        devserver.faults.freeze(30, "a")
        await a.send(add_track=rtc.AddTrackRequest(cid="x", type=models.AUDIO))
        await b.send(add_track=rtc.AddTrackRequest(cid="y", type=models.AUDIO))
        await b.next("track_published")  # b's handling broadcasts to frozen a: not blocked
        with pytest.raises(TimeoutError):
            await a.next("track_published", timeout=0.5)
        devserver.faults.thaw()
        assert (await a.next("track_published")).cid == "x"


async def test_rejected_connections_get_the_status(devserver: DevServer) -> None:
    devserver.faults.reject(503, seconds=30)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        async with raw(devserver, "a"):
            pass
    assert info.value.status == 503


@pytest.mark.parametrize(("path", "query", "auto"), [
    ("/rtc", "", True),  # LiveKit: absent means on
    ("/rtc", "auto_subscribe=1", True),
    ("/rtc", "auto_subscribe=0", False),
    ("/rtc/v1", v1_query(connection_settings=rtc.ConnectionSettings(auto_subscribe=True)), True),
    ("/rtc/v1", v1_query(connection_settings=rtc.ConnectionSettings(auto_subscribe=False)),
     False),
    ("/rtc/v1", v1_query(), False),  # LiveKit reads the (absent) connection settings: off
])
async def test_auto_subscribe_as_the_client_asks(devserver: DevServer, path: str, query: str,
                                                 auto: bool) -> None:
    async with raw(devserver, "a", query, path=path) as a:
        await a.next("join")
        participant = devserver.participant("lobby", "a")
        assert participant is not None and participant.subscriptions.auto is auto


async def test_subscribing_to_an_unknown_track_is_refused(devserver: DevServer) -> None:
    async with raw(devserver, "a", "auto_subscribe=0") as a, raw(devserver, "b") as b:
        await a.next("join")
        await b.next("join")
        await b.send(add_track=rtc.AddTrackRequest(cid="mic", type=models.AUDIO))
        sid = (await b.next("track_published")).track.sid
        await a.send(subscription=rtc.UpdateSubscription(
            track_sids=["TR_nope", sid], subscribe=True,
            participant_tracks=[models.ParticipantTracks(track_sids=[sid])]))
        refused = await a.next("subscription_response")
        assert (refused.track_sid, refused.err) == ("TR_nope", models.SE_TRACK_NOTFOUND)
        a_side = devserver.participant("lobby", "a")
        assert a_side is not None
        # A known track without media yet is wanted and forwarded once its media arrives.
        await devserver.wait_for(lambda: sid in a_side.subscriptions.wanted, timeout=5,
                                 what="the subscription recorded")
        assert a_side.subscriptions.not_found == 1 and a_side.outgoing == {}
        await a.send(subscription=rtc.UpdateSubscription(track_sids=[sid], subscribe=False))
        await devserver.wait_for(lambda: not a_side.subscriptions.wanted, timeout=5,
                                 what="the unsubscription recorded")
