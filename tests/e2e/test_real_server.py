"""Opt-in lane: the kiosk against a real LiveKit server (LIVEKIT_URL, _API_KEY, _API_SECRET).

Run it outside the test network namespace, which has no route out:
    LIVEKIT_URL=wss://... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... \\
        .venv/bin/pytest tests/e2e/test_real_server.py
Faults cannot be injected into a real server, so this lane covers what needs none: join, publish,
media reaching another participant, leave and join again.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from typing import Any

import pytest
from session_e2e_helpers import on_air, running_session, wait_state

from appliance.config import CameraConfig, Config, LiveKitConfig, MicrophoneConfig, SpeakerConfig
from appliance.session.model import ButtonName, ButtonPressed, Intent, RoomState

REAL = {name: os.environ.get(name, "") for name in
        ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")}

pytestmark = pytest.mark.skipif(
    not all(REAL.values()),
    reason="real-server lane: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET to run it",
)


@dataclasses.dataclass(frozen=True)
class RealServer:
    url: str
    api_key: str
    api_secret: str
    room: str

    def mint_token(self, identity: str) -> str:
        from livekit import api

        return (api.AccessToken(self.api_key, self.api_secret).with_identity(identity)
                .with_grants(api.VideoGrants(room_join=True, room=self.room)).to_jwt())


@pytest.fixture
def server() -> RealServer:
    # A fresh room per test: nothing left over from an earlier run can satisfy an assertion.
    return RealServer(REAL["LIVEKIT_URL"], REAL["LIVEKIT_API_KEY"], REAL["LIVEKIT_API_SECRET"],
                      f"kiosk-e2e-{uuid.uuid4().hex[:8]}")


def kiosk_config(server: RealServer) -> Config:
    return Config(
        livekit=LiveKitConfig(url=server.url, room=server.room, identity="kiosk-e2e",
                              name="Kiosk e2e", api_key=server.api_key,
                              api_secret=server.api_secret),
        camera=CameraConfig(backend="test", width=640, height=360, fps=15),
        microphone=MicrophoneConfig(backend="test", tone_hz=440.0),
        speaker=SpeakerConfig(backend="none"),
    )


async def test_kiosk_joins_publishes_and_is_heard(server: RealServer, sdk: Any) -> None:
    async with running_session(kiosk_config(server)) as runner:
        await wait_state(runner, on_air, within=30)
        _viewer, events = await sdk.connect(server.url, server.mint_token("viewer"))
        from livekit import rtc

        kinds: dict[int, Any] = {}
        while len(kinds) < 2:  # the kiosk's camera and microphone
            track, _publication, participant = await events.wait("track_subscribed", 30)
            if participant.identity == "kiosk-e2e":
                kinds[track.kind] = track
        hz = await sdk.tone_hz(kinds[rtc.TrackKind.KIND_AUDIO])
        assert hz is not None and abs(hz - 440.0) < 5
        await wait_state(runner, lambda s: "viewer" in s.remotes, within=15)


async def test_leave_and_join_again(server: RealServer) -> None:
    async with running_session(kiosk_config(server)) as runner:
        await wait_state(runner, on_air, within=30)
        runner.post(ButtonPressed(runner.clock(), ButtonName.LEAVE))
        await wait_state(runner, lambda s: s.intent is Intent.LEFT
                         and s.room is RoomState.DISCONNECTED, within=15)
        runner.post(ButtonPressed(runner.clock(), ButtonName.LEAVE))
        await wait_state(runner, on_air, within=30)
