"""Operator RPC methods (`kiosk.*`): who may call, what the reply says; the machine decides.

SDK-free: the room link registers these handlers on every new Room and turns a `RemoteRefused`
into LiveKit's RpcError with the same code and message.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from appliance.config import Config
from appliance.errors import ApplianceError
from appliance.session.model import Event, RemoteAction, RemoteActionRequested, State
from appliance.session.remote_actions import remote_refusal

log = logging.getLogger(__name__)

# Application error codes (LiveKit reserves 1001-1999 for its own).
BAD_REQUEST, PERMISSION_DENIED, REFUSED = 2400, 2403, 2409
STATUS_METHOD = "kiosk.status"
Handler = Callable[[str, str], Awaitable[str]]  # (caller identity, payload) -> reply


class RemoteRefused(ApplianceError, PermissionError):
    """An RPC the kiosk will not perform; `code` and the message go back to the caller."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def operator_patterns(cfg: Config) -> list[str]:
    return [p.strip() for p in cfg.remote.operators.split(",") if p.strip()]


class RemoteOps:
    """The `kiosk.*` RPC handlers, bound to the session through `post` and `state`."""

    def __init__(self, cfg: Config, *, post: Callable[[Event], None],
                 state: Callable[[], State], clock: Callable[[], float]) -> None:
        self._patterns = operator_patterns(cfg)
        self._post = post
        self._state = state
        self._clock = clock

    @property
    def methods(self) -> dict[str, Handler]:
        out: dict[str, Handler] = {STATUS_METHOD: self._status}
        for action in RemoteAction:
            out[f"kiosk.{action.value}"] = self._action(action)
        return out

    def allowed(self, caller: str) -> bool:
        return any(fnmatch.fnmatchcase(caller, pattern) for pattern in self._patterns)

    def _check_caller(self, caller: str, method: str) -> None:
        if not self.allowed(caller):
            log.warning("refused %s from %r: not an operator (remote.operators = %r)", method,
                        caller, ",".join(self._patterns))
            raise RemoteRefused(PERMISSION_DENIED,
                                f"permission denied: {caller!r} is not an operator of this kiosk")

    async def _status(self, caller: str, payload: str) -> str:
        self._check_caller(caller, STATUS_METHOD)
        return json.dumps(self._state().as_dict())

    def _action(self, action: RemoteAction) -> Handler:
        async def handle(caller: str, payload: str) -> str:
            method = f"kiosk.{action.value}"
            self._check_caller(caller, method)
            seconds = _seconds(payload)
            refusal = remote_refusal(self._state(), action)
            # The machine hears every request, refused or not: it counts and shows refusals.
            self._post(RemoteActionRequested(self._clock(), action, caller, seconds))
            if refusal is not None:
                log.warning("refused %s from %s: %s", method, caller, refusal)
                raise RemoteRefused(REFUSED, refusal)
            log.info("remote %s by %s", action.value, caller)
            return json.dumps({"accepted": action.value})
        return handle


def _seconds(payload: str) -> float:
    """The optional `{"seconds": N}` of a request (identify); BAD_REQUEST for anything else."""
    if not payload.strip():
        return 0.0
    try:
        data: Any = json.loads(payload)
    except ValueError:
        raise RemoteRefused(BAD_REQUEST, "payload must be a JSON object, e.g. "
                            '{"seconds": 30}') from None
    if not isinstance(data, dict):
        raise RemoteRefused(BAD_REQUEST, "payload must be a JSON object")
    value = data.get("seconds", 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0 <= value <= 3600):
        raise RemoteRefused(BAD_REQUEST, "`seconds` must be a number from 0 to 3600")
    return float(value)
