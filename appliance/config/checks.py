"""Checks that span keys or need more than a type: ranges, URLs, the token source, files."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from appliance.claims import token_claims, token_room_identity
from appliance.config.layers import check_private
from appliance.config.schema import SECRET_FILE_KEYS, Config
from appliance.errors import ConfigError

# Every number's accepted range (inclusive), with its unit; the README's reference shows these.
# Finite always: NaN and infinity are refused for every number.
RANGES: dict[str, tuple[float, float, str]] = {
    "livekit.token_ttl": (60, 30 * 86400, "s"),
    "camera.width": (16, 7680, "px"),
    "camera.height": (16, 4320, "px"),
    "camera.fps": (1, 120, "fps"),
    "camera.degrade_after": (0.1, 3600, "s"),
    "camera.restore_after": (0.1, 3600, "s"),
    "microphone.tone_hz": (20, 20000, "Hz"),
    "gpio.mute_hold": (0.1, 20, "s"),  # the control socket's hold is capped at 30 s
    "gpio.leave_hold": (0.1, 20, "s"),
    "gpio.bounce_time": (0.001, 1, "s"),
    "reconnect.backoff_initial": (0.05, 600, "s"),
    "reconnect.backoff_max": (0.05, 3600, "s"),
    "reconnect.auth_backoff_max": (0.05, 86400, "s"),
    "reconnect.stable_after": (1, 86400, "s"),
    "reconnect.media_stall_timeout": (1, 3600, "s"),
    "reconnect.removed_stay_out": (0, 7 * 86400, "s"),
    "reconnect.probe_interval": (0, 60, "s (0 = off)"),
    "watchdog.max_time_outside_room": (0, 7 * 86400, "s (0 = off)"),
}


def validate(cfg: Config, origin: Mapping[str, str]) -> list[str]:
    """Checks that span keys or need more than a type: ranges, required keys, token source."""
    problems: list[str] = []

    def bad(key: str, why: str) -> None:
        problems.append(f"{origin.get(key, 'defaults')}: `{key}`: {why}")

    lk = cfg.livekit
    if not lk.url:
        bad("livekit.url", 'required, found nothing (e.g. url = "wss://example.livekit.cloud")')
    else:
        why = _url_problem(lk.url, ("ws", "wss", "http", "https"))
        if why:
            bad("livekit.url", why)
    if not lk.room:
        bad("livekit.room", "required, found nothing")
    for key in ("token", "api_key", "api_secret", "token_url"):
        if getattr(lk, key) == "":
            bad(f"livekit.{key}", "empty; remove the key or give it a value")
    sources = []
    if lk.token is not None:
        sources.append("`livekit.token`")
    if lk.api_key is not None or lk.api_secret is not None or lk.api_secret_file is not None:
        sources.append("`livekit.api_key` + `livekit.api_secret`/`livekit.api_secret_file`")
    if lk.token_url is not None or lk.device_key_file is not None:
        sources.append("`livekit.token_url` + `livekit.device_key_file`")
    if not sources:
        problems.append(
            "livekit: no token source: set exactly one of `livekit.token`, "
            "`livekit.api_key` + `livekit.api_secret` (or `api_secret_file`), "
            "or `livekit.token_url` + `livekit.device_key_file`"
        )
    elif len(sources) > 1:
        problems.append(
            "livekit: more than one token source, set exactly one: " + "; ".join(sources)
        )
    else:
        if lk.api_key is not None or lk.api_secret is not None or lk.api_secret_file is not None:
            if lk.api_key is None:
                bad("livekit.api_key", "required with `livekit.api_secret`, found nothing")
            if (lk.api_secret is None) == (lk.api_secret_file is None):
                bad(
                    "livekit.api_secret",
                    "set exactly one of `livekit.api_secret` and `livekit.api_secret_file`",
                )
        if lk.token_url is not None or lk.device_key_file is not None:
            if lk.token_url is None:
                bad("livekit.token_url", "required with `livekit.device_key_file`")
            elif lk.token_url:
                why = _url_problem(lk.token_url, ("http", "https"))
                if why:
                    bad("livekit.token_url", why)
            if lk.device_key_file is None:
                bad("livekit.device_key_file", "required with `livekit.token_url`")
    for key in SECRET_FILE_KEYS:
        path = getattr(lk, key.split(".")[1])
        if path is not None:
            problem = _secret_file_problem(path, f"`{key}`:")
            if problem:
                problems.append(f"{origin.get(key, 'defaults')}: {problem}")
    if lk.token:
        problems += [f"{origin.get('livekit.token', 'defaults')}: `livekit.token`: {why}"
                     for why in _static_token_problems(lk.token, lk.room, lk.identity)]
    for key, (low, high, unit) in RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if not math.isfinite(value):
            bad(key, f"expected a finite number, found {value}")
        elif not low <= value <= high:
            bad(key, f"expected {_num(low)}..{_num(high)} {unit}, found {_num(value)}")
    for key in ("width", "height"):
        if getattr(cfg.camera, key) % 2:
            bad(f"camera.{key}", f"expected an even number (I420), found "
                f"{getattr(cfg.camera, key)}")
    rc = cfg.reconnect
    if rc.backoff_max < rc.backoff_initial:
        bad(
            "reconnect.backoff_max",
            f"expected at least `reconnect.backoff_initial` "
            f"({rc.backoff_initial:g}), found {rc.backoff_max:g}",
        )
    patterns = [p.strip() for p in cfg.remote.operators.split(",")]
    if cfg.remote.operators.strip() and not all(patterns):
        bad("remote.operators", "expected comma-separated identity patterns (e.g. "
            f'"operator-*,ops-laptop"), found an empty one in {cfg.remote.operators!r}')
    if 0 < rc.probe_interval < 0.2:
        bad("reconnect.probe_interval", "expected 0 (off) or at least 0.2 s, found "
            f"{rc.probe_interval:g}")
    if 0 < cfg.watchdog.max_time_outside_room < 10:
        bad("watchdog.max_time_outside_room", "expected 0 (off) or at least 10 s, found "
            f"{cfg.watchdog.max_time_outside_room:g}")
    return problems


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """Why `url` cannot be used (None if it can): a scheme of `schemes`, a host, a valid port."""
    names = [f"{s}://" for s in schemes]
    want = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" or {names[-1]}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        return f"not a valid URL ({exc}): {url!r}"
    if parts.scheme not in schemes or not parts.hostname:
        return f"expected a URL starting {want} and naming a host, found {url!r}"
    return None


def _secret_file_problem(path: Path, what: str) -> str | None:
    """A secret file must be a regular, readable, non-empty file that only its owner can read."""
    from appliance.session.tokens import read_secret  # the very reader `run` uses

    try:
        read_secret(path, what)
    except ConfigError as exc:
        return exc.problems[0]
    return check_private(path, what)


def _static_token_problems(token: str, room: str, identity: str) -> list[str]:
    """A static token must be a JWT whose room grant and identity match the configuration."""
    if token_claims(token) is None:
        return ["not a LiveKit access token (a JWT with three dot-separated parts)"]
    token_room, token_identity = token_room_identity(token)
    problems = []
    if token_room is not None and room and token_room != room:
        problems.append(f"grants room {token_room!r}, but `livekit.room` is {room!r}: the kiosk "
                        "would sit in the token's room while claiming the configured one")
    if token_identity is not None and identity and token_identity != identity:
        problems.append(f"is for identity {token_identity!r}, but `livekit.identity` is "
                        f"{identity!r}")
    return problems


def profile_problems(cfg: Config) -> list[str]:
    """The board profile `gpio.profile` names must exist and parse (as `run` will need it)."""
    from appliance.devices.profiles import load_profile

    try:
        load_profile(cfg.gpio.profile)
    except ConfigError as exc:
        return exc.problems
    return []
