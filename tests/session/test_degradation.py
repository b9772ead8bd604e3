"""Degradation ladder: sustained POOR steps down, sustained GOOD steps up, with hysteresis."""

from __future__ import annotations

import pytest

from appliance.session.degradation import Ladder, LadderPolicy, Rung, build_rungs
from appliance.session.model import Quality

Q = Quality
POLICY = LadderPolicy(down_after=10.0, up_after=30.0)


def test_rungs_from_configured_size() -> None:
    assert [r.label for r in build_rungs(1920, 1080)] == ["1080p", "720p", "360p", "audio only"]
    assert [r.label for r in build_rungs(1280, 720)] == ["720p", "360p", "audio only"]
    assert build_rungs(1280, 720)[-1] == Rung(None, "audio only")


def drive(reports: list[tuple[float, Quality | None]]) -> list[tuple[float, str]]:
    """(time, quality) reports; quality None means a timer tick. Returns (time, label) steps."""
    ladder = Ladder(build_rungs(1920, 1080), POLICY)
    steps = []
    for at, quality in reports:
        ladder, moved = ladder.tick(at) if quality is None else ladder.observe(quality, at)
        if moved is not None:
            steps.append((at, moved.label))
    return steps


@pytest.mark.parametrize(("reports", "steps"), [
    # brief POOR blips never step
    ([(0, Q.POOR), (9, Q.GOOD), (10, Q.POOR), (19.9, None)], []),
    # sustained POOR: one rung per 10 s, down to audio only, and no further
    ([(0, Q.POOR), (10, None), (20, None), (30, None), (40, None), (100, None)],
     [(10, "720p"), (20, "360p"), (30, "audio only")]),
    # recovery needs 30 s of GOOD per rung (hysteresis), EXCELLENT counts as GOOD
    ([(0, Q.POOR), (10, None), (11, Q.GOOD), (40, None), (41, None), (50, Q.EXCELLENT),
      (60, None), (75, None)],
     [(10, "720p"), (41, "1080p")]),
    # a POOR report in the middle of a recovery restarts the clock
    ([(0, Q.POOR), (10, None), (11, Q.GOOD), (30, Q.POOR), (31, Q.GOOD), (60, None),
      (61, None)],
     [(10, "720p"), (61, "1080p")]),
    # LOST / UNKNOWN are neutral: they stop both trends
    ([(0, Q.POOR), (5, Q.LOST), (20, None), (21, Q.UNKNOWN), (50, None)], []),
    # already at the top: GOOD does nothing
    ([(0, Q.GOOD), (100, None)], []),
])
def test_ladder_table(reports: list[tuple[float, Quality | None]],
                      steps: list[tuple[float, str]]) -> None:
    assert drive(reports) == steps


def test_next_due_tells_the_runner_when_to_tick() -> None:
    ladder = Ladder(build_rungs(1280, 720), POLICY)
    assert ladder.next_due() is None
    ladder, _ = ladder.observe(Q.POOR, 5.0)
    assert ladder.next_due() == 15.0
    ladder, moved = ladder.tick(15.0)
    assert moved is not None and moved.size == (640, 360)
    assert ladder.next_due() == 25.0
