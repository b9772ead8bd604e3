"""The chaos soak (bench/soak.py), short: about 2 minutes of faults with a fixed seed.

The whole kiosk (mock GPIO pins, test camera and microphone, control socket) against the
double; its LEDs are compared with what the double receives every 0.5 s. Nothing here is timed:
the detection windows are the documented ones (appliance/session/truth.py) and every recovery
deadline is generous (bench/soak.py: RECOVERY_DEADLINE, 90 s after the fault ended), so a
loaded machine makes the run slower, not red. The long run is `bench/soak.py --minutes 10`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from soak import soak, table

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SEED, MINUTES = 1, 2.0


async def test_short_soak_keeps_the_leds_truthful_and_recovers_from_every_fault() -> None:
    result = await soak(MINUTES, SEED)
    summary = table(result)
    assert result["faults"] >= 8, summary
    assert result["unrecovered"] == 0, summary
    assert not result["crashes"], summary
    assert not result["unhandled"], summary
    assert not result["tracebacks"], summary
    assert not result["secret_leaks"], summary
    # No LED (mute, camera, quality) claimed live past its window while the double received
    # nothing: no exemption for any fault kind.
    assert result["led"]["truth_violations"] == 0, summary
    assert not [e for e in result["led"]["episodes"] if e["direction"] == "false_live"], summary
