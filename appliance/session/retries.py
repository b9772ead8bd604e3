"""Retries and probes while out of the room: when to join again, what a probe's answer means."""

from __future__ import annotations

import hashlib

from appliance.session.backoff import MIN_DELAY, retry_delay
from appliance.session.model import (
    Effect,
    Fault,
    Intent,
    JoinFailure,
    NetworkChanged,
    ProbeAnswered,
    ProbeVerdict,
    RetryTimerFired,
    ScheduleProbe,
    ScheduleRetry,
    Shutdown,
    State,
)
from appliance.session.steps import D, Step, connect, replace


def jitter(identity: str, attempt: int, at: float) -> float:
    """A uniform draw in [0, 1) that is a pure function of its inputs (full-jitter backoff).

    Kiosks differ by identity, so a fleet that failed at the same instant spreads out; tests and
    the herd simulation replay exactly.
    """
    digest = hashlib.blake2b(f"{identity}|{attempt}|{at:.6f}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _probe_due(state: State, at: float) -> float:
    """Next probe: uniform in [0.4, 1.6] x the mean interval, a pure draw like the retry's."""
    draw = jitter(f"{state.identity}/probe", state.probes, at)
    return at + state.policy.probe_interval * (0.4 + 1.2 * draw)


def _probe_again(state: State, at: float) -> Step:
    """While waiting, probe again: the server's return is noticed within a second or two."""
    return replace(state, probe_pending=True), [ScheduleProbe(_probe_due(state, at))]


def retry_or_rest(state: State, at: float, *, auth: bool, probe: bool = False) -> Step:
    """Arm the next join: after the backoff, or, when probing, on the probe's OK.

    While probing, the blind retry is only a safety net (a validate path that never answers
    although joins would work): its delay is drawn up to the slow lane's cap, so a fleet's blind
    joins against a dead server stay far below its admission rate.
    """
    if state.stopping:
        return state, [Shutdown()]
    if state.intent is Intent.LEFT:
        return state, []
    probing = probe and state.policy.probe_interval > 0
    if probing:
        delay = _safety_net_delay(state, at)
    else:
        delay = retry_delay(state.policy, state.attempt, jitter(state.identity, state.attempt, at),
                            auth=auth)
    due = at + delay
    state = replace(state, retry_pending=True, auth_lane=auth, next_retry_at=due,
                    probe_pending=probing)
    effects: list[Effect] = [ScheduleRetry(due)]
    if probing:
        effects.append(ScheduleProbe(_probe_due(state, at)))
    return state, effects


def _safety_net_delay(state: State, at: float) -> float:
    draw = jitter(f"{state.identity}/net", state.probes, at)
    return max(MIN_DELAY, draw * max(state.policy.auth_backoff_max, state.policy.backoff_max))


def join_fault(state: State, cause: JoinFailure) -> Fault:
    if cause is JoinFailure.AUTH:
        return Fault.AUTH_REJECTED
    if cause is JoinFailure.CONFIG:
        return Fault.CONFIG_FAULT
    return Fault.SERVER_UNREACHABLE if state.network_up else Fault.NO_NETWORK


def on_retry_fired(state: State, ev: RetryTimerFired) -> Step:
    if not state.retry_pending or state.stopping or state.intent is Intent.LEFT:
        return state, []  # a timer that lost a race with a cancel
    # Sent away by an operator or displaced: a token still held may be one the operator meant
    # to end (a revoked kiosk), so the next join asks for a fresh one.
    return connect(state, fresh=state.link_fault in (Fault.REMOVED, Fault.IDENTITY_CONFLICT))


def on_probe_answered(state: State, ev: ProbeAnswered) -> Step:
    """The server's answer to a probe: join now if it would be accepted, else probe again."""
    if not state.probe_pending:
        return state, []  # a probe that lost a race with a join or a cancel
    state = replace(state, probe_pending=False, probes=state.probes + 1)
    if not state.retry_pending or state.stopping or state.intent is Intent.LEFT:
        return state, []
    if ev.verdict is ProbeVerdict.OK:
        if state.probe_joins_failed == 0:
            return connect(state, probed=True)
        # Joins the probe let through were refused anyway (an overloaded server whose validate
        # still says yes): bring the retry forward, but spread like a backoff, and stop probing.
        delay = retry_delay(state.policy, state.probe_joins_failed,
                            jitter(state.identity, state.attempt, ev.at))
        due = ev.at + delay
        if state.next_retry_at is not None and due >= state.next_retry_at:
            return state, []
        return replace(state, next_retry_at=due), [ScheduleRetry(due)]
    if ev.verdict is ProbeVerdict.CONFIG:
        return replace(state, link_fault=Fault.CONFIG_FAULT), []
    if ev.verdict is ProbeVerdict.AUTH:
        state = replace(state, link_fault=Fault.AUTH_REJECTED)
    else:
        state = replace(state, link_fault=join_fault(state, JoinFailure.UNREACHABLE))
    state, effects = _probe_again(state, ev.at)
    if ev.verdict is ProbeVerdict.BUSY:
        # The server is up and says "not now": a blind join would only add to its load, so the
        # safety-net retry moves out again; the next probe's OK brings the kiosk in.
        due = ev.at + _safety_net_delay(state, ev.at)
        if state.next_retry_at is None or due > state.next_retry_at:
            state = replace(state, next_retry_at=due)
            effects.append(ScheduleRetry(due))
    return state, effects


def on_network(state: State, ev: NetworkChanged) -> Step:
    state = replace(state, network_up=ev.up)
    if ev.up and state.room is D and state.retry_pending and not state.stopping:
        return connect(state)  # a link or route appeared: retry now, not after the backoff
    return state, []
