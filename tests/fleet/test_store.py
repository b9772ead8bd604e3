"""The registry on SQLite and on PostgreSQL: migrations, enrolment, keys, rate windows."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from appliance.fleet import keys
from appliance.fleet.store import DuplicateDevice, Store, import_rows


async def test_migrations_are_versioned_and_idempotent(store: Store) -> None:
    assert await store.schema_version() == "0002"
    await store.migrate()  # a second instance starting up: nothing to do
    assert await store.schema_version() == "0002"


async def test_a_0001_registry_upgrades_in_place(store: Store) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy.engine import Connection

    from appliance.fleet.store import MIGRATIONS

    await store.enrol("kiosk-1", "lobby")

    def downgrade(conn: Connection) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")

    async with store.engine.begin() as conn:
        await conn.run_sync(downgrade)
    assert await store.schema_version() == "0001"
    await store.migrate()
    assert await store.schema_version() == "0002"
    assert (await store.device("kiosk-1")) is not None
    async with store.engine.connect() as conn:
        assert (await conn.execute(text("SELECT COUNT(*) FROM login_limits"))).scalar() == 0


async def test_enrolment_stores_a_hash_never_the_key(store: Store) -> None:
    key = await store.enrol("kiosk-7", "lobby", display_name="Front desk", profile="jam-hat")
    key_id, secret = keys.split_key(key) or ("", "")
    d = await store.by_key_id(key_id)
    assert d is not None and d.identity == "kiosk-7" and d.room == "lobby"
    assert d.key_hash.startswith("$argon2id$") and keys.verify_secret(d.key_hash, secret)
    assert not keys.verify_secret(d.key_hash, secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    async with store.engine.connect() as conn:
        for table in ("devices", "audit"):
            dump = repr((await conn.execute(text(f"SELECT * FROM {table}"))).all())
            assert secret not in dump and key not in dump
    with pytest.raises(DuplicateDevice):
        await store.enrol("kiosk-7", "lobby")


async def test_revocation_and_audit(store: Store) -> None:
    await store.enrol("kiosk-1", "lobby")
    d = await store.revoke("kiosk-1", actor="alice")
    assert d is not None and d.revoked
    assert (await store.device("kiosk-1")).revoked  # type: ignore[union-attr]
    assert await store.revoke("nobody") is None
    actions = [(a.action, a.actor) for a in await store.audit_rows(identity="kiosk-1")]
    assert actions == [("revoke", "alice"), ("enrol", "cli")]


async def test_rate_window_counts_atomically(store: Store) -> None:
    await store.enrol("kiosk-1", "lobby")
    d = await store.device("kiosk-1")
    assert d is not None
    now = time.time()
    got = [await store.issue(d.id, now=now, window=60, limit=3) for _ in range(5)]
    assert got == [True, True, True, False, False]
    assert await store.issue(d.id, now=now + 61, window=60, limit=3)  # a new window
    d = await store.device("kiosk-1")
    assert d is not None and d.tokens_issued == 4 and d.last_token_at == now + 61


async def test_health_changes_move_the_change_stamp(store: Store) -> None:
    await store.enrol("kiosk-1", "lobby")
    before = (await store.device("kiosk-1")).changed_at  # type: ignore[union-attr]
    assert await store.set_health("kiosk-1", presence="in-room", fault="none")
    after = (await store.device("kiosk-1")).changed_at  # type: ignore[union-attr]
    assert after >= before
    assert not await store.set_health("kiosk-1", presence="in-room", last_seen_at=time.time())
    assert [d.identity for d in await store.devices(since=after)] == []
    with pytest.raises(ValueError):
        await store.set_health("kiosk-1", revoked=False)


async def test_operator_sessions(store: Store) -> None:
    await store.set_operator("alice", "correct horse")
    hashed = await store.operator_hash("alice")
    assert hashed is not None and keys.verify_secret(hashed, "correct horse")
    cookie, csrf = await store.new_session("alice", ttl=60)
    s = await store.session(cookie)
    assert s is not None and s.operator == "alice" and s.csrf == csrf
    assert await store.session(cookie + "x") is None
    await store.end_session(cookie)
    assert await store.session(cookie) is None
    expired, _ = await store.new_session("alice", ttl=-1)
    assert await store.session(expired) is None


async def test_import_rows_take_hashes_only(store: Store) -> None:
    key_id, key = keys.new_device_key()
    row = {"identity": "k9", "room": "hall", "key_id": key_id,
           "key_hash": keys.hash_secret(key.split(".", 2)[2])}
    with pytest.raises(ValueError, match="not an argon2 hash"):
        import_rows([{**row, "key_hash": key}])
    with pytest.raises(ValueError, match="missing room"):
        import_rows([{**row, "room": ""}])
    (r,) = import_rows([row])
    await store.add_enrolled(r["identity"], r["room"], r["key_id"], r["key_hash"])
    d = await store.by_key_id(key_id)
    assert d is not None and d.identity == "k9"


def test_key_format() -> None:
    key_id, key = keys.new_device_key()
    assert keys.split_key(key) == (key_id, key.split(".", 2)[2])
    for bad in ("", "fk1.x.y", key + "x", "Bearer " + key, key.replace("fk1", "fk2")):
        assert keys.split_key(bad) is None
    cache = keys.VerifiedCache(size=2)
    cache.remember(key_id, "h", "secret")
    assert cache.known(key_id, "h", "secret") and not cache.known(key_id, "h", "other")
    assert not cache.known(key_id, "h2", "secret")  # a re-keyed device: a new hash
