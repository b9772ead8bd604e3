"""LiveKitLink translation of SDK callbacks into session events, without a server."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from livekit import rtc

from appliance.rtc.livekit import LiveKitLink, disconnect_reason_name, release_handles
from appliance.session.model import (
    Event,
    LocalTrackMuted,
    ParticipantJoined,
    ParticipantLeft,
    RoomDisconnected,
    RoomReconnected,
    RoomReconnecting,
    TokenRefreshed,
    TrackKind,
)


def wired() -> tuple[LiveKitLink, rtc.Room, list[Event], list[str]]:
    events: list[Event] = []
    tokens: list[str] = []
    link = LiveKitLink(events.append, clock=lambda: 42.0, on_token=tokens.append)
    room = rtc.Room()
    link._gen += 1
    link._wire(room, link._gen)
    return link, room, events, tokens


async def test_room_callbacks_become_events() -> None:
    _link, room, events, tokens = wired()
    room.emit("reconnecting")
    room.emit("reconnected")
    room.emit("participant_connected", SimpleNamespace(identity="op"))
    room.emit("participant_disconnected", SimpleNamespace(identity="op"))
    room.emit("disconnected", rtc.DisconnectReason.SERVER_SHUTDOWN)
    room._token = "header.e30.sig"
    room.emit("token_refreshed")
    assert events == [RoomReconnecting(42.0), RoomReconnected(42.0),
                      ParticipantJoined(42.0, "op"), ParticipantLeft(42.0, "op"),
                      RoomDisconnected(42.0, "SERVER_SHUTDOWN", client_initiated=False),
                      TokenRefreshed(42.0, None)]
    assert tokens == ["header.e30.sig"]


async def test_events_from_a_dropped_room_are_ignored() -> None:
    link, room, events, _ = wired()
    await link.disconnect()  # no room yet: just moves to the next generation
    room.emit("reconnecting")
    room.emit("disconnected", rtc.DisconnectReason.CLIENT_INITIATED)
    assert events == []


async def test_local_mute_is_reported_by_kind() -> None:
    link, room, events, _ = wired()
    link._published[TrackKind.MICROPHONE] = (object(), "TR_mic")
    local = rtc.LocalParticipant.__new__(rtc.LocalParticipant)
    room.emit("track_muted", local, SimpleNamespace(sid="TR_mic"))
    room.emit("track_unmuted", local, SimpleNamespace(sid="TR_mic"))
    room.emit("track_muted", SimpleNamespace(identity="remote"), SimpleNamespace(sid="TR_x"))
    assert events == [LocalTrackMuted(42.0, TrackKind.MICROPHONE, True),
                      LocalTrackMuted(42.0, TrackKind.MICROPHONE, False)]


def test_reason_names() -> None:
    assert disconnect_reason_name(rtc.DisconnectReason.CLIENT_INITIATED) == "CLIENT_INITIATED"
    assert disconnect_reason_name(999) == "REASON_999"


def test_release_handles_children_first() -> None:
    order: list[str] = []

    def owner(name: str) -> Any:
        return SimpleNamespace(_ffi_handle=SimpleNamespace(dispose=lambda: order.append(name)))

    pub = owner("publication")
    local = owner("local")
    local.track_publications = {"TR": pub}
    remote = owner("remote")
    remote.track_publications = {}
    room: Any = owner("room")
    room._local_participant = local
    room.remote_participants = {"op": remote}
    release_handles(room)
    assert order == ["publication", "local", "remote", "room"]
