"""Simulcast at the double: the answer accepts every layer, the best arriving one is decoded."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.devserver.simulcast import (
    STALE_AFTER,
    LayerPicker,
    accept_in_answer,
    offered_layers,
    rid_extensions,
)

# What the JavaScript SDK offers for a camera: lowest layer first.
OFFER = "\r\n".join([
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=sendonly",
    "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    "a=sendonly", "a=rid:q send", "a=rid:h send", "a=rid:f send", "a=simulcast:send q;h;f",
]) + "\r\n"
ANSWER = "\r\n".join([
    "v=0", "o=- 3 4 IN IP4 127.0.0.1", "s=-", "t=0 0",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=recvonly",
    "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1", "a=recvonly",
]) + "\r\n"


def test_the_answer_accepts_every_offered_layer() -> None:
    answer = accept_in_answer(OFFER, ANSWER).split("\r\n")
    video = answer[answer.index("m=video 9 UDP/TLS/RTP/SAVPF 96"):]
    accepted = [line for line in video if line.startswith(("a=rid", "a=simulcast"))]
    assert accepted == ["a=rid:q recv", "a=rid:h recv", "a=rid:f recv", "a=simulcast:recv q;h;f"]
    audio = answer[:answer.index("m=video 9 UDP/TLS/RTP/SAVPF 96")]
    assert not any(line.startswith("a=simulcast") for line in audio)
    assert accept_in_answer(ANSWER, ANSWER) == ANSWER  # nothing offered, nothing added
    assert offered_layers(OFFER) == {"1": ("q", "h", "f")}
    assert {(e.uri.rsplit(":", 1)[1], e.id) for e in rid_extensions(OFFER).headerExtensions} == {
        ("rtp-stream-id", 10), ("repaired-rtp-stream-id", 11)}


def test_the_best_arriving_layer_wins_and_falls_back_when_it_stops() -> None:
    picker = LayerPicker(("q", "h", "f"))
    assert picker.accept(1, "q", now=0.0)  # the lowest arrives first: decoded meanwhile
    assert picker.accept(2, "h", now=0.1) and not picker.accept(1, None, now=0.15)
    assert picker.accept(3, "f", now=0.2)
    assert not picker.accept(2, None, now=0.25)  # SSRC learnt from the RID: still "h"
    assert picker.selected == "f" and picker.switches == 3
    # "f" stops (libwebrtc paused it): after STALE_AFTER the best still arriving takes over.
    later = 0.2 + STALE_AFTER + 0.1
    assert picker.accept(2, None, now=later) and picker.selected == "h"
    assert picker.accept(3, "f", now=later + 1) and picker.selected == "f"  # back up at once
    assert not picker.accept(99, None, now=later + 1)  # a stream with no RID yet: dropped


@pytest.mark.e2e
async def test_an_sdk_simulcast_camera_arrives_as_its_best_layer(devserver: Any,
                                                                 sdk: Any) -> None:
    room, _ = await sdk.connect(devserver.url, devserver.mint_token("cam", "lobby"))
    await sdk.publish_pattern(room, 640, 480, fps=30, simulcast=True)  # layers "h" and "q"

    def best() -> Any:
        tracks = list(devserver.participant("lobby", "cam").tracks.values())
        return tracks and tracks[0].layer == "h" and tracks[0].stats.video.stamped_frames >= 10

    await devserver.wait_for(best, timeout=20, what="the top layer decoded at the double")
    stats = devserver.track_stats("lobby", "cam", "video")
    # The lowest layer of a 640x480 camera is 320x240: anything wider is a better layer.
    assert stats.video.width > 320
    assert devserver.snapshot()["rooms"]["lobby"]["participants"]["cam"]["tracks"][0][
        "layer"] == "h"
