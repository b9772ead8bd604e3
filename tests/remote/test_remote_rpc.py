"""Operator RPCs through the runner: who may call, what is refused, what the machine does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from session_helpers import fast_config
from state_waits import wait_state

from appliance.remote.rpc import BAD_REQUEST, PERMISSION_DENIED, REFUSED, RemoteOps, RemoteRefused
from appliance.session.model import Intent, RoomState, TrackState

OK = RoomState.CONNECTED


def in_room(s: Any) -> bool:
    return s.room is OK and s.microphone is TrackState.PUBLISHED


async def _ops(harness_factory: Any) -> tuple[Any, RemoteOps]:
    h = await harness_factory()
    ops = RemoteOps(h.runner.cfg, post=h.runner.post, state=lambda: h.runner.state,
                    clock=h.runner.clock)
    await wait_state(h.runner, in_room)
    return h, ops


async def test_only_operators_may_call(harness_factory: Any) -> None:
    h, ops = await _ops(harness_factory)
    with pytest.raises(RemoteRefused) as exc:
        await ops.methods["kiosk.mute"]("visitor-7", "")
    assert exc.value.code == PERMISSION_DENIED and "visitor-7" in exc.value.message
    assert not h.runner.state.mic_mute_wanted
    reply = json.loads(await ops.methods["kiosk.status"]("operator-1", ""))
    assert reply["identity"] == "kiosk-1" and reply["room"] == "connected"


async def test_remote_mute_is_done_and_remote_unmute_refused(harness_factory: Any) -> None:
    h, ops = await _ops(harness_factory)
    assert json.loads(await ops.methods["kiosk.mute"]("operator-1", "")) == {"accepted": "mute"}
    s = await wait_state(h.runner, lambda s: s.mic_muted)
    assert not s.mic_live
    with pytest.raises(RemoteRefused) as exc:
        await ops.methods["kiosk.unmute"]("operator-1", "")
    assert exc.value.code == REFUSED and "only a person at the kiosk" in exc.value.message
    s = await wait_state(h.runner, lambda s: s.remote_unmutes_refused == 1)
    assert s.mic_muted and "refused" in s.last_remote


async def test_identify_payload_is_checked(harness_factory: Any) -> None:
    h, ops = await _ops(harness_factory)
    for bad in ("not json", "[1]", '{"seconds": -1}', '{"seconds": true}'):
        with pytest.raises(RemoteRefused) as exc:
            await ops.methods["kiosk.identify"]("operator-1", bad)
        assert exc.value.code == BAD_REQUEST
    await ops.methods["kiosk.identify"]("operator-1", '{"seconds": 2}')
    await wait_state(h.runner, lambda s: s.identify_until is not None)
    await wait_state(h.runner, lambda s: s.identify_until is None, within=5)


async def test_remote_leave_holds_the_kiosk_out(harness_factory: Any) -> None:
    h, ops = await _ops(harness_factory)
    await ops.methods["kiosk.leave"]("operator-2", "")
    s = await wait_state(h.runner, lambda s: s.room is RoomState.DISCONNECTED)
    assert s.intent is Intent.LEFT and s.left_remotely_by == "operator-2"


def test_operator_patterns_come_from_the_configuration() -> None:
    import dataclasses

    from appliance.config import RemoteConfig

    cfg = dataclasses.replace(fast_config(), remote=RemoteConfig(operators="ops-*, admin"))
    ops = RemoteOps(cfg, post=lambda e: None, state=lambda: None, clock=lambda: 0.0)  # type: ignore[arg-type,return-value]
    assert ops.allowed("ops-laptop") and ops.allowed("admin")
    assert not ops.allowed("operator-1") and not ops.allowed("administrator")
