"""The accounts schema enforces its own rules, and its migration comes off cleanly."""

from __future__ import annotations

import asyncpg
import pytest

from mall.migrate import drop_database, migrate
from mall.settings import Settings
from tests.stack import unique_namespace

ACCOUNT_TABLES = {"users", "refresh_tokens", "addresses"}


async def insert_user(conn: asyncpg.Connection, user_id: str) -> None:
    await conn.execute("INSERT INTO users (user_id, email, password_hash) VALUES ($1, $2, 'x')",
                       user_id, f"{user_id.lower()}@example.com")


ADDRESS = ("INSERT INTO addresses (user_id, recipient, phone, province, city, district, line, "
           "is_default) VALUES ($1, 'r', '+8613912345678', 'p', 'c', 'd', 'l', $2)")


async def test_one_default_address_per_user(pg: asyncpg.Pool) -> None:
    user_id = unique_namespace("U")
    async with pg.acquire() as conn:
        await insert_user(conn, user_id)
        await conn.execute(ADDRESS, user_id, True)
        await conn.execute(ADDRESS, user_id, False)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(ADDRESS, user_id, True)


@pytest.mark.parametrize("column,value", [
    ("user_id", "has space"), ("role", "root"), ("email", "Upper@Example.com"),
    ("phone", "13912345678"), ("avatar_url", "http://x"),
])
async def test_user_checks(pg: asyncpg.Pool, column: str, value: str) -> None:
    row = {"user_id": unique_namespace("U"), "phone": None, "email": "ok@example.com",
           "role": "customer", "avatar_url": None}
    row[column] = value
    with pytest.raises(asyncpg.CheckViolationError):
        await pg.execute(
            "INSERT INTO users (user_id, phone, email, role, avatar_url, password_hash) "
            "VALUES ($1, $2, $3, $4, $5, 'x')",
            row["user_id"], row["phone"], row["email"], row["role"], row["avatar_url"])


async def test_accounts_migration_down_and_up() -> None:
    base = Settings.from_env().database_url.rsplit("/", 1)[0]
    url = f"{base}/{unique_namespace('mall_acct_')}"
    try:
        # Only as far as this migration, so later ones neither help nor hinder this test.
        await migrate(url, target=1)
        without = await relations(url)
        assert await migrate(url, target=2) == ["up 0002_accounts"]
        assert ACCOUNT_TABLES <= await relations(url)
        conn = await asyncpg.connect(url)
        try:
            await insert_user(conn, "u1")
            await conn.execute(ADDRESS, "u1", True)
        finally:
            await conn.close()
        assert await migrate(url, target=1) == ["down 0002_accounts"]
        assert await relations(url) == without  # tables, indexes and sequences all gone
        assert await migrate(url, target=2) == ["up 0002_accounts"]
    finally:
        await drop_database(url)


async def relations(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace")
        return {r["relname"] for r in rows}
    finally:
        await conn.close()
