"""Two real SDK clients through the double: data packets, RPC, attributes, quality, API effects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit import api, rtc

pytestmark = pytest.mark.e2e

MODES = [pytest.param(True, id="v1-single-pc"), pytest.param(False, id="rtc-two-pc")]


async def _pair(srv: Any, sdk: Any, single_pc: bool) -> tuple[Any, Any, Any, Any]:
    token_a = srv.mint_token("alice", "lobby", can_update_own_metadata=True)
    token_b = srv.mint_token("bob", "lobby", can_update_own_metadata=True)
    alice, alice_events = await sdk.connect(srv.url, token_a, single_pc=single_pc)
    bob, bob_events = await sdk.connect(srv.url, token_b, single_pc=single_pc)
    await alice_events.wait("participant_connected")
    return alice, alice_events, bob, bob_events


@pytest.mark.parametrize("single_pc", MODES)
async def test_data_packets_reach_the_named_participants(devserver: Any, sdk: Any,
                                                         single_pc: bool) -> None:
    alice, _, bob, _ = await _pair(devserver, sdk, single_pc)
    carol, _ = await sdk.connect(devserver.url, devserver.mint_token("carol", "lobby"),
                                 single_pc=single_pc)
    got: dict[str, asyncio.Queue[Any]] = {"bob": asyncio.Queue(), "carol": asyncio.Queue()}
    bob.on("data_received", lambda packet: got["bob"].put_nowait(packet))
    carol.on("data_received", lambda packet: got["carol"].put_nowait(packet))

    await alice.local_participant.publish_data(b"to everyone", reliable=True, topic="chat")
    for name in ("bob", "carol"):
        packet = await asyncio.wait_for(got[name].get(), 15)
        assert (packet.data, packet.topic, packet.participant.identity) == (
            b"to everyone", "chat", "alice")
        assert packet.kind == rtc.DataPacketKind.KIND_RELIABLE
    await alice.local_participant.publish_data(b"just bob", reliable=False,
                                               destination_identities=["bob"], topic="t")
    packet = await asyncio.wait_for(got["bob"].get(), 15)
    assert (packet.data, packet.kind) == (b"just bob", rtc.DataPacketKind.KIND_LOSSY)
    # The API's SendData reaches the same channels.
    async with api.LiveKitAPI(devserver.http_url, devserver.api_key, devserver.api_secret) as lk:
        await lk.room.send_data(api.SendDataRequest(room="lobby", data=b"from ops", topic="ops",
                                                    destination_identities=["carol"]))
    packet = await asyncio.wait_for(got["carol"].get(), 15)
    assert (packet.data, packet.topic, packet.participant) == (b"from ops", "ops", None)
    assert got["bob"].empty()  # lossy "just bob" went to bob only; ops data to carol only


@pytest.mark.parametrize("single_pc", MODES)
async def test_rpc_round_trip(devserver: Any, sdk: Any, single_pc: bool) -> None:
    alice, _, bob, _ = await _pair(devserver, sdk, single_pc)

    @bob.local_participant.register_rpc_method("health")
    async def health(data: rtc.RpcInvocationData) -> str:
        return f"ok:{data.payload}:{data.caller_identity}"

    @bob.local_participant.register_rpc_method("fail")
    async def fail(data: rtc.RpcInvocationData) -> str:
        raise rtc.RpcError(1500, "camera unplugged")

    answer = await alice.local_participant.perform_rpc(destination_identity="bob",
                                                       method="health", payload="ping")
    assert answer == "ok:ping:alice"
    with pytest.raises(rtc.RpcError) as info:
        await alice.local_participant.perform_rpc(destination_identity="bob", method="fail",
                                                  payload="")
    assert (info.value.code, info.value.message) == (1500, "camera unplugged")


async def test_attributes_metadata_and_name_reach_the_other(devserver: Any, sdk: Any) -> None:
    alice, _, bob, _ = await _pair(devserver, sdk, True)
    changed: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    bob.on("participant_attributes_changed",
           lambda attrs, p: changed.put_nowait(("attributes", dict(p.attributes))))
    bob.on("participant_metadata_changed",
           lambda p, old, new: changed.put_nowait(("metadata", new)))
    await alice.local_participant.set_attributes({"health": "ok", "temp": "41"})
    assert await asyncio.wait_for(changed.get(), 15) == (
        "attributes", {"health": "ok", "temp": "41"})
    await alice.local_participant.set_metadata("kiosk v2")
    assert await asyncio.wait_for(changed.get(), 15) == ("metadata", "kiosk v2")
    server_side = devserver.participant("lobby", "alice")
    assert server_side.attributes == {"health": "ok", "temp": "41"}
    # The API changes reach the SDK the same way.
    async with api.LiveKitAPI(devserver.http_url, devserver.api_key, devserver.api_secret) as lk:
        await lk.room.update_participant(api.UpdateParticipantRequest(
            room="lobby", identity="alice", attributes={"temp": ""}))  # "" deletes
    assert await asyncio.wait_for(changed.get(), 15) == ("attributes", {"health": "ok"})


async def test_metadata_needs_the_grant(devserver: Any, sdk: Any) -> None:
    room, _ = await sdk.connect(devserver.url, devserver.mint_token("kiosk", "lobby"))
    await room.local_participant.set_attributes({"a": "b"})
    kiosk = devserver.participant("lobby", "kiosk")
    await devserver.wait_for(lambda: kiosk.refused_updates, timeout=15, what="the refusal")
    assert kiosk.attributes == {}


async def test_api_mute_mutes_the_sdk_track_and_quality_is_reported(devserver_factory: Any,
                                                                    sdk: Any) -> None:
    srv = await devserver_factory(quality_interval=0.5)
    room, events = await sdk.connect(srv.url, srv.mint_token("kiosk", "lobby"))
    publication = await sdk.publish_tone(room, 440.0)
    await srv.wait_for(lambda: (s := srv.track_stats("lobby", "kiosk", "audio"))
                       and s.audio.frames > 20, timeout=15, what="kiosk audio")
    _participant, quality = await events.wait(
        "connection_quality_changed", match=lambda p, q: p.identity == "kiosk")
    async with api.LiveKitAPI(srv.http_url, srv.api_key, srv.api_secret) as lk:
        await lk.room.mute_published_track(api.MuteRoomTrackRequest(
            room="lobby", identity="kiosk", track_sid=publication.sid, muted=True))
    await events.wait("track_muted")
    assert publication.muted
    # Measured on loopback: never POOR (the kiosk would step its camera down).
    graded = srv.participant("lobby", "kiosk").quality
    assert graded in (rtc.ConnectionQuality.QUALITY_EXCELLENT, rtc.ConnectionQuality.QUALITY_GOOD)
    assert quality in (rtc.ConnectionQuality.QUALITY_EXCELLENT,
                       rtc.ConnectionQuality.QUALITY_GOOD)
