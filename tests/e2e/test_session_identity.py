"""Identity conflicts and operator actions against the double, with the real SDK on both ends."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from typing import Any

import pytest
from livekit import rtc
from livekit.protocol import models
from session_e2e_helpers import (
    FAST,
    IDENTITY,
    ROOM,
    e2e_config,
    on_air,
    running_session,
    wait_state,
)

from appliance.session.model import Fault, RoomState

pytestmark = pytest.mark.e2e


async def test_a_second_participant_with_our_identity_is_a_distinct_slow_fault(
        devserver: Any) -> None:
    async with running_session(e2e_config(devserver)) as runner:
        await wait_state(runner, on_air)
        intruder = rtc.Room()
        reasons: list[str] = []
        displaced = asyncio.Event()

        def on_disconnected(reason: Any) -> None:
            reasons.append(rtc.DisconnectReason.Name(reason))
            displaced.set()

        intruder.on("disconnected", on_disconnected)
        try:
            await intruder.connect(devserver.url, devserver.mint_token(IDENTITY, ROOM))
            s = await wait_state(runner, lambda s: s.fault is Fault.IDENTITY_CONFLICT)
            assert s.room is RoomState.DISCONNECTED and s.auth_lane and s.retry_pending
            assert "identity in use" in s.as_dict()["status"]
            assert s.next_retry_at is not None  # the slow lane (auth_lane), not a quick bounce
            # When it returns, it displaces the intruder the way LiveKit does.
            await wait_state(runner, on_air, within=FAST.auth_backoff_max + 20)
            async with asyncio.timeout(10):
                await displaced.wait()
            assert reasons == ["DUPLICATE_IDENTITY"]
        finally:
            await intruder.disconnect()
            gc.collect()


async def test_removed_by_an_operator_stays_out_for_the_configured_time(devserver: Any) -> None:
    cfg = e2e_config(devserver)
    cfg = dataclasses.replace(cfg, reconnect=dataclasses.replace(cfg.reconnect,
                                                                 removed_stay_out=3.0))
    async with running_session(cfg) as runner:
        await wait_state(runner, on_air)
        await devserver.faults.leave("DISCONNECT", IDENTITY, models.PARTICIPANT_REMOVED)
        s = await wait_state(runner, lambda s: s.fault is Fault.REMOVED)
        assert s.room is RoomState.DISCONNECTED and s.last_disconnect_reason == (
            "PARTICIPANT_REMOVED")
        assert s.next_retry_at is not None
        removed_at = runner.clock()
        await wait_state(runner, on_air, within=20)
        assert runner.clock() - removed_at >= 2.5  # stayed out, then came back by itself


async def test_a_deleted_room_is_rejoined(devserver: Any) -> None:
    async with running_session(e2e_config(devserver)) as runner:
        await wait_state(runner, on_air)
        await devserver.faults.leave("DISCONNECT", IDENTITY, models.ROOM_DELETED)
        s = await wait_state(runner, lambda s: s.last_disconnect_reason == "ROOM_DELETED")
        assert s.fault is not Fault.REMOVED
        await wait_state(runner, on_air, within=FAST.backoff_max + 20)
