"""Herd simulation: N kiosks running the real machine, backoff and probe code on a virtual clock.

    .venv/bin/python bench/herd.py [--kiosks 1 50 1000 10000] [--outages 10 120 3600]

No sockets and no sleeping: every kiosk is `appliance.session.machine.transition` fed by an
event heap; its effects are played against a server model with an admission capacity (joins per
second, as a token bucket) and a probe capacity. The server goes down at t=0 for T seconds. It
prints, per policy, the time from the server's return to each kiosk back in the room (p50, p95,
max), the peak offered load (joins + probes weighted by cost, per second, against capacity) and
the refused joins, next to the physical floor N / capacity.

Policies:
  sdk-only       the SDK's own retries alone: 10 attempts, random waits capped at 7 s, then it
                 gives up (measured in DESIGN notes of the SDK; the kiosk stays out after that)
  backoff        this project's machine with probing off: exponential backoff, full jitter
  project        the machine with its validate probe, against a server whose /rtc/validate says
                 "busy" once no join could be admitted now (admission-aware validate)
  project/plain  the same machine against a validate that only checks the token (a stock
                 LiveKit server): joins the probe lets through may be refused; they spread out
Model assumptions (printed with the figures): a join costs 1, a probe 0.01 (a JWT check versus
signalling, ICE and DTLS); a join takes 0.3 s; a refused join or probe answers in 0.05 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.config import ReconnectConfig  # noqa: E402
from appliance.session.machine import transition  # noqa: E402
from appliance.session.model import (  # noqa: E402
    CancelRetry,
    Connect,
    ConnectFailed,
    ConnectRequested,
    Event,
    JoinFailure,
    ProbeAnswered,
    ProbeVerdict,
    RetryTimerFired,
    RoomConnected,
    RoomDisconnected,
    RoomState,
    ScheduleProbe,
    ScheduleRetry,
    State,
    initial_state,
)

JOIN_COST, PROBE_COST = 1.0, 0.01
JOIN_LATENCY, REFUSE_LATENCY = 0.3, 0.05
STEADY_AFTER = 45.0  # past this, a fleet retrying a dead server is statistically stationary
SDK_ATTEMPTS, SDK_WAIT_CAP = 10, 7.0


@dataclass
class Server:
    """Down during [0, outage); then admits `capacity` joins a second (token bucket)."""

    outage: float
    capacity: float
    probe_capacity: float
    admission_aware: bool = True
    tokens: float = 0.0
    refilled_at: float = 0.0
    probe_tokens: float = 0.0
    probe_refilled_at: float = 0.0
    joins: Counter[int] = field(default_factory=Counter)  # offered per whole second
    probes: Counter[int] = field(default_factory=Counter)
    refused: int = 0
    tickets: dict[int, float] = field(default_factory=dict)  # kiosk -> validate OK expiry

    def up(self, t: float) -> bool:
        return t >= self.outage

    def _refill(self, t: float) -> None:
        start = max(self.refilled_at, self.outage)
        if t > start:
            self.tokens = min(self.capacity, self.tokens + (t - start) * self.capacity)
            self.refilled_at = t

    def _probe_refill(self, t: float) -> None:
        if t > self.probe_refilled_at:
            self.probe_tokens = min(self.probe_capacity, self.probe_tokens
                                    + (t - self.probe_refilled_at) * self.probe_capacity)
            self.probe_refilled_at = t

    def join(self, kiosk: int, t: float) -> bool:
        self.joins[math.floor(t)] += 1
        if not self.up(t):
            self.refused += 1
            return False
        if self.tickets.pop(kiosk, -1.0) >= t:
            return True  # admitted when its probe said OK
        self._refill(t)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.refused += 1
        return False

    def probe(self, kiosk: int, t: float) -> ProbeVerdict:
        self.probes[math.floor(t)] += 1
        self._probe_refill(t)
        if not self.up(t) or self.probe_tokens < 1.0:
            return ProbeVerdict.UNREACHABLE
        self.probe_tokens -= 1.0
        if not self.admission_aware:
            return ProbeVerdict.OK
        self._refill(t)
        if self.tokens < 1.0:
            return ProbeVerdict.BUSY
        self.tokens -= 1.0
        self.tickets[kiosk] = t + 2.0  # the admission is held for the join that follows
        return ProbeVerdict.OK

    def peak_load(self) -> float:
        seconds = set(self.joins) | set(self.probes)
        return max((self.joins[s] * JOIN_COST + self.probes[s] * PROBE_COST for s in seconds),
                   default=0.0) / self.capacity


@dataclass(order=True)
class _Item:
    at: float
    seq: int
    kiosk: int = field(compare=False)
    kind: str = field(compare=False)  # "event", "retry", "probe", "join"
    version: int = field(compare=False, default=0)
    event: Event | None = field(compare=False, default=None)


@dataclass
class Result:
    policy: str
    kiosks: int
    outage: float
    back: list[float]  # seconds after the server's return, per kiosk that came back
    never: int
    peak_load: float
    refused: int
    events: int

    def pct(self, q: float) -> float:
        if not self.back:
            return math.inf
        ordered = sorted(self.back)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def simulate(kiosks: int, outage: float, *, capacity: float = 100.0, probe: bool = True,
             admission_aware: bool = True, seed: int = 1,
             policy: ReconnectConfig | None = None) -> Result:
    """Run the real machine for `kiosks` kiosks through one outage; deterministic per seed."""
    rc = policy or ReconnectConfig()
    if not probe:
        rc = dataclasses.replace(rc, probe_interval=0.0)
    server = Server(outage, capacity, probe_capacity=capacity * 200,
                    admission_aware=admission_aware)
    rng = random.Random(seed)
    states: list[State] = []
    heap: list[_Item] = []
    versions: list[dict[str, int]] = []
    seq = 0
    back: dict[int, float] = {}
    events = 0

    def push(at: float, kiosk: int, kind: str, event: Event | None = None,
             version: int = 0) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(heap, _Item(at, seq, kiosk, kind, version, event))

    for k in range(kiosks):
        s = initial_state(f"kiosk-{k:05d}", "lobby", rc)
        s, _ = transition(s, ConnectRequested(-10.0))
        s, _ = transition(s, RoomConnected(-9.0))
        states.append(s)
        versions.append({"retry": 0, "probe": 0})
        # The SDK noticing the dead server takes a moment that differs per kiosk.
        push(rng.uniform(0.0, 2.0), k, "event", RoomDisconnected(0.0, "SIGNAL_CLOSE"))

    def apply(k: int, event: Event) -> None:
        nonlocal events
        events += 1
        new, effects = transition(states[k], event)
        states[k] = new
        if new.room is RoomState.CONNECTED and k not in back:
            back[k] = event.at - outage
        for effect in effects:
            if isinstance(effect, Connect):
                ok = server.join(k, event.at)
                if ok:
                    push(event.at + JOIN_LATENCY, k, "event", RoomConnected(0.0))
                else:
                    push(event.at + REFUSE_LATENCY, k, "event",
                         ConnectFailed(0.0, "refused", JoinFailure.UNREACHABLE))
            elif isinstance(effect, ScheduleRetry):
                versions[k]["retry"] += 1
                push(effect.due, k, "retry", version=versions[k]["retry"])
            elif isinstance(effect, ScheduleProbe):
                versions[k]["probe"] += 1
                push(effect.due, k, "probe", version=versions[k]["probe"])
            elif isinstance(effect, CancelRetry):
                versions[k]["retry"] += 1
                versions[k]["probe"] += 1

    shifted = False
    while heap and len(back) < kiosks:
        item = heapq.heappop(heap)
        if not shifted and outage > STEADY_AFTER + 5 and item.at >= STEADY_AFTER:
            # Fast-forward the stationary middle of a long outage: every pending timer moves
            # by the same amount, so the fleet's state distribution is unchanged.
            shift = outage - STEADY_AFTER - 5
            heap = [dataclasses.replace(i, at=i.at + shift) for i in [item, *heap]]
            heapq.heapify(heap)
            states = [dataclasses.replace(
                s, next_retry_at=None if s.next_retry_at is None else s.next_retry_at + shift)
                for s in states]
            shifted = True
            continue
        k = item.kiosk
        if item.kind == "retry":
            if item.version == versions[k]["retry"]:
                apply(k, RetryTimerFired(item.at))
        elif item.kind == "probe":
            if item.version == versions[k]["probe"]:
                verdict = server.probe(k, item.at)
                push(item.at + REFUSE_LATENCY, k, "event", ProbeAnswered(0.0, verdict))
        else:
            assert item.event is not None
            apply(k, dataclasses.replace(item.event, at=item.at))
    name = ("project" if admission_aware else "project/plain") if probe else "backoff"
    return Result(name, kiosks, outage, list(back.values()), kiosks - len(back),
                  server.peak_load(), server.refused, events)


def simulate_sdk_only(kiosks: int, outage: float, *, capacity: float = 100.0,
                      seed: int = 1) -> Result:
    """The SDK's own retries and nothing else: 10 attempts, then the kiosk stays out."""
    server = Server(outage, capacity, probe_capacity=capacity * 200)
    rng = random.Random(seed)
    attempts = sorted((rng.uniform(0.0, 2.0), k, 0) for k in range(kiosks))
    heapq.heapify(attempts)
    back: list[float] = []
    events = 0
    while attempts:
        at, k, n = heapq.heappop(attempts)
        events += 1
        if server.join(k, at):
            back.append(at + JOIN_LATENCY - outage)
        elif n + 1 < SDK_ATTEMPTS:
            heapq.heappush(attempts, (at + REFUSE_LATENCY + rng.uniform(0.0, SDK_WAIT_CAP),
                                      k, n + 1))
    return Result("sdk-only", kiosks, outage, back, kiosks - len(back), server.peak_load(),
                  server.refused, events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kiosks", type=int, nargs="+", default=[1, 50, 1000, 10000])
    parser.add_argument("--outages", type=float, nargs="+", default=[10.0, 120.0, 3600.0])
    parser.add_argument("--capacity", type=float, default=100.0, help="joins per second")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    cap = args.capacity
    print(f"server: {cap:g} joins/s admission, {cap * 200:g} probes/s; cost join {JOIN_COST:g}, "
          f"probe {PROBE_COST:g}; join {JOIN_LATENCY:g} s; policy {ReconnectConfig()}")
    print(f"{'policy':<14} {'N':>6} {'outage':>7} {'floor':>6} {'p50':>7} {'p95':>7} "
          f"{'max':>7} {'never':>6} {'peak/cap':>8} {'refused':>8} {'goal':>5} {'cpu s':>6}")
    failed = 0
    for outage in args.outages:
        for n in args.kiosks:
            floor = n / cap
            goal_p95 = 3.0 if floor <= 1.0 else None
            goal_max = 1.2 * floor + 2.0 if floor > 1.0 else None
            runs: list[tuple[str, Callable[[], Result]]] = [
                ("sdk-only", partial(simulate_sdk_only, n, outage, capacity=cap,
                                     seed=args.seed)),
                ("backoff", partial(simulate, n, outage, capacity=cap, probe=False,
                                    seed=args.seed)),
                ("project", partial(simulate, n, outage, capacity=cap, seed=args.seed)),
                ("project/plain", partial(simulate, n, outage, capacity=cap,
                                          admission_aware=False, seed=args.seed))]
            for name, run in runs:
                started = time.process_time()
                r = run()
                cpu = time.process_time() - started
                verdict = ""
                if name == "project":
                    ok = r.never == 0 and r.peak_load <= 2.0
                    if goal_p95 is not None:
                        ok = ok and r.pct(0.95) <= goal_p95
                    if goal_max is not None:
                        ok = ok and max(r.back) <= goal_max
                    verdict = "met" if ok else "MISSED"
                    failed += not ok
                print(f"{name:<14} {n:>6} {outage:>6.0f}s {floor:>5.1f}s {r.pct(0.5):>6.1f}s "
                      f"{r.pct(0.95):>6.1f}s {max(r.back, default=math.inf):>6.1f}s "
                      f"{r.never:>6} {r.peak_load:>8.2f} {r.refused:>8} {verdict:>5} {cpu:>6.1f}")
    summary = "all goals met" if not failed else f"{failed} goal(s) missed"
    print(f"goals (project): fleets under 1 s of capacity back within 3 s (p95); larger fleets "
          f"all back within 1.2 x floor + 2 s; peak offered load <= 2 x capacity: {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
