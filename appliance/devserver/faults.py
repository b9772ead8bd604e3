"""Fault injection: the misbehaviours a test (or the demo) can switch on at the double."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from livekit.protocol import models, rtc

from appliance.devserver import peer, rtcpatch
from appliance.devserver.model import Quality
from appliance.errors import DevServerError

if TYPE_CHECKING:
    from appliance.devserver.hub import Hub
    from appliance.devserver.participant import Participant

log = logging.getLogger(__name__)

LEAVE_ACTIONS = {
    "DISCONNECT": rtc.LeaveRequest.DISCONNECT,
    "RESUME": rtc.LeaveRequest.RESUME,
    "RECONNECT": rtc.LeaveRequest.RECONNECT,
}
REJECT_TARGETS = ("rtc", "token")


@dataclass
class Rejection:
    """New connections (or token requests) answered with `status` until `until` (monotonic)."""

    status: int
    until: float
    message: str


class Faults:
    """Switches and one-shot actions; every method has a twin on the control endpoint."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self.rejections: dict[str, Rejection] = {}
        self.refuse_resumes = False
        self.freeze_until: dict[str | None, float] = {}  # identity (None = everyone) -> deadline
        self.black_hole_all = False
        self.black_holed: set[str] = set()
        self._thaw = asyncio.Event()

    # ----- switches --------------------------------------------------------------------------

    def reject(self, status: int, seconds: float, target: str = "rtc") -> None:
        """Answer `status` (401 or 503) to new connections, or to /token, for `seconds`."""
        if status not in (401, 503):
            raise DevServerError(f"reject status must be 401 or 503, not {status}")
        if target not in REJECT_TARGETS:
            raise DevServerError(f"reject target must be one of {REJECT_TARGETS}, not {target!r}")
        message = "fault: unauthorized" if status == 401 else "fault: service unavailable"
        self.rejections[target] = Rejection(status, time.monotonic() + seconds, message)
        log.info("fault: %s answers %d for %.1f s", target, status, seconds)

    def rejection(self, target: str) -> Rejection | None:
        """The rejection in force for `target`, if any."""
        found = self.rejections.get(target)
        if found is not None and found.until <= time.monotonic():
            del self.rejections[target]
            return None
        return found

    def set_refuse_resumes(self, refuse: bool) -> None:
        """Answer resume attempts with leave(RECONNECT), forcing the SDK into a full rejoin."""
        self.refuse_resumes = refuse
        log.info("fault: refuse resumes = %s", refuse)

    def freeze(self, seconds: float, identity: str | None = None) -> None:
        """Stop answering signalling (keep the sockets) for `seconds`, for one or everyone."""
        self.freeze_until[identity] = time.monotonic() + seconds
        log.info("fault: signalling frozen for %s for %.1f s", identity or "everyone", seconds)

    def thaw(self) -> None:
        """End every freeze now."""
        self.freeze_until.clear()
        self._thaw.set()
        self._thaw = asyncio.Event()

    def _frozen_for(self, identity: str | None) -> float:
        now = time.monotonic()
        deadlines = [self.freeze_until.get(None, 0.0)]
        if identity is not None:
            deadlines.append(self.freeze_until.get(identity, 0.0))
        return max(deadlines) - now

    async def wait_unfrozen(self, identity: str | None) -> None:
        """Return once signalling for `identity` is not frozen."""
        while (remaining := self._frozen_for(identity)) > 0:
            thaw = self._thaw
            # On timeout the freeze ran out: loop to re-check in case it was extended meanwhile.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(thaw.wait(), timeout=remaining)

    def black_hole(self, on: bool, identity: str | None = None) -> None:
        """Drop RTP/RTCP both ways for one participant or everyone, signalling untouched."""
        if identity is None:
            self.black_hole_all = on
            if not on:
                self.black_holed.clear()
        elif on:
            self.black_holed.add(identity)
        else:
            self.black_holed.discard(identity)
        for participant in self._hub.all_participants():
            self.apply_black_hole(participant)
        log.info("fault: black hole %s for %s", "on" if on else "off", identity or "everyone")

    def apply_black_hole(self, participant: Participant) -> None:
        drop = self.black_hole_all or participant.identity in self.black_holed
        for pc in participant.peer_connections():
            for transport in peer.dtls_transports(pc):
                rtcpatch.set_black_hole(transport, drop)

    def clear(self) -> None:
        """Switch every fault off."""
        self.rejections.clear()
        self.refuse_resumes = False
        self.black_hole(False)
        self.thaw()
        for participant in self._hub.all_participants():
            participant.quality_forced = False

    # ----- one-shot actions ------------------------------------------------------------------

    async def close_sockets(self, identity: str | None = None) -> int:
        """Close signalling sockets without a leave (the SDK resumes); returns how many."""
        closed = 0
        for participant in self._hub.select(identity):
            ws = participant.ws
            if ws is not None:
                participant.detach(ws, self._hub.departure_timeout)
                await ws.close()
                closed += 1
        log.info("fault: closed %d signalling socket(s)", closed)
        return closed

    async def leave(self, action: str, identity: str | None = None,
                    reason: models.DisconnectReason = models.UNKNOWN_REASON) -> int:
        """Send leave with DISCONNECT, RESUME or RECONNECT; returns how many were told."""
        code = LEAVE_ACTIONS.get(action.upper())
        if code is None:
            raise DevServerError(f"leave action must be one of {sorted(LEAVE_ACTIONS)}")
        told = 0
        for participant in self._hub.select(identity):
            request = rtc.LeaveRequest(action=code, reason=reason,
                                       can_reconnect=code != rtc.LeaveRequest.DISCONNECT)
            told += await participant.send(rtc.SignalResponse(leave=request))
            if code == rtc.LeaveRequest.DISCONNECT:
                await self._hub.remove(participant, reason)
        return told

    async def connection_quality(self, identity: str, quality: Quality | str,
                                 score: float | None = None) -> None:
        """Tell everyone in the participant's room its quality is EXCELLENT/GOOD/POOR/LOST."""
        quality = Quality[quality.upper()] if isinstance(quality, str) else quality
        for participant in self._hub.select(identity):
            # Forced until `clear()`: the periodic grading repeats it instead of measuring.
            participant.quality = quality.value
            participant.quality_forced = True
            participant.quality_score = score if score is not None else {
                "EXCELLENT": 5.0, "GOOD": 3.5, "POOR": 2.0, "LOST": 0.0}[quality.name]
            info = rtc.ConnectionQualityInfo(
                participant_sid=participant.sid, quality=quality.value,
                score=participant.quality_score)
            update = rtc.SignalResponse(connection_quality=rtc.ConnectionQualityUpdate(
                updates=[info]))
            for member in participant.room.participants.values():
                await member.send(update)

    async def refresh_token(self, identity: str | None = None,
                            ttl: datetime.timedelta = datetime.timedelta(hours=1)) -> int:
        """Send each participant a freshly minted token; returns how many."""
        sent = 0
        for participant in self._hub.select(identity):
            token = self._hub.mint_token(participant.identity, participant.room.name, ttl=ttl)
            sent += await participant.send(rtc.SignalResponse(refresh_token=token))
        return sent

    async def mute(self, identity: str, kind: str | None = None, muted: bool = True) -> int:
        """Mute (or unmute) a participant's tracks from the server side; returns how many."""
        count = 0
        for participant in self._hub.select(identity):
            for track in list(participant.tracks.values()):
                if kind is None or track.kind == kind:
                    count += await participant.set_muted(track.sid, muted, from_client=False)
        return count

    async def forget(self) -> None:
        """Forget every room, participant and session at once, as a server restart would."""
        await self._hub.forget()
