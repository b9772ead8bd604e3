"""LiveKitLink translation of SDK callbacks into session events, without a server."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from livekit import rtc

from appliance.rtc.compat import UnsupportedSdk, _check, refreshed_token, release_handles
from appliance.rtc.livekit import LiveKitLink, RemoteTrackSink, disconnect_reason_name
from appliance.session.model import (
    ConnectionQualityChanged,
    Event,
    LocalTrackMuted,
    ParticipantJoined,
    ParticipantLeft,
    Quality,
    RoomDisconnected,
    RoomReconnected,
    RoomReconnecting,
    TokenRefreshed,
    TrackKind,
    TrackState,
    TrackStateChanged,
)


def wired(sink: Any = None) -> tuple[LiveKitLink, rtc.Room, list[Event], list[str]]:
    events: list[Event] = []
    tokens: list[str] = []
    link = LiveKitLink(events.append, clock=lambda: 42.0, on_token=tokens.append, sink=sink)
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
    local = local_participant()
    room.emit("track_muted", local, SimpleNamespace(sid="TR_mic"))
    room.emit("track_unmuted", local, SimpleNamespace(sid="TR_mic"))
    room.emit("track_muted", SimpleNamespace(identity="remote"), SimpleNamespace(sid="TR_x"))
    assert events == [LocalTrackMuted(42.0, TrackKind.MICROPHONE, True),
                      LocalTrackMuted(42.0, TrackKind.MICROPHONE, False)]


def local_participant() -> rtc.LocalParticipant:
    return rtc.LocalParticipant.__new__(rtc.LocalParticipant)


class Sink:
    """A media layer's RemoteTrackSink: the protocol has no connection-quality hook any more."""

    def __init__(self, speaker: bool = True) -> None:
        self.calls: list[str] = []
        self.speaker = speaker

    def plays_remote_audio(self) -> bool:
        return self.speaker

    def remote_track_subscribed(self, identity: str, track: Any) -> None:
        self.calls.append(f"subscribed {identity}")

    def remote_track_unsubscribed(self, identity: str, track: Any) -> None:
        self.calls.append(f"unsubscribed {identity}")

    def publish_options(self, kind: TrackKind) -> rtc.TrackPublishOptions:
        return rtc.TrackPublishOptions()


async def test_local_quality_is_only_an_event_for_the_session() -> None:
    sink = Sink()
    assert isinstance(sink, RemoteTrackSink)
    _link, room, events, _ = wired(sink)
    room.emit("connection_quality_changed", local_participant(),
              rtc.ConnectionQuality.QUALITY_POOR)
    room.emit("connection_quality_changed", local_participant(),
              rtc.ConnectionQuality.QUALITY_EXCELLENT)
    room.emit("connection_quality_changed", SimpleNamespace(identity="remote"),
              rtc.ConnectionQuality.QUALITY_LOST)  # someone else's quality: not ours
    assert events == [ConnectionQualityChanged(42.0, Quality.POOR),
                      ConnectionQualityChanged(42.0, Quality.EXCELLENT)]
    assert sink.calls == []  # the ladder lives in the session machine, not in the media layer


class Publication:
    """A remote publication: records what the link asks of it."""

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.wanted: list[bool] = []

    def set_subscribed(self, subscribed: bool) -> None:
        self.wanted.append(subscribed)


@pytest.mark.parametrize(("speaker", "audio_wanted"), [(True, [True]), (False, [])])
async def test_subscribes_to_remote_audio_only_and_only_for_a_speaker(
        speaker: bool, audio_wanted: list[bool]) -> None:
    link, room, _events, _ = wired(Sink(speaker=speaker))
    audio, video = Publication(rtc.TrackKind.KIND_AUDIO), Publication(rtc.TrackKind.KIND_VIDEO)
    far = SimpleNamespace(identity="far-end")
    room.emit("track_published", audio, far)
    room.emit("track_published", video, far)
    assert (audio.wanted, video.wanted) == (audio_wanted, [])
    await link.disconnect()  # a room given up on: its late publications are not subscribed
    room.emit("track_published", late := Publication(rtc.TrackKind.KIND_AUDIO), far)
    assert late.wanted == []


async def test_no_sink_subscribes_to_nothing() -> None:
    _link, room, _events, _ = wired()
    audio = Publication(rtc.TrackKind.KIND_AUDIO)
    room.emit("track_published", audio, SimpleNamespace(identity="far-end"))
    assert audio.wanted == []


async def test_republished_track_carries_the_publication_mute_flag() -> None:
    link, room, events, _ = wired()
    track = object()
    link._published[TrackKind.CAMERA] = (track, "TR_old")
    # The SDK republished after a full reconnect: a new sid, found by source, still muted.
    room.emit("local_track_republished", SimpleNamespace(
        sid="TR_new", source=rtc.TrackSource.SOURCE_CAMERA, muted=True))
    room.emit("local_track_published", SimpleNamespace(
        sid="TR_new", source=rtc.TrackSource.SOURCE_CAMERA, muted=False), track)
    # A publication the link did not make (not in _published) is not reported.
    room.emit("local_track_published", SimpleNamespace(
        sid="TR_mic", source=rtc.TrackSource.SOURCE_MICROPHONE, muted=False), object())
    assert events == [
        TrackStateChanged(42.0, TrackKind.CAMERA, TrackState.PUBLISHED, "sdk", muted=True),
        TrackStateChanged(42.0, TrackKind.CAMERA, TrackState.PUBLISHED, "sdk", muted=False)]
    assert link._published[TrackKind.CAMERA] == (track, "TR_new")
    # Mute reports about the new sid are recognised as the camera's.
    room.emit("track_unmuted", local_participant(), SimpleNamespace(sid="TR_new"))
    assert events[-1] == LocalTrackMuted(42.0, TrackKind.CAMERA, False)


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


def test_refreshed_token_reads_only_a_real_token() -> None:
    room: Any = SimpleNamespace()
    assert refreshed_token(room) is None
    room._token = ""
    assert refreshed_token(room) is None
    room._token = "header.e30.sig"
    assert refreshed_token(room) == "header.e30.sig"


def test_sdk_version_outside_the_checked_range_is_refused() -> None:
    _check("1.2.1")
    with pytest.raises(UnsupportedSdk, match=r"livekit 1\.3\.0 is installed"):
        _check("1.3.0")
