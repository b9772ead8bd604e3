"""The moves every handler of the machine shares: a `Step`, joining, leaving, stopping."""

from __future__ import annotations

import dataclasses
from typing import Any

from appliance.session.model import (
    CancelRetry,
    Connect,
    Disconnect,
    Effect,
    RoomState,
    Shutdown,
    State,
    StopRequested,
)

Step = tuple[State, list[Effect]]

D, C, OK, R, X = (RoomState.DISCONNECTED, RoomState.CONNECTING, RoomState.CONNECTED,
                  RoomState.RECONNECTING, RoomState.DISCONNECTING)


def replace(state: State, **changes: Any) -> State:
    return dataclasses.replace(state, **changes)


def connect(state: State, *, fresh: bool = False, probed: bool = False) -> Step:
    state = replace(state, room=C, retry_pending=False, next_retry_at=None,
                    probe_pending=False, probe_join=probed)
    return state, [CancelRetry(), Connect(state.attempt, fresh_token=fresh or state.auth_lane)]


def leave(state: State, reason: str) -> Step:
    """Ask the adapter to leave whatever room exists or is being joined."""
    return replace(state, room=X, retry_pending=False, next_retry_at=None,
                   probe_pending=False), [CancelRetry(), Disconnect(reason)]


def on_stop(state: State, ev: StopRequested) -> Step:
    if state.stopping:
        return state, []
    state = replace(state, stopping=True)
    if state.room is D:
        return replace(state, retry_pending=False, next_retry_at=None,
                       probe_pending=False), [CancelRetry(), Shutdown()]
    if state.room is X:
        return state, []
    return leave(state, "shutdown")
