"""Health attributes: derived from the observed state, coalesced, resent after a rejoin."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path

from appliance.remote.health import HealthPublisher, health_attributes, soc_health
from appliance.session.model import Fault, RoomState, State, TrackKind, TrackState
from appliance.session.stall import Progress, StallWatch


def _flowing() -> StallWatch:
    watch = StallWatch()
    for kind in TrackKind:
        watch = watch.arm(kind, 0.0).observe(kind, 1.0, Progress(1, 1), True)
        watch = watch.observe(kind, 2.0, Progress(2, 2), True)
    return watch


LIVE = State(room=RoomState.CONNECTED, microphone=TrackState.PUBLISHED,
             camera=TrackState.PUBLISHED, stall=_flowing())


def test_attributes_follow_the_observed_state() -> None:
    a = health_attributes(LIVE)
    assert a["kiosk.state"] == "in-room" and a["kiosk.mic"] == "live"
    assert a["kiosk.camera"] == "live" and a["kiosk.fault"] == "none"
    muted = dataclasses.replace(LIVE, mic_muted=True, camera_privacy=True)
    assert health_attributes(muted)["kiosk.mic"] == "muted"
    assert health_attributes(muted)["kiosk.camera"] == "private"
    stalled = dataclasses.replace(LIVE, stalled=frozenset({TrackKind.MICROPHONE}))
    assert health_attributes(stalled)["kiosk.mic"] == "stalled"
    lost = dataclasses.replace(LIVE, camera=TrackState.LOST, fault=Fault.DEVICE_FAULT)
    assert health_attributes(lost)["kiosk.camera"] == "lost"
    assert health_attributes(lost)["kiosk.fault"] == "device-fault"


def test_soc_health_reads_the_pi_files_and_nothing_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "temp").write_text("51234\n")
    (tmp_path / "thr").write_text("0x50005\n")
    assert soc_health(tmp_path / "temp", tmp_path / "thr") == {
        "kiosk.temp_c": "51.2", "kiosk.throttled": "0x50005"}
    assert soc_health(tmp_path / "none", tmp_path / "none") == {}


class Sink:
    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def set_attributes(self, attributes: Mapping[str, str]) -> None:
        await self.gate.wait()
        self.sent.append(dict(attributes))


async def test_bursts_are_coalesced_and_a_new_room_gets_everything_again() -> None:
    sink = Sink()
    pub = HealthPublisher(lambda: sink, {"kiosk.version": "1"}, soc=dict)
    sent = asyncio.Event()
    original = sink.set_attributes

    async def record(attributes: Mapping[str, str]) -> None:
        await original(attributes)
        sent.set()

    sink.set_attributes = record  # type: ignore[method-assign]
    pub.on_state(LIVE)
    async with asyncio.timeout(5):
        await sent.wait()
    assert sink.sent[0]["kiosk.version"] == "1" and sink.sent[0]["kiosk.mic"] == "live"
    sent.clear()
    for muted in (True, False, True):  # a burst: only the last value matters
        pub.on_state(dataclasses.replace(LIVE, mic_muted=muted))
    async with asyncio.timeout(5):
        await sent.wait()
    assert sink.sent[1] == {"kiosk.mic": "muted"} and len(sink.sent) == 2
    sent.clear()
    pub.on_state(dataclasses.replace(LIVE, room=RoomState.RECONNECTING))  # room lost
    pub.on_state(dataclasses.replace(LIVE, mic_muted=True))  # a new Room: all of them again
    async with asyncio.timeout(5):
        await sent.wait()
    assert sink.sent[2]["kiosk.version"] == "1" and len(sink.sent[2]) > 5
    await pub.aclose()
