"""Console login throttling: failure windows per (name, address), per name and per address."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from appliance.fleet.store import LoginLimit, Store


class Scope(Enum):
    PAIR = "name+address"  # one operator name from one address: the tight limit
    NAME = "name"  # one name from anywhere: looser, or anyone could lock an operator out
    ADDRESS = "address"  # any name from one address: looser still (password spraying)


@dataclass(frozen=True)
class LoginPolicy:
    """Failures allowed per scope in `window` seconds; reaching one blocks it for `window`.

    An address that logged in as a name within `trust` seconds is held to the pair limit only,
    so strangers' failures (on the name, or behind the same address) do not lock that operator
    out where they usually work.
    """

    pair_failures: int = 5
    name_failures: int = 20
    address_failures: int = 50
    window: float = 900.0
    trust: float = 30 * 86400.0

    def limit(self, scope: Scope) -> int:
        return {Scope.PAIR: self.pair_failures, Scope.NAME: self.name_failures,
                Scope.ADDRESS: self.address_failures}[scope]


@dataclass(frozen=True)
class Attempt:
    """A login attempt, counted as a failure in advance until its password is checked (so
    concurrent guesses cannot all slip under a limit); `keys` are the rows it counts in."""

    name: str
    remote: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class Refused:
    retry_after: float  # seconds
    scope: Scope


class LoginThrottle:
    """The counting, on the database (several instances count together); `now` is wall time."""

    def __init__(self, store: Store, policy: LoginPolicy) -> None:
        self.store, self.policy = store, policy

    async def begin(self, name: str, remote: str, now: float) -> Attempt | Refused:
        """Count an attempt before checking its password, or refuse it while blocked."""
        wanted = _rows(name, remote)
        pair_key = wanted[0]["key"]
        wanted.sort(key=lambda r: str(r["key"]))  # one lock order for every instance
        keys = [r["key"] for r in wanted]
        async with self.store.sessions.begin() as s:
            insert = postgresql.insert if self.store.dialect == "postgresql" else sqlite.insert
            await s.execute(insert(LoginLimit).values(wanted)
                            .on_conflict_do_nothing(index_elements=["key"]))
            rows = {r.key: r for r in (await s.execute(
                select(LoginLimit).where(LoginLimit.key.in_(keys)).order_by(LoginLimit.key)
                .with_for_update())).scalars()}
            pair = rows[pair_key]
            counted = [pair] if pair.succeeded_at > now - self.policy.trust else [
                rows[k] for k in keys]
            waits = []
            for row in counted:
                self._roll(row, now)
                scope = Scope(row.scope)
                if row.blocked_until > now:
                    waits.append((row.blocked_until - now, scope))
                elif row.failures >= self.policy.limit(scope):
                    waits.append((1.0, scope))  # the last allowed guesses are being checked
            if waits:
                wait, scope = max(waits, key=lambda w: w[0])
                return Refused(wait, scope)
            for row in counted:
                row.failures += 1
                self._expiry(row)
            return Attempt(name, remote, tuple(r.key for r in counted))

    async def failed(self, attempt: Attempt, now: float) -> list[Scope]:
        """The password was wrong: block every scope this failure filled (returned)."""
        blocked = []
        async with self.store.sessions.begin() as s:
            for row in await self._locked(s, attempt):
                scope = Scope(row.scope)
                if row.failures >= self.policy.limit(scope) and row.blocked_until <= now:
                    row.blocked_until = now + self.policy.window
                    self._expiry(row)
                    blocked.append(scope)
        return blocked

    async def succeeded(self, attempt: Attempt, now: float) -> None:
        """The password was right: the pair starts afresh (and is trusted); the others get
        their advance count back."""
        async with self.store.sessions.begin() as s:
            for row in await self._locked(s, attempt):
                if Scope(row.scope) is Scope.PAIR:
                    row.failures, row.blocked_until, row.succeeded_at = 0, 0.0, now
                    row.window_start = now
                else:
                    row.failures = max(0, row.failures - 1)
                self._expiry(row)

    async def unlock(self, who: str) -> int:
        """Forget the failures and blocks of an operator name or of an address; how many rows."""
        if not who:
            raise ValueError("unlock: give an operator name or an address")
        async with self.store.sessions.begin() as s:
            result = await s.execute(delete(LoginLimit).where(
                or_(LoginLimit.name == who, LoginLimit.remote == who)))
            count: int = result.rowcount  # type: ignore[attr-defined]
            return count

    async def _locked(self, s: Any, attempt: Attempt) -> list[LoginLimit]:
        return list((await s.execute(
            select(LoginLimit).where(LoginLimit.key.in_(sorted(attempt.keys)))
            .order_by(LoginLimit.key).with_for_update())).scalars())

    def _roll(self, row: LoginLimit, now: float) -> None:
        """A new window once the old one is over, or once a block has ended."""
        if row.blocked_until <= now and (row.blocked_until > 0
                                         or row.window_start <= now - self.policy.window):
            row.window_start, row.failures, row.blocked_until = now, 0, 0.0
            self._expiry(row)

    def _expiry(self, row: LoginLimit) -> None:
        trusted = row.succeeded_at + self.policy.trust if row.succeeded_at else 0.0
        row.expires_at = max(row.window_start + self.policy.window, row.blocked_until, trusted)


def _rows(name: str, remote: str) -> list[dict[str, Any]]:
    """The pair's row first, then the name's and the address's."""
    name, remote = name[:128], remote[:64]
    made = []
    for scope, who_name, who_remote in ((Scope.PAIR, name, remote), (Scope.NAME, name, ""),
                                        (Scope.ADDRESS, "", remote)):
        key = hashlib.sha256(f"{scope.value}\n{who_name}\n{who_remote}".encode()).hexdigest()
        made.append({"key": key, "scope": scope.value, "name": who_name, "remote": who_remote,
                     "window_start": 0.0, "failures": 0, "blocked_until": 0.0,
                     "succeeded_at": 0.0, "expires_at": 0.0})
    return made
