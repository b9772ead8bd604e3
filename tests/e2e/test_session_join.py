"""The session with the real SDK against the double: join, resume, rejoin, faults."""

from __future__ import annotations

from typing import Any

import pytest
from session_e2e_helpers import (
    IDENTITY,
    ROOM,
    e2e_config,
    on_air,
    running_session,
    server_tracks,
    wait_state,
)

from appliance.session.model import RoomState, TrackKind

pytestmark = pytest.mark.e2e


async def test_joins_and_publishes(devserver: Any) -> None:
    async with running_session(e2e_config(devserver)) as runner:
        s = await wait_state(runner, on_air)
        assert s.alone and s.fault.value == "none"
        audio = await devserver.wait_for(
            lambda: (st := devserver.track_stats(ROOM, IDENTITY, "audio")) and st.packets > 20
            and st, timeout=15, what="kiosk audio at the double")
        assert audio.packets > 20
        assert sorted(server_tracks(devserver).values()) == ["audio", "video"]
        await devserver.add_far_end(ROOM, "operator", video=False)
        s = await wait_state(runner, lambda s: "operator" in s.remotes)
        assert "with 1 other" in s.as_dict()["status"]


async def test_signalling_drop_resumes_without_republish(devserver: Any) -> None:
    async with running_session(e2e_config(devserver)) as runner:
        await wait_state(runner, on_air)
        before = server_tracks(devserver)
        assert await devserver.faults.close_sockets(IDENTITY) == 1
        await devserver.wait_for(
            lambda: any(e.kind == "resume" and e.identity == IDENTITY for e in devserver.events),
            timeout=20, what="the SDK resuming")
        s = await wait_state(runner, lambda s: on_air(s) and s.room is RoomState.CONNECTED)
        assert server_tracks(devserver) == before  # same publications: resumed, not rejoined
        assert runner.link.rooms_built == 1  # type: ignore[union-attr]
        assert s.attempt == 0


async def test_server_forgetting_everything_rejoins_and_republishes(devserver: Any) -> None:
    async with running_session(e2e_config(devserver)) as runner:
        await wait_state(runner, on_air)
        before = set(server_tracks(devserver))
        await devserver.faults.forget()
        await devserver.wait_for(
            lambda: len(server_tracks(devserver)) == 2
            and not (set(server_tracks(devserver)) & before),
            timeout=40, what="kiosk republished both tracks")
        await wait_state(runner, lambda s: on_air(s) and s.room is RoomState.CONNECTED,
                         within=30)


async def test_server_leave_disconnect_rejoins(devserver: Any) -> None:
    async with running_session(e2e_config(devserver)) as runner:
        await wait_state(runner, on_air)
        assert await devserver.faults.leave("DISCONNECT", IDENTITY) == 1
        await wait_state(runner, lambda s: s.room is RoomState.DISCONNECTED, within=10)
        s = await wait_state(runner, on_air, within=20)
        assert runner.link.rooms_built == 2  # type: ignore[union-attr]
        assert len(server_tracks(devserver)) == 2
        assert s.intent.value == "in-room"


async def test_black_holed_media_forces_a_rejoin(devserver: Any) -> None:
    async with running_session(e2e_config(devserver)) as runner:
        await wait_state(runner, on_air)
        # A kiosk that has been on air a while has had receiver reports from the server; that
        # is what the media-plane watch relies on (bytes keep leaving into a black hole).
        await devserver.wait_for(
            lambda: (st := devserver.track_stats(ROOM, IDENTITY, "video"))
            and st.decoded_frames >= 30, timeout=15, what="3 s of kiosk video")
        progress = await runner.link.progress()  # type: ignore[union-attr]
        assert progress[TrackKind.CAMERA].acked > 0
        devserver.faults.black_hole(True, IDENTITY)
        s = await wait_state(runner, lambda s: s.room is RoomState.DISCONNECTING, within=30)
        assert "stalled" in s.last_disconnect_reason
        devserver.faults.black_hole(False, IDENTITY)
        await wait_state(runner, lambda s: on_air(s) and s.room is RoomState.CONNECTED,
                         within=30)
        assert runner.link.rooms_built >= 2  # type: ignore[union-attr]


async def test_token_endpoint_with_device_key(devserver: Any, tmp_path: Any) -> None:
    key = tmp_path / "device.key"
    key.write_text("device-key-1\n")
    key.chmod(0o600)
    cfg = e2e_config(devserver, api_key=None, api_secret=None,
                     token_url=f"{devserver.http_url}/token", device_key_file=key)
    async with running_session(cfg) as runner:
        await wait_state(runner, on_air)


async def test_server_mute_honoured_and_remote_unmute_refused(devserver: Any) -> None:
    async with running_session(e2e_config(devserver)) as runner:
        await wait_state(runner, on_air)
        assert await devserver.faults.mute(IDENTITY, "audio", True) == 1
        s = await wait_state(runner, lambda s: s.mic_muted, within=10)
        assert s.mic_mute_wanted and not s.mic_live
        await devserver.faults.mute(IDENTITY, "audio", False)
        track = runner.media.local_tracks()  # the kiosk keeps its microphone muted
        await devserver.wait_for(
            lambda: all(t.muted for t in devserver.participant(ROOM, IDENTITY).tracks.values()
                        if t.kind == "audio"), timeout=10, what="the kiosk re-muting")
        assert runner.state.mic_mute_wanted and track


async def test_leave_button_leaves_and_rejoins_on_the_next_press(devserver: Any) -> None:
    from appliance.session.model import ButtonName, ButtonPressed, Intent

    async with running_session(e2e_config(devserver)) as runner:
        await wait_state(runner, on_air)
        runner.post(ButtonPressed(runner.clock(), ButtonName.LEAVE))
        s = await wait_state(runner, lambda s: s.room is RoomState.DISCONNECTED, within=10)
        assert s.intent is Intent.LEFT and not s.retry_pending
        await devserver.wait_for(lambda: devserver.participant(ROOM, IDENTITY) is None,
                                 timeout=10, what="the kiosk gone from the room")
        runner.post(ButtonPressed(runner.clock(), ButtonName.LEAVE))
        await wait_state(runner, on_air, within=20)
        assert len(server_tracks(devserver)) == 2


async def test_camera_privacy_unpublishes_video_and_keeps_audio(devserver: Any) -> None:
    from appliance.session.model import ButtonName, ButtonPressed

    async with running_session(e2e_config(devserver)) as runner:
        await wait_state(runner, on_air)
        # (the double cannot unpublish a track whose first offer it has not matched yet)
        await devserver.wait_for(
            lambda: (st := devserver.track_stats(ROOM, IDENTITY, "video"))
            and st.decoded_frames > 0, timeout=15, what="kiosk video at the double")
        runner.post(ButtonPressed(runner.clock(), ButtonName.MUTE, long=True))
        s = await wait_state(runner, lambda s: s.camera.value == "stopped", within=10)
        assert s.camera_privacy and not s.video_live and s.mic_live
        await devserver.wait_for(lambda: sorted(server_tracks(devserver).values()) == ["audio"],
                                 timeout=10, what="the camera track unpublished")
        runner.post(ButtonPressed(runner.clock(), ButtonName.MUTE, long=True))
        await wait_state(runner, on_air, within=10)
        await devserver.wait_for(
            lambda: sorted(server_tracks(devserver).values()) == ["audio", "video"],
            timeout=10, what="the camera track back")
