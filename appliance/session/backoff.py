"""Retry delays: capped exponential growth with full jitter, a fast lane and a slow auth lane."""

from __future__ import annotations

import random
from collections.abc import Callable

from appliance.config import ReconnectConfig

# Never retry sooner than this, even when the jitter draws ~0: a flapping server gets a breath.
MIN_DELAY = 0.05


def ceiling(attempt: int, initial: float, cap: float) -> float:
    """The largest delay for the `attempt`-th consecutive failure (1-based): initial * 2^(n-1)."""
    exponent = min(max(attempt - 1, 0), 32)  # 2**32 * anything is past every sane cap
    return min(cap, initial * (2.0**exponent))


class Backoff:
    """Turns (attempt, auth) into a delay; `rng` is injected so tests are deterministic."""

    def __init__(self, cfg: ReconnectConfig, rng: Callable[[], float] = random.random) -> None:
        self.cfg = cfg
        self._rng = rng

    def ceiling(self, attempt: int, *, auth: bool = False) -> float:
        cap = self.cfg.auth_backoff_max if auth else self.cfg.backoff_max
        # Auth rejections start where the normal lane tops out: hammering a token service that
        # says "no" helps nobody, but it may be fixed any minute, so we still come back.
        initial = min(self.cfg.backoff_max, cap) if auth else self.cfg.backoff_initial
        return ceiling(attempt, initial, cap)

    def delay(self, attempt: int, *, auth: bool = False) -> float:
        """Full jitter: uniform in [0, ceiling), floored at MIN_DELAY."""
        return max(MIN_DELAY, self._rng() * self.ceiling(attempt, auth=auth))
