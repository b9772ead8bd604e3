"""Remote operations end to end: real SDK clients and livekit-api against the double."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from livekit import api, rtc
from session_e2e_helpers import IDENTITY, ROOM, e2e_config, on_air, running_session, wait_state

from appliance.remote.rpc import PERMISSION_DENIED, REFUSED
from appliance.rtc.compat import release_handles

pytestmark = pytest.mark.e2e


class Client:
    """A second participant that watches the kiosk's attributes and can call it."""

    def __init__(self, srv: Any, identity: str) -> None:
        self.srv, self.identity = srv, identity
        self.room = rtc.Room()
        self.changed = asyncio.Event()
        self.room.on("participant_attributes_changed", lambda *_: self.changed.set())
        self.room.on("participant_connected", lambda *_: self.changed.set())

    async def __aenter__(self) -> Client:
        await self.room.connect(self.srv.url, self.srv.mint_token(self.identity, ROOM))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.room.disconnect()
        release_handles(self.room)

    def kiosk_attributes(self, identity: str = IDENTITY) -> dict[str, str]:
        for p in self.room.remote_participants.values():
            if p.identity == identity:
                return dict(p.attributes)
        return {}

    async def attributes_until(self, predicate: Callable[[dict[str, str]], bool],
                               within: float = 15.0, identity: str = IDENTITY) -> dict[str, str]:
        async with asyncio.timeout(within):
            while not predicate(attrs := self.kiosk_attributes(identity)):
                self.changed.clear()
                await self.changed.wait()
        return attrs

    async def call(self, method: str, payload: str = "") -> str:
        return await self.room.local_participant.perform_rpc(
            destination_identity=IDENTITY, method=method, payload=payload, response_timeout=8)


@pytest.fixture
async def kiosk(devserver: Any) -> AsyncIterator[Any]:
    async with running_session(e2e_config(devserver)) as runner:
        await wait_state(runner, on_air)
        yield runner
    gc.collect()


async def test_health_attributes_follow_the_kiosk(devserver: Any, kiosk: Any) -> None:
    async with Client(devserver, "observer-1") as observer:
        attrs = await observer.attributes_until(lambda a: a.get("kiosk.mic") == "live")
        assert attrs["kiosk.state"] == "in-room" and attrs["kiosk.camera"] == "live"
        assert attrs["kiosk.version"] and attrs["kiosk.fault"] == "none"
        async with Client(devserver, "operator-e2e") as operator:
            assert json.loads(await operator.call("kiosk.mute")) == {"accepted": "mute"}
            await observer.attributes_until(lambda a: a.get("kiosk.mic") == "muted")
            await operator.call("kiosk.camera-off")
            await observer.attributes_until(lambda a: a.get("kiosk.camera") == "muted")
            status = json.loads(await operator.call("kiosk.status"))
            assert status["mic_mute_wanted"] and status["camera_remote_muted"]


async def test_nothing_remote_turns_the_microphone_on(devserver: Any, kiosk: Any) -> None:
    async with Client(devserver, "operator-e2e") as operator, \
            Client(devserver, "visitor-9") as visitor:
        await operator.call("kiosk.mute")
        await wait_state(kiosk, lambda s: s.mic_muted)
        with pytest.raises(rtc.RpcError) as refused:
            await operator.call("kiosk.unmute")
        assert refused.value.code == REFUSED and "only a person" in refused.value.message
        with pytest.raises(rtc.RpcError) as denied:
            await visitor.call("kiosk.status")
        assert denied.value.code == PERMISSION_DENIED
        # The server's own unmute request (RoomService MutePublishedTrack) is undone too.
        async with api.LiveKitAPI(devserver.http_url, devserver.api_key,
                                  devserver.api_secret) as lk:
            who = await lk.room.get_participant(api.RoomParticipantIdentity(
                room=ROOM, identity=IDENTITY))
            mic = next(t for t in who.tracks if t.type == 0)  # AUDIO
            await lk.room.mute_published_track(api.MuteRoomTrackRequest(
                room=ROOM, identity=IDENTITY, track_sid=mic.sid, muted=False))
        s = await wait_state(kiosk, lambda s: s.remote_unmutes_refused >= 2)
        await wait_state(kiosk, lambda s: s.mic_muted and not s.mic_live)
        assert s.mic_mute_wanted


async def appliance_ops(srv: Any, *argv: str) -> tuple[int, str, str]:
    """`appliance ops ARGV...` as an operator runs it (a process), against the double."""
    env = dict(os.environ, LIVEKIT_URL=srv.url, LIVEKIT_API_KEY=srv.api_key,
               LIVEKIT_API_SECRET=srv.api_secret)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", "ops", *argv, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_appliance_ops_lists_and_acts(devserver: Any, kiosk: Any) -> None:
    async def ops(*argv: str) -> tuple[int, str, str]:
        return await appliance_ops(devserver, *argv)

    async with Client(devserver, "observer-2") as observer:
        await observer.attributes_until(lambda a: a.get("kiosk.state") == "in-room")
    rc, out, err = await ops("ls", "--json")
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["identity"] for r in rows] == [IDENTITY]  # the observer is not a kiosk
    assert rows[0]["kiosk.state"] == "in-room"
    rc, out, err = await ops("identify", IDENTITY, "--seconds", "5")
    assert rc == 0, err
    await wait_state(kiosk, lambda s: s.identify_until is not None)
    rc, _, err = await ops("mute", "no-such-kiosk")
    assert rc == 1 and "no kiosk 'no-such-kiosk'" in err


async def test_appliance_ops_ls_two_kiosks_and_a_browser(devserver: Any, kiosk: Any) -> None:
    second = e2e_config(devserver, identity="kiosk-2", name="Kiosk 2")
    async with running_session(second) as other, Client(devserver, "browser-alice") as browser:
        await wait_state(other, on_air)
        for who in (IDENTITY, "kiosk-2"):
            await browser.attributes_until(lambda a: a.get("kiosk.mic") == "live", identity=who)

        rc, out, err = await appliance_ops(devserver, "ls", "--json")
        assert rc == 0, err
        rows = {r["identity"]: r for r in json.loads(out)}
        assert sorted(rows) == [IDENTITY, "kiosk-2"]  # the browser is no kiosk: left out
        for row in rows.values():
            assert row["room"] == ROOM and row["kiosk"] is True
            assert row["kiosk.state"] == "in-room" and row["kiosk.mic"] == "live"
            assert row["kiosk.fault"] == "none" and row["kiosk.version"]

        rc, out, err = await appliance_ops(devserver, "ls")
        assert rc == 0, err
        head, *lines = out.splitlines()
        assert head.split() == ["identity", "room", "state", "fault", "mic", "camera",
                                "quality", "version", "crashes"]
        table = {cells[0]: cells for cells in (row.split() for row in lines)}
        assert sorted(table) == [IDENTITY, "kiosk-2"]
        for cells in table.values():
            assert cells[1:5] == [ROOM, "in-room", "none", "live"]

        rc, out, err = await appliance_ops(devserver, "ls", "--all", "--json")
        assert rc == 0, err
        rows = {r["identity"]: r for r in json.loads(out)}
        assert sorted(rows) == ["browser-alice", IDENTITY, "kiosk-2"]
        assert rows["browser-alice"]["kiosk"] is False
        assert not any(k.startswith("kiosk.") for k in rows["browser-alice"])
        rc, out, err = await appliance_ops(devserver, "ls", "--all")
        assert rc == 0, err
        browser_row = next(r for r in out.splitlines() if r.startswith("browser-alice"))
        assert browser_row.split()[1:] == [ROOM, "not-a-kiosk", *["-"] * 6]

        rc, _, err = await appliance_ops(devserver, "status", "browser-alice")
        assert rc == 1 and "no kiosk 'browser-alice'" in err
