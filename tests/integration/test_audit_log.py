"""The audit_log table on real PostgreSQL: append-only, secrets redacted, the migration
reversible."""

from __future__ import annotations

import asyncpg
import orjson
import pytest

from audit.log import STAFF_ACTION, AuditEntry, append, mask_login
from mall.migrate import drop_database, migrate
from mall.settings import Settings
from tests.stack import unique_namespace

CARD = "4111 1111 1111 1111"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def entry(**changes: object) -> AuditEntry:
    fields: dict[str, object] = dict(
        kind=STAFF_ACTION, method="POST", path="/api/v1/admin/points", status=200,
        outcome="success", actor="ops-1", actor_role="admin", ip="10.0.0.7",
        target={"user_id": "u-1"}, details={"points": 50, "reason": "goodwill"})
    fields.update(changes)
    return AuditEntry(**fields)  # type: ignore[arg-type]


async def test_append_writes_an_entry_and_returns_its_id(pg: asyncpg.Pool) -> None:
    first = await append(pg, entry())
    async with pg.acquire() as conn, conn.transaction():
        second = await append(conn, entry(actor="ops-2"))
    assert second > first
    row = await pg.fetchrow("SELECT * FROM audit_log WHERE id = $1", first)
    assert (row["kind"], row["actor"], row["actor_role"], str(row["ip"])) == (
        STAFF_ACTION, "ops-1", "admin", "10.0.0.7")
    assert orjson.loads(row["target"]) == {"user_id": "u-1"}
    assert orjson.loads(row["details"]) == {"points": 50, "reason": "goodwill"}
    assert row["at"] is not None and row["route"] is None


async def test_an_entry_in_a_rolled_back_transaction_is_not_kept(pg: asyncpg.Pool) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with pg.acquire() as conn, conn.transaction():
            entry_id = await append(conn, entry(actor="ops-rolled-back"))
            raise Boom
    assert await pg.fetchval("SELECT count(*) FROM audit_log WHERE id = $1", entry_id) == 0


async def test_the_log_refuses_update_delete_and_truncate(pg: asyncpg.Pool) -> None:
    entry_id = await append(pg, entry())
    statements = [
        ("UPDATE audit_log SET status = 500 WHERE id = $1", [entry_id]),
        ("DELETE FROM audit_log WHERE id = $1", [entry_id]),
        ("DELETE FROM audit_log WHERE id = -1", []),  # refused even when it matches nothing
        ("UPDATE audit_log SET outcome = 'x' WHERE false", []),
        ("TRUNCATE audit_log", []),
    ]
    for sql, args in statements:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await pg.execute(sql.replace("$1", str(args[0])) if args else sql)
    row = await pg.fetchrow("SELECT status, outcome FROM audit_log WHERE id = $1", entry_id)
    assert (row["status"], row["outcome"]) == (200, "success")


async def test_secrets_are_redacted_before_they_are_stored(pg: asyncpg.Pool) -> None:
    details = {
        "password": "hunter2-audit", "newPassword": "hunter3-audit",
        "body": {"refresh_token": "rt-audit-secret", "code": "493817", "card_number": CARD,
                 "note": f"paid with {CARD}", "api_key": "k-audit", "carrier": "SF Express",
                 "items": [{"otp": "111222", "qty": 2}]},
        "header": JWT, "signature_valid": True,
    }
    entry_id = await append(pg, entry(details=details, path="/x\x00y\ud800"))
    row = await pg.fetchrow("SELECT details, path, audit_log::text AS everything FROM audit_log"
                            " WHERE id = $1", entry_id)
    for secret in ("hunter2-audit", "hunter3-audit", "rt-audit-secret", "493817",
                   "4111", "k-audit", "111222", "eyJ"):
        assert secret not in row["everything"], secret
    stored = orjson.loads(row["details"])
    assert stored["body"]["carrier"] == "SF Express"
    assert stored["body"]["items"] == [{"otp": "[redacted]", "qty": 2}]
    assert stored["signature_valid"] is True
    assert "\x00" not in row["path"] and row["path"].startswith("/x")


async def test_unknown_kinds_are_refused(pg: asyncpg.Pool) -> None:
    with pytest.raises(ValueError):
        await append(pg, entry(kind="gossip"))
    with pytest.raises(asyncpg.CheckViolationError):
        await pg.execute("INSERT INTO audit_log (kind, method, path, status, outcome)"
                         " VALUES ('gossip', 'GET', '/', 200, 'x')")


def test_login_identifiers_are_masked() -> None:
    assert mask_login("+86 138 1234 5678") == "+86138****5678"
    assert mask_login("13812345678") == "+86138****5678"
    assert mask_login("Alice.Smith@Example.COM") == "A***@example.com"
    assert mask_login("12") == "+86****"
    assert mask_login("not a phone") == "n***ne"
    assert "secret-login" not in mask_login("secret-login-name")


async def test_the_migration_reverts_fully() -> None:
    base = Settings.from_env().database_url.rsplit("/", 1)[0]
    url = f"{base}/{unique_namespace('mall_audit_')}"
    try:
        await migrate(url, target=10)
        conn = await asyncpg.connect(url)
        try:
            before = await conn.fetchval(
                "SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace")
            assert await migrate(url, target=11) == ["up 0011_audit"]
            assert await conn.fetchval("SELECT to_regclass('audit_log') IS NOT NULL")
            assert await migrate(url, target=10) == ["down 0011_audit"]
            assert await conn.fetchval("SELECT to_regclass('audit_log')") is None
            assert await conn.fetchval(
                "SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
            ) == before
            assert await migrate(url, target=11) == ["up 0011_audit"]
        finally:
            await conn.close()
    finally:
        await drop_database(url)
