"""Connection-quality grading at the double: the score, the grades, and forced values."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.protocol import models, rtc
from signal_client import raw

from appliance.devserver.model import Quality
from appliance.devserver.quality import Window, grade, mos
from appliance.devserver.server import DevServer

Q = models.ConnectionQuality


@pytest.mark.parametrize(("window", "expected"), [
    (Window(), Q.EXCELLENT),  # publishes nothing: nothing to complain about
    (Window(expected=500, lost=0, jitter_ms=2.0, rtt_ms=1.0, streams=1), Q.EXCELLENT),
    (Window(expected=500, lost=5, jitter_ms=30.0, rtt_ms=80.0, streams=1), Q.EXCELLENT),
    (Window(expected=500, lost=30, jitter_ms=5.0, streams=1), Q.GOOD),  # 6 % loss
    (Window(expected=500, lost=75, jitter_ms=5.0, streams=2), Q.POOR),  # 15 % loss
    (Window(expected=500, lost=0, jitter_ms=5.0, rtt_ms=900.0, streams=1), Q.POOR),
    (Window(expected=10, lost=9, streams=1), Q.EXCELLENT),  # too few packets to judge loss
    (Window(expected=0, streams=2, silent=2), Q.LOST),  # every published stream fell silent
    (Window(expected=100, streams=2, silent=1), Q.EXCELLENT),
])
def test_grades(window: Window, expected: int) -> None:
    assert grade(window)[0] == expected


def test_score_falls_with_loss_and_delay() -> None:
    assert mos(0.0, 0.0, None) > mos(0.02, 0.0, None) > mos(0.1, 0.0, None)
    assert mos(0.0, 0.0, 50.0) > mos(0.0, 0.0, 400.0)
    assert 4.3 < mos(0.0, 1.0, 1.0) <= 4.5  # loopback: near the E-model's ceiling


async def test_graded_updates_every_interval_and_faults_win(devserver_factory: Any) -> None:
    srv: DevServer = await devserver_factory(quality_interval=0.2)
    async with raw(srv, "a") as a:
        sid = (await a.next("join")).participant.sid
        update = await a.next("connection_quality")
        assert [(u.participant_sid, u.quality) for u in update.updates] == [(sid, Q.EXCELLENT)]
        await srv.faults.connection_quality("a", Quality.POOR)
        await a.next("connection_quality", match=lambda u: u.updates[0].quality == Q.POOR)
        # The periodic grading repeats the forced value instead of measuring over it.
        for _ in range(3):
            assert (await a.next("connection_quality")).updates[0].quality == Q.POOR
        srv.faults.clear()
        await a.next("connection_quality", match=lambda u: u.updates[0].quality == Q.EXCELLENT)
        await a.send(leave=rtc.LeaveRequest(reason=models.CLIENT_INITIATED))
