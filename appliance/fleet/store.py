"""The fleet registry in one database: SQLAlchemy (async), schema by Alembic migrations.

SQLite (through aiosqlite) needs no set-up; PostgreSQL (through asyncpg) lets several service
instances share one registry. Everything the service knows lives here (devices, presence,
operators, sessions, the audit log), so any instance can answer any request.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Double,
    Integer,
    String,
    Text,
    delete,
    event,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from appliance.fleet import keys

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x6B696F736B  # pg_advisory_xact_lock id: one instance migrates at a time


class Base(DeclarativeBase):
    pass


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity: Mapped[str] = mapped_column(String(128), unique=True)
    room: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(256), default="")
    profile: Mapped[str] = mapped_column(String(64), default="")
    enrolled_at: Mapped[float] = mapped_column(Double)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(256))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    last_token_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    tokens_issued: Mapped[int] = mapped_column(Integer, default=0)
    rate_window_start: Mapped[float] = mapped_column(Double, default=0.0)
    rate_window_count: Mapped[int] = mapped_column(Integer, default=0)
    # presence and health (webhooks + RoomService)
    presence: Mapped[str] = mapped_column(String(32), default="unknown")
    participant_sid: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(64), default="")
    fault: Mapped[str] = mapped_column(String(64), default="")
    mic: Mapped[str] = mapped_column(String(32), default="")
    camera: Mapped[str] = mapped_column(String(32), default="")
    quality: Mapped[str] = mapped_column(String(32), default="")
    version: Mapped[str] = mapped_column(String(64), default="")
    last_seen_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    changed_at: Mapped[float] = mapped_column(Double, default=0.0, index=True)


class Operator(Base):
    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[float] = mapped_column(Double)


class LoginSession(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie
    operator: Mapped[str] = mapped_column(String(128))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double, index=True)


class LoginLimit(Base):
    """Failed console logins counted in one window, for one scope (`logins.Scope`)."""

    __tablename__ = "login_limits"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of scope + who
    scope: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128), default="", index=True)
    remote: Mapped[str] = mapped_column(String(64), default="", index=True)
    window_start: Mapped[float] = mapped_column(Double, default=0.0)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # with attempts being checked
    blocked_until: Mapped[float] = mapped_column(Double, default=0.0)
    succeeded_at: Mapped[float] = mapped_column(Double, default=0.0)
    expires_at: Mapped[float] = mapped_column(Double, default=0.0, index=True)  # prunable after


class Audit(Base):
    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Double, index=True)
    action: Mapped[str] = mapped_column(String(32))  # issue, refuse, enrol, revoke, console...
    status: Mapped[int] = mapped_column(Integer, default=0)
    identity: Mapped[str] = mapped_column(String(128), default="", index=True)
    key_id: Mapped[str] = mapped_column(String(32), default="")
    actor: Mapped[str] = mapped_column(String(128), default="")
    remote: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


HEALTH_FIELDS = ("presence", "participant_sid", "state", "fault", "mic", "camera", "quality",
                 "version", "last_seen_at")
PUBLIC_FIELDS = ("identity", "room", "display_name", "profile", "enrolled_at", "revoked",
                 "revoked_at", "last_token_at", "tokens_issued", *HEALTH_FIELDS, "changed_at")


def device_dict(d: Device) -> dict[str, Any]:
    return {f: getattr(d, f) for f in PUBLIC_FIELDS}


def async_url(url: str) -> str:
    """A plain database URL with its asyncio driver: sqlite -> aiosqlite, postgresql -> asyncpg."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url.removeprefix("sqlite:")
    for plain in ("postgresql:", "postgres:"):
        if url.startswith(plain):
            return "postgresql+asyncpg:" + url.removeprefix(plain)
    return url


def _upgrade(conn: Connection) -> None:
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per plugin otherwise
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str


class DuplicateDevice(ValueError):
    pass


class Store:
    """The registry's operations; each is one short transaction."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = async_url(url)
        options: dict[str, Any] = {"echo": echo}
        if self.url.startswith("sqlite"):
            options["connect_args"] = {"timeout": 30}
        else:
            options.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        # Pulsed after this instance commits a device change (other instances' writes are seen
        # by polling `changed_at`, as the console does).
        self._changed = asyncio.Event()
        if self.url.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def migrate(self) -> None:
        """Bring the schema to the newest migration (safe from several instances at once)."""
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            await conn.run_sync(_upgrade)

    async def schema_version(self) -> str | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
            return None if row is None else str(row[0])

    async def aclose(self) -> None:
        await self.engine.dispose()

    # ----- devices -------------------------------------------------------------------------

    async def enrol(self, identity: str, room: str, *, display_name: str = "",
                    profile: str = "", actor: str = "cli") -> str:
        """Register a device; returns its key (the only time the key exists outside it)."""
        key_id, key = keys.new_device_key()
        secret = key.split(".", 2)[2]
        await self.add_enrolled(identity, room, key_id, keys.hash_secret(secret),
                                display_name=display_name, profile=profile, actor=actor)
        return key

    async def add_enrolled(self, identity: str, room: str, key_id: str, key_hash: str, *,
                           display_name: str = "", profile: str = "", actor: str = "cli",
                           rekey: bool = False) -> None:
        """Register (or, with `rekey`, re-key and un-revoke) a device from its key id + hash."""
        now = time.time()
        async with self.sessions.begin() as s:
            existing = (await s.execute(select(Device).where(Device.identity == identity))
                        ).scalar_one_or_none()
            if existing is not None:
                if not rekey:
                    raise DuplicateDevice(f"{identity} is already enrolled")
                existing.room, existing.key_id, existing.key_hash = room, key_id, key_hash
                existing.display_name = display_name or existing.display_name
                existing.profile = profile or existing.profile
                existing.revoked, existing.revoked_at, existing.changed_at = False, None, now
            else:
                s.add(Device(identity=identity, room=room, display_name=display_name or identity,
                             profile=profile, enrolled_at=now, key_id=key_id,
                             key_hash=key_hash, changed_at=now))
            s.add(Audit(at=now, action="enrol", identity=identity, key_id=key_id, actor=actor,
                        detail=f"room {room}" + (" (re-keyed)" if existing else "")))
            try:
                await s.flush()
            except IntegrityError:
                raise DuplicateDevice(f"{identity}: identity or key id already enrolled") from None

    async def device(self, identity: str) -> Device | None:
        async with self.sessions() as s:
            return (await s.execute(select(Device).where(Device.identity == identity))
                    ).scalar_one_or_none()

    async def by_key_id(self, key_id: str) -> Device | None:
        async with self.sessions() as s:
            return (await s.execute(select(Device).where(Device.key_id == key_id))
                    ).scalar_one_or_none()

    async def devices(self, since: float | None = None) -> Sequence[Device]:
        async with self.sessions() as s:
            q = select(Device).order_by(Device.room, Device.identity)
            if since is not None:
                q = q.where(Device.changed_at > since)
            return (await s.execute(q)).scalars().all()

    async def revoke(self, identity: str, *, actor: str = "cli") -> Device | None:
        now = time.time()
        async with self.sessions.begin() as s:
            d = (await s.execute(select(Device).where(Device.identity == identity))
                 ).scalar_one_or_none()
            if d is None:
                return None
            d.revoked, d.revoked_at, d.changed_at = True, now, now
            s.add(Audit(at=now, action="revoke", identity=identity, key_id=d.key_id,
                        actor=actor))
        self._pulse()
        return d

    async def issue(self, device_id: int, *, now: float, window: float,
                    limit: int) -> bool:
        """Count a token issue in the device's rate window (atomic across instances).

        Returns False, counting nothing, when the window already holds `limit` issues.
        """
        async with self.sessions.begin() as s:
            fresh = await s.execute(
                update(Device).where(Device.id == device_id,
                                     Device.rate_window_start <= now - window)
                .values(rate_window_start=now, rate_window_count=1, last_token_at=now,
                        tokens_issued=Device.tokens_issued + 1))
            if _rowcount(fresh) == 1:
                return True
            counted = await s.execute(
                update(Device).where(Device.id == device_id,
                                     Device.rate_window_count < limit)
                .values(rate_window_count=Device.rate_window_count + 1, last_token_at=now,
                        tokens_issued=Device.tokens_issued + 1))
            return _rowcount(counted) == 1

    async def set_health(self, identity: str, **fields: Any) -> bool:
        """Update presence/health fields; changed_at moves only when something changed."""
        bad = set(fields) - set(HEALTH_FIELDS)
        if bad:
            raise ValueError(f"not health fields: {sorted(bad)}")
        async with self.sessions.begin() as s:
            d = (await s.execute(select(Device).where(Device.identity == identity))
                 ).scalar_one_or_none()
            if d is None:
                return False
            changed = any(getattr(d, k) != v for k, v in fields.items() if k != "last_seen_at")
            for k, v in fields.items():
                setattr(d, k, v)
            if changed:
                d.changed_at = time.time()
        if changed:
            self._pulse()
        return changed

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_changed(self) -> None:
        """Until this instance next commits a device change (wrap in asyncio.timeout)."""
        await self._changed.wait()

    # ----- audit ---------------------------------------------------------------------------

    async def audit(self, action: str, *, status: int = 0, identity: str = "",
                    key_id: str = "", actor: str = "", remote: str = "",
                    detail: str = "") -> None:
        async with self.sessions.begin() as s:
            s.add(Audit(at=time.time(), action=action, status=status, identity=identity,
                        key_id=key_id, actor=actor, remote=remote, detail=detail[:500]))

    async def audit_rows(self, limit: int = 100, identity: str | None = None
                         ) -> Sequence[Audit]:
        async with self.sessions() as s:
            q = select(Audit).order_by(Audit.id.desc()).limit(limit)
            if identity is not None:
                q = q.where(Audit.identity == identity)
            return (await s.execute(q)).scalars().all()

    # ----- operators and login sessions ----------------------------------------------------

    async def set_operator(self, name: str, password: str) -> None:
        hashed = keys.hash_secret(password)
        async with self.sessions.begin() as s:
            op = (await s.execute(select(Operator).where(Operator.name == name))
                  ).scalar_one_or_none()
            if op is None:
                s.add(Operator(name=name, password_hash=hashed, created_at=time.time()))
            else:
                op.password_hash = hashed

    async def operator_hash(self, name: str) -> str | None:
        async with self.sessions() as s:
            op = (await s.execute(select(Operator).where(Operator.name == name))
                  ).scalar_one_or_none()
            return None if op is None else op.password_hash

    async def new_session(self, operator: str, ttl: float,
                          now: float | None = None) -> tuple[str, str]:
        """(cookie value, CSRF token) for a fresh login session."""
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.time() if now is None else now
        async with self.sessions.begin() as s:
            s.add(LoginSession(id=_sha(cookie), operator=operator, csrf=csrf, created_at=now,
                               expires_at=now + ttl))
        return cookie, csrf

    async def session(self, cookie: str, now: float | None = None) -> LoginSession | None:
        """The live session of this cookie; an expired one is deleted on the way."""
        now = time.time() if now is None else now
        async with self.sessions() as s:
            row = await s.get(LoginSession, _sha(cookie))
        if row is not None and row.expires_at <= now:
            await self._delete_some(LoginSession.id, LoginSession.id == row.id, 1)
            return None
        return row

    async def end_session(self, cookie: str) -> None:
        async with self.sessions.begin() as s:
            row = await s.get(LoginSession, _sha(cookie))
            if row is not None:
                await s.delete(row)

    # ----- housekeeping: bounded deletes, one short transaction per batch --------------------

    async def prune_sessions(self, now: float, batch: int) -> int:
        """Delete up to `batch` expired login sessions; returns how many went."""
        return await self._delete_some(LoginSession.id, LoginSession.expires_at <= now, batch)

    async def prune_audit(self, before: float, batch: int) -> int:
        """Delete up to `batch` audit rows older than `before`, oldest first."""
        return await self._delete_some(Audit.id, Audit.at < before, batch, order=Audit.id)

    async def prune_login_limits(self, now: float, batch: int) -> int:
        """Delete up to `batch` login-limit rows that no longer hold a window, block or trust."""
        return await self._delete_some(LoginLimit.key, LoginLimit.expires_at <= now, batch)

    async def _delete_some(self, key: Any, condition: Any, batch: int, order: Any = None) -> int:
        # DELETE ... WHERE key IN (SELECT key ... LIMIT n): SQLite and PostgreSQL both take it,
        # and it keeps each transaction (and its locks) small however much is due.
        chosen = select(key).where(condition).limit(batch)
        if order is not None:
            chosen = chosen.order_by(order)
        async with self.sessions.begin() as s:
            result = await s.execute(delete(key.class_).where(key.in_(chosen))
                                     .execution_options(synchronize_session=False))
            return _rowcount(result)

    async def rooms(self) -> list[str]:
        async with self.sessions() as s:
            rows = await s.execute(select(Device.room).where(Device.revoked.is_(False))
                                   .distinct())
            return sorted(r[0] for r in rows)


def _rowcount(result: Any) -> int:
    count: int = result.rowcount
    return count


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def import_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, str]]:
    """Validate enrolment rows (identity, room, key_id, key_hash, display_name?, profile?)."""
    out = []
    for n, row in enumerate(rows, 1):
        missing = [k for k in ("identity", "room", "key_id", "key_hash")
                   if not isinstance(row.get(k), str) or not row.get(k)]
        if missing:
            raise ValueError(f"row {n}: missing {', '.join(missing)}")
        if not str(row["key_hash"]).startswith("$argon2"):
            raise ValueError(f"row {n}: key_hash is not an argon2 hash (never put keys here)")
        out.append({k: str(row.get(k) or "") for k in
                    ("identity", "room", "key_id", "key_hash", "display_name", "profile")})
    return out
