"""Retry delays, pure: capped exponential growth with full jitter and a slow auth lane."""

from __future__ import annotations

from appliance.config import ReconnectConfig

# Never retry sooner than this, even when the jitter draws ~0: a flapping server gets a breath.
MIN_DELAY = 0.05


def ceiling(attempt: int, initial: float, cap: float) -> float:
    """The largest delay for the `attempt`-th consecutive failure (1-based): initial * 2^(n-1)."""
    exponent = min(max(attempt - 1, 0), 32)  # 2**32 * anything is past every sane cap
    return min(cap, initial * (2.0**exponent))


def retry_delay(cfg: ReconnectConfig, attempt: int, draw: float, *, auth: bool = False) -> float:
    """Full jitter: `draw` (uniform in [0, 1)) times the lane's ceiling, floored at MIN_DELAY.

    Auth rejections start where the normal lane tops out: hammering a token service that says
    "no" helps nobody, but it may be fixed any minute, so the kiosk still comes back.
    """
    cap = cfg.auth_backoff_max if auth else cfg.backoff_max
    initial = min(cfg.backoff_max, cap) if auth else cfg.backoff_initial
    return max(MIN_DELAY, draw * ceiling(attempt, initial, cap))
