"""0014_campaigns up, down and up again leaves exactly the schema it found, and its constraint
refuses to give back to the SKU a unit the sale has sold."""

from __future__ import annotations

import asyncpg
import pytest

from mall.migrate import drop_database, load_migrations, migrate
from mall.settings import Settings
from tests.integration.test_lifecycle_migration import schema
from tests.stack import unique_namespace

VERSION = 14


async def test_campaign_migration_reverts_fully() -> None:
    base = Settings.from_env().database_url.rsplit("/", 1)[0]
    url = f"{base}/{unique_namespace('mall_cm_')}"
    previous = max(m.version for m in load_migrations() if m.version < VERSION)
    try:
        await migrate(url, target=previous)
        before = await schema(url)
        assert await migrate(url, target=VERSION) == ["up 0014_campaigns"]
        during = await schema(url)
        assert any("flash_sales.returned_to_sku" in item for item in during - before)
        assert await migrate(url, target=previous) == ["down 0014_campaigns"]
        assert await schema(url) == before
        await migrate(url, target=VERSION)
        assert await schema(url) == during
        conn = await asyncpg.connect(url)
        try:
            product = await conn.fetchval("INSERT INTO products (name) VALUES ('p') RETURNING id")
            sku = await conn.fetchval("INSERT INTO skus (product_id, price, stock)"
                                      " VALUES ($1, 1, 0) RETURNING id", product)
            sale = await conn.fetchval(
                "INSERT INTO flash_sales (sku_id, price, stock, sold, per_user_limit, starts_at,"
                " ends_at, created_by) VALUES ($1, 1, 5, 3, 1, now(), now() + interval '1h',"
                " 't') RETURNING id", sku)
            await conn.execute("UPDATE flash_sales SET returned_to_sku = 2 WHERE id = $1", sale)
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("UPDATE flash_sales SET returned_to_sku = 3 WHERE id = $1",
                                   sale)
            with pytest.raises(asyncpg.CheckViolationError):  # a late order would oversell
                await conn.execute("UPDATE flash_sales SET sold = 4 WHERE id = $1", sale)
        finally:
            await conn.close()
    finally:
        await drop_database(url)
