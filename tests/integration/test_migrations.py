"""Migrations up, down to nothing, and up again on a real database of their own."""

from __future__ import annotations

import asyncio

import asyncpg

from mall.migrate import current_version, drop_database, load_migrations, migrate
from mall.settings import Settings
from tests.stack import unique_namespace

CORE_TABLES = {"products", "skus", "flash_sales", "orders", "order_items"}


async def tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def test_up_down_up() -> None:
    base = Settings.from_env().database_url.rsplit("/", 1)[0]
    url = f"{base}/{unique_namespace('mall_mig_')}"
    migrations = load_migrations()
    newest, count = migrations[-1].version, len(migrations)
    try:
        # Two runs at once: the advisory lock makes each step happen exactly once.
        first, second = await asyncio.gather(migrate(url), migrate(url))
        assert len(first) + len(second) == count
        assert await current_version(url) == newest
        assert CORE_TABLES <= await tables(url)
        assert await migrate(url) == []
        down = await migrate(url, target=0)
        assert len(down) == count
        assert await tables(url) == {"schema_migrations"}
        assert await current_version(url) == 0
        await migrate(url)
        assert CORE_TABLES <= await tables(url)
    finally:
        await drop_database(url)
