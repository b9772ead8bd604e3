"""Housekeeping on SQLite and PostgreSQL: expired sessions and old audit rows are deleted in
bounded batches; `appliance fleet audit` and `unlock` on the pruned registry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fleet_support import API_KEY, API_SECRET, Wall
from sqlalchemy import func, select

from appliance.cli import build_parser
from appliance.fleet.service import FleetService, FleetSettings
from appliance.fleet.store import Audit, LoginSession, Store

DAY = 86400.0


def service(store: Store, wall: Wall, **settings: object) -> FleetService:
    """Not started: each test runs the passes itself."""
    return FleetService(store, FleetSettings("ws://127.0.0.1:9", API_KEY, API_SECRET,
                                             **settings), wall=wall)  # type: ignore[arg-type]


async def count(store: Store, model: type[LoginSession] | type[Audit]) -> int:
    async with store.sessions() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def test_expired_sessions_go_in_bounded_passes(store: Store) -> None:
    wall = Wall()
    fleet = service(store, wall, housekeeping_batch=10, housekeeping_batches=2)
    for _ in range(25):
        await store.new_session("alice", ttl=60, now=wall.now - 120)
    live, _ = await store.new_session("alice", ttl=3600, now=wall.now)
    assert await count(store, LoginSession) == 26
    assert (await fleet.housekeep_once())["sessions"] == 20  # 2 batches of 10 per pass
    assert (await fleet.housekeep_once())["sessions"] == 5
    assert (await fleet.housekeep_once())["sessions"] == 0
    assert await store.session(live, now=wall.now) is not None


async def test_an_expired_session_is_deleted_when_it_is_looked_up(store: Store) -> None:
    wall = Wall()
    cookie, _ = await store.new_session("alice", ttl=60, now=wall.now)
    assert await store.session(cookie, now=wall.now + 59) is not None
    assert await store.session(cookie, now=wall.now + 60) is None
    assert await count(store, LoginSession) == 0


async def test_audit_rows_past_retention_go_oldest_first(store: Store) -> None:
    wall = Wall()
    async with store.sessions.begin() as s:
        for age_days in (200, 120, 91, 89, 1):
            for _ in range(3):
                s.add(Audit(at=wall.now - age_days * DAY, action="issue",
                            detail=f"{age_days} days"))
    forever = service(store, wall, audit_days=0)
    assert "audit" not in await forever.housekeep_once()
    assert await count(store, Audit) == 15
    fleet = service(store, wall, audit_days=90, housekeeping_batch=4, housekeeping_batches=1)
    assert (await fleet.housekeep_once())["audit"] == 4
    left = [a.detail for a in await store.audit_rows(limit=100)]
    assert left.count("200 days") == 0 and left.count("120 days") == 2  # the oldest went first
    while (await fleet.housekeep_once())["audit"]:
        pass
    assert sorted({a.detail for a in await store.audit_rows(limit=100)}) == [
        "1 days", "89 days"]


def run_cli(*argv: str) -> int:
    # Through the parser, not cli.main: main() configures logging onto pytest's stderr.
    args = build_parser().parse_args(["fleet", *argv])
    return int(args.func(args))


def test_audit_and_unlock_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'fleet.db'}"

    async def prepare() -> None:
        from appliance.fleet.logins import Attempt, LoginPolicy, LoginThrottle, Refused

        store = Store(db)
        await store.migrate()
        throttle, wall = LoginThrottle(store, LoginPolicy()), Wall()
        for _ in range(5):
            attempt = await throttle.begin("alice", "10.0.0.1", wall.now)
            assert isinstance(attempt, Attempt)
            await throttle.failed(attempt, wall.now)
        assert isinstance(await throttle.begin("alice", "10.0.0.1", wall.now), Refused)
        await store.audit("login", status=401, actor="alice", remote="10.0.0.1")
        await store.aclose()

    asyncio.run(prepare())
    assert run_cli("--db", db, "unlock", "alice") == 0
    assert "unlocked alice (2 login limit row(s) cleared)" in capsys.readouterr().out
    assert run_cli("--db", db, "audit", "-n", "5") == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "login" in out[0] and "unlock" in out[1]
    assert "alice: 2 row(s)" in out[1]
    assert run_cli("--db", db, "unlock", "") == 64
