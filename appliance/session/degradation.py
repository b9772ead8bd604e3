"""Connection quality and the pure degradation ladder it drives (camera size, then audio only)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


class Quality(enum.Enum):
    """The local participant's connection quality as the server reports it."""

    UNKNOWN = "unknown"
    EXCELLENT = "excellent"
    GOOD = "good"
    POOR = "poor"
    LOST = "lost"


# Standard steps, largest first: the ladder starts at the configured size and uses the smaller
# ones below it, then pauses the camera (audio only) as the last rung.
STANDARD_SIZES: tuple[tuple[int, int], ...] = ((1920, 1080), (1280, 720), (640, 360))
BAD_QUALITIES = frozenset({Quality.POOR})
GOOD_QUALITIES = frozenset({Quality.GOOD, Quality.EXCELLENT})
# LOST and UNKNOWN say nothing about bandwidth (the room is down or just joined): neutral.


@dataclass(frozen=True, slots=True)
class Rung:
    """One step of the ladder: a capture size, or None for camera paused (audio only)."""

    size: tuple[int, int] | None
    label: str


def build_rungs(width: int, height: int) -> tuple[Rung, ...]:
    """Rungs for a camera configured at width x height: that size, smaller standards, paused."""
    rungs = [Rung((width, height), f"{height}p")]
    rungs += [Rung(size, f"{size[1]}p") for size in STANDARD_SIZES if size[1] < height]
    rungs.append(Rung(None, "audio only"))
    return tuple(rungs)


@dataclass(frozen=True, slots=True)
class LadderPolicy:
    """Timing: step down after `down_after` s of POOR, up after `up_after` s of GOOD+."""

    down_after: float = 10.0
    up_after: float = 30.0  # hysteresis: recovering is deliberately slower than degrading


@dataclass(frozen=True, slots=True)
class Ladder:
    """Current rung plus how long the present quality trend has lasted; all times are inputs."""

    rungs: tuple[Rung, ...]
    policy: LadderPolicy = LadderPolicy()
    index: int = 0
    quality: Quality = Quality.UNKNOWN
    since: float = 0.0  # when the current trend (bad or good) started, or the last step

    @property
    def rung(self) -> Rung:
        return self.rungs[self.index]

    def next_due(self) -> float | None:
        """When a step would happen if quality stays as it is; None if no step is pending."""
        if self.quality in BAD_QUALITIES and self.index < len(self.rungs) - 1:
            return self.since + self.policy.down_after
        if self.quality in GOOD_QUALITIES and self.index > 0:
            return self.since + self.policy.up_after
        return None

    def observe(self, quality: Quality, at: float) -> tuple[Ladder, Rung | None]:
        """A quality report at time `at`; returns the new ladder and the new rung if it moved."""
        ladder = self
        if _trend(quality) != _trend(self.quality):
            ladder = replace(self, quality=quality, since=at)
        elif quality is not self.quality:
            ladder = replace(self, quality=quality)  # GOOD <-> EXCELLENT keeps the trend
        return ladder.tick(at)

    def tick(self, at: float) -> tuple[Ladder, Rung | None]:
        """Time passed; step one rung if the trend has lasted long enough (one step per call)."""
        due = self.next_due()
        if due is None or at < due:
            return self, None
        step = 1 if self.quality in BAD_QUALITIES else -1
        new = replace(self, index=self.index + step, since=at)
        return new, new.rung


def _trend(quality: Quality) -> int:
    if quality in BAD_QUALITIES:
        return -1
    if quality in GOOD_QUALITIES:
        return 1
    return 0
