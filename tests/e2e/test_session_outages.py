"""Long outages against the double: 503 past the SDK's own give-up, and a 401 spell."""

from __future__ import annotations

import time
from typing import Any

import pytest
from session_e2e_helpers import FAST, IDENTITY, e2e_config, on_air, running_session, wait_state

from appliance.session.model import Fault, RoomState

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_503_for_70_s_then_rejoined_within_backoff_max(devserver: Any) -> None:
    async with running_session(e2e_config(devserver)) as runner:
        await wait_state(runner, on_air)
        devserver.faults.reject(503, 70.0)
        ends = time.monotonic() + 70.0
        await devserver.faults.close_sockets(IDENTITY)
        # the SDK resumes, is refused, gives up (~20 s); then the runner's backoff takes over
        s = await wait_state(runner, lambda s: s.room is RoomState.DISCONNECTED, within=60)
        assert s.intent.value == "in-room" and s.retry_pending
        s = await wait_state(runner, lambda s: s.fault is Fault.SERVER_UNREACHABLE
                             and s.attempt >= 2, within=30)
        await wait_state(runner, on_air, within=70 + FAST.backoff_max + 10)
        late = time.monotonic() - ends
        assert late <= FAST.backoff_max + 5, f"rejoined {late:.1f} s after the server recovered"
        faults = {h.fault for h in runner.history}  # type: ignore[attr-defined]
        assert Fault.AUTH_REJECTED not in faults


async def test_401_for_30_s_then_valid_joins(devserver: Any) -> None:
    devserver.faults.reject(401, 30.0)
    ends = time.monotonic() + 30.0
    async with running_session(e2e_config(devserver)) as runner:
        s = await wait_state(runner, lambda s: s.fault is Fault.AUTH_REJECTED, within=30)
        assert "auth rejected" in s.as_dict()["status"]
        await wait_state(runner, on_air, within=30 + FAST.auth_backoff_max + 10)
        late = time.monotonic() - ends
        assert late <= FAST.auth_backoff_max + 5, f"joined {late:.1f} s after 401s stopped"
