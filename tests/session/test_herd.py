"""The herd simulation (bench/herd.py) on a small fleet: the reconnect policy's fleet goals hold.

Virtual time only (no sockets, no sleeping): the figures are deterministic, so asserting them is
asserting the policy, not the machine's speed.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from herd import simulate, simulate_sdk_only


def test_a_single_kiosk_is_back_within_3_s_of_the_return_for_any_outage() -> None:
    for outage in (10.0, 120.0, 3600.0):
        r = simulate(1, outage)
        assert r.never == 0 and r.pct(0.95) <= 3.0, (outage, r.back)


def test_a_fleet_returns_near_the_admission_floor_without_hammering() -> None:
    kiosks, capacity = 200, 20.0  # the same shape as 1,000 kiosks at 100 joins/s
    floor = kiosks / capacity
    for outage in (10.0, 120.0):
        r = simulate(kiosks, outage, capacity=capacity)
        assert r.never == 0
        assert max(r.back) <= 1.2 * floor + 2.0, (outage, max(r.back))
        assert r.peak_load <= 2.0, (outage, r.peak_load)
        plain = simulate(kiosks, outage, capacity=capacity, probe=False)
        assert plain.pct(0.95) > r.pct(0.95)  # probing beats plain backoff


def test_the_sdk_alone_gives_up_on_a_long_outage() -> None:
    assert simulate_sdk_only(10, 120.0).never == 10
