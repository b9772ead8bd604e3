"""Access tokens: static, minted locally with livekit-api, or fetched from the fleet endpoint."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from appliance.claims import token_expiry
from appliance.config import Config
from appliance.errors import AuthRejected, ConfigError, TokenError
from appliance.files import SECRET_LIMIT, read_regular
from appliance.logs import register_secret

log = logging.getLogger(__name__)

# Before any (re)join, a token expiring sooner than this is replaced first.
REFRESH_MARGIN = 300.0
# A probe only asks /rtc/validate whether a join would pass, so any token still valid this long
# will do. Fetching one per probe (every ~1.25 s while out) would use up the fleet endpoint's
# per-device limit (10 a minute) during an outage, and the join the probe then lets through
# would find the endpoint refusing it for up to a minute.
PROBE_MARGIN = 30.0
ENDPOINT_TIMEOUT = 10.0


def read_secret(path: Path, what: str) -> str:
    """A secret file's stripped text; ConfigError if it is not a small, non-empty text file."""
    data = read_regular(path, what, limit=SECRET_LIMIT)
    try:
        value = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError([f"{what} {path}: not UTF-8 text"]) from None
    if not value:
        raise ConfigError([f"{what} {path}: empty"])
    return value


class TokenSource:
    """Hands out (url, token) for a join; caches, and replaces tokens close to expiry."""

    def __init__(self, cfg: Config, *, wall: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.kind = cfg.token_source
        self._wall = wall
        self._token: str | None = cfg.livekit.token
        self._url = cfg.livekit.url
        self._http: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        register_secret(self._token)

    @property
    def url(self) -> str:
        return self._url

    def expires_in(self) -> float | None:
        if self._token is None:
            return None
        exp = token_expiry(self._token)
        return None if exp is None else exp - self._wall()

    def _fresh_enough(self, margin: float = REFRESH_MARGIN) -> bool:
        left = self.expires_in()
        return self._token is not None and (left is None or left > margin)

    def observe_refreshed(self, token: str) -> None:
        """The SDK got a new token from the server (`token_refreshed`): rejoin with it."""
        register_secret(token)
        self._token = token

    async def get(self, *, fresh: bool = False, probe: bool = False) -> tuple[str, str]:
        """(url, token) for a join; with `probe`, for a validate probe (see PROBE_MARGIN)."""
        async with self._lock:
            if self.kind == "static":
                if self._token is None:
                    raise ConfigError(["livekit.token: not set"])
                if not self._fresh_enough():
                    log.warning("static token expires in %.0f s; set a token source that can "
                                "renew (api_key/api_secret or token_url)", self.expires_in() or 0)
                return self._url, self._token
            if fresh or not self._fresh_enough(PROBE_MARGIN if probe else REFRESH_MARGIN):
                if self.kind == "local":
                    self._token = await self._mint()
                else:
                    self._token = await self._fetch()
                register_secret(self._token)
            assert self._token is not None
            return self._url, self._token

    async def _read_secret(self, path: Path, what: str) -> str:
        # Never blocks (regular files only, opened non-blocking), so shutdown never waits on it.
        value = read_secret(path, what)
        register_secret(value)
        return value

    async def _mint(self) -> str:
        from livekit import api  # heavy import, only for the local-mint source

        lk = self.cfg.livekit
        secret = lk.api_secret
        if secret is None and lk.api_secret_file is not None:
            secret = await self._read_secret(lk.api_secret_file, "livekit.api_secret_file")
        if not lk.api_key or not secret:
            raise ConfigError(["livekit: api_key and api_secret are needed to mint tokens"])
        # can_update_own_metadata: the kiosk publishes its health as participant attributes.
        grants = api.VideoGrants(room_join=True, room=lk.room, can_publish=True,
                                 can_subscribe=True, can_update_own_metadata=True)
        token = (api.AccessToken(lk.api_key, secret).with_identity(lk.identity)
                 .with_name(lk.name).with_grants(grants)
                 .with_ttl(datetime.timedelta(seconds=lk.token_ttl)).to_jwt())
        log.info("minted a token for %s in %s (ttl %.0f s)", lk.identity, lk.room, lk.token_ttl)
        return token

    async def _fetch(self) -> str:
        lk = self.cfg.livekit
        assert lk.token_url is not None and lk.device_key_file is not None
        key = await self._read_secret(lk.device_key_file, "livekit.device_key_file")
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=ENDPOINT_TIMEOUT))
        body = {"identity": lk.identity, "room": lk.room}
        try:
            async with self._http.post(lk.token_url, json=body,
                                       headers={"Authorization": f"Bearer {key}"}) as resp:
                text = await resp.text()
                if resp.status in (401, 403):
                    raise AuthRejected(f"token endpoint refused the device key ({resp.status})")
                if resp.status != 200:
                    raise TokenError(f"token endpoint answered {resp.status}: {text[:200]}")
                data: Any = json.loads(text)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TokenError(f"token endpoint unreachable: {exc!r}") from None
        except ValueError:
            raise TokenError("token endpoint answered something that is not JSON") from None
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenError("token endpoint answer has no `token`")
        register_secret(token)
        url = data.get("url")
        if isinstance(url, str) and url:
            self._url = url
        log.info("fetched a token for %s in %s from the endpoint", lk.identity, lk.room)
        return token

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()
