"""The catalog's storage rules on real PostgreSQL and Redis: cache generations, min price,
what checkout may sell, and a migration that reverts completely."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from redis.asyncio import Redis

from catalog_api import cache
from catalog_api.availability import SkuInfo, sellable_skus
from catalog_api.keys import CatalogKeys
from mall.migrate import drop_database, migrate
from mall.settings import Settings
from tests.stack import unique_namespace


async def test_a_slow_reader_cannot_reinstall_a_stale_detail(redis: Redis,
                                                             fresh_settings: Settings) -> None:
    keys = CatalogKeys(fresh_settings.namespace)
    old = cache.CachedDetail(b'{"price":1}', cache.etag_of(b'{"price":1}'), True)
    new = cache.CachedDetail(b'{"price":2}', cache.etag_of(b'{"price":2}'), True)

    before = await cache.lookup(redis, keys, 42)  # the reader misses and loads old rows...
    assert before.entry is None
    await cache.invalidate(redis, keys, [42], 300)  # ...a change commits and invalidates...
    await cache.store(redis, keys, 42, before.generation, old, 300)  # ...the reader stores
    assert (await cache.lookup(redis, keys, 42)).entry is None

    fresh = await cache.lookup(redis, keys, 42)
    await cache.store(redis, keys, 42, fresh.generation, new, 300)
    assert (await cache.lookup(redis, keys, 42)).entry == new
    await cache.invalidate(redis, keys, [42], 300)
    assert (await cache.lookup(redis, keys, 42)).entry is None
    assert await redis.ttl(keys.product_generation(42)) >= 86_000


async def product_with_skus(pg: asyncpg.Pool, prices: list[int], published: bool = True,
                            ) -> tuple[int, list[int]]:
    async with pg.acquire() as conn, conn.transaction():
        pid = await conn.fetchval(
            "INSERT INTO products (name, published) VALUES ('availability', $1) RETURNING id",
            published)
        rows = await conn.fetch(
            "INSERT INTO skus (product_id, price, stock)"
            " SELECT $1, p, 10 FROM unnest($2::bigint[]) AS p RETURNING id", pid, prices)
    return pid, sorted(r["id"] for r in rows)


async def test_min_price_follows_sku_prices(pg: asyncpg.Pool) -> None:
    pid, skus = await product_with_skus(pg, [500, 300, 700])
    price = "SELECT min_price FROM products WHERE id = $1"
    assert await pg.fetchval(price, pid) == 300
    await pg.execute("UPDATE skus SET price = 100 WHERE id = $1", skus[2])
    assert await pg.fetchval(price, pid) == 100
    await pg.execute("UPDATE skus SET price = 900 WHERE id = $1", skus[2])
    assert await pg.fetchval(price, pid) == 300
    await pg.execute("UPDATE skus SET sold = 4 WHERE id = $1", skus[0])
    assert await pg.fetchval(price, pid) == 300
    await pg.execute("DELETE FROM skus WHERE id = $1", skus[1])
    assert await pg.fetchval(price, pid) == 500


async def test_sellable_skus(pg: asyncpg.Pool) -> None:
    listed, (a, b) = await product_with_skus(pg, [500, 800])
    hidden, (c,) = await product_with_skus(pg, [100], published=False)
    await pg.execute("UPDATE skus SET sold = 10 WHERE id = $1", b)
    found = await sellable_skus(pg, [c, a, b, 987654321, a])
    assert found == {
        a: SkuInfo(a, listed, 500, 10, True, "availability", {}),
        b: SkuInfo(b, listed, 800, 0, True, "availability", {}),
        c: SkuInfo(c, hidden, 100, 10, False, "availability", {}),
    }
    assert [found[i].sellable for i in (a, b, c)] == [True, False, False]
    assert await sellable_skus(pg, []) == {}
    async with pg.acquire() as conn, conn.transaction():
        locked = await sellable_skus(conn, [a], for_update=True)
        assert locked[a].available == 10
        other = await pg.fetch(  # another session cannot take the lock meanwhile
            "SELECT id FROM skus WHERE id = $1 FOR UPDATE SKIP LOCKED", a)
        assert other == []
    assert len(await pg.fetch("SELECT id FROM skus WHERE id = $1 FOR UPDATE SKIP LOCKED", a)) == 1


async def test_flash_sale_units_do_not_count_as_available(pg: asyncpg.Pool) -> None:
    _, (sku,) = await product_with_skus(pg, [500])
    now = datetime.now(UTC)
    async with pg.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE skus SET stock = stock - 4 WHERE id = $1", sku)
        await conn.execute(
            "INSERT INTO flash_sales (sku_id, price, stock, per_user_limit, starts_at, ends_at,"
            " created_by) VALUES ($1, 1, 4, 1, $2, $3, 't')", sku, now, now + timedelta(hours=1))
    assert (await sellable_skus(pg, [sku]))[sku].available == 6


CATALOG_OBJECTS = """
SELECT (SELECT count(*) FROM pg_tables WHERE tablename IN ('categories', 'catalog_changes'))
     + (SELECT count(*) FROM pg_proc WHERE proname LIKE 'catalog\\_%')
     + (SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm')
     + (SELECT count(*) FROM pg_indexes WHERE indexname IN (
            'products_name_trgm', 'products_name_grams', 'products_tags', 'products_category',
            'products_listed_price', 'products_listed_newest', 'flash_sales_sku'))
     + (SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'skus\\_min\\_price%')
"""
COLUMNS = """
SELECT table_name || '.' || column_name FROM information_schema.columns
WHERE table_schema = 'public' AND table_name IN ('products', 'skus') ORDER BY 1
"""


async def test_catalog_migration_reverts_completely() -> None:
    base = Settings.from_env().database_url.rsplit("/", 1)[0]
    url = f"{base}/{unique_namespace('mall_catmig_')}"
    try:
        await migrate(url, target=2)
        conn = await asyncpg.connect(url)
        try:
            columns_before = await conn.fetch(COLUMNS)
            assert await conn.fetchval(CATALOG_OBJECTS) == 0
            await migrate(url, target=3)
            assert await conn.fetchval(CATALOG_OBJECTS) >= 15
            await conn.execute("INSERT INTO categories (name) VALUES ('c')")
            await migrate(url, target=2)
            assert await conn.fetchval(CATALOG_OBJECTS) == 0
            assert await conn.fetch(COLUMNS) == columns_before
            await migrate(url, target=3)
            assert await conn.fetchval(CATALOG_OBJECTS) >= 15
        finally:
            await conn.close()
    finally:
        await drop_database(url)
