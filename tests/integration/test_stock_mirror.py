"""mall/stock_mirror.py on real Redis and PostgreSQL: the SKU stock key is created once, from
PostgreSQL under the row lock, and no give or return counts twice around its creation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis.asyncio import Redis

from mall.keys import Keys, make_checkout_order_id
from mall.reconcile import reconcile
from mall.settings import Settings
from mall.stock_mirror import StockMirror
from order_writer.returns import StockReturnApplier


@pytest.fixture
async def own_pg(own_database_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(own_database_settings.database_url, min_size=1,
                                     max_size=6)
    yield pool
    await pool.close()


async def new_sku(pg: asyncpg.Pool, stock: int, sold: int = 0) -> int:
    async with pg.acquire() as conn, conn.transaction():
        product = await conn.fetchval(
            "INSERT INTO products (name, published) VALUES ('m', true) RETURNING id")
        return int(await conn.fetchval(
            "INSERT INTO skus (product_id, price, stock, sold) VALUES ($1, 100, $2, $3) "
            "RETURNING id", product, stock, sold))


async def cancelled_checkout(pg: asyncpg.Pool, sku: int, qty: int) -> str:
    """A persisted checkout order of `qty` units, cancelled: PostgreSQL has the units back and
    the return waits for Redis."""
    order_id = make_checkout_order_id(uuid.uuid4().hex)
    async with pg.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO orders (order_id, user_id, status, total, created_at) "
                           "VALUES ($1, 'u', 'cancelled', 100, now())", order_id)
        await conn.execute("INSERT INTO order_items (order_id, sku_id, qty, price) "
                           "VALUES ($1, $2, $3, 100)", order_id, sku, qty)
        await conn.execute("INSERT INTO stock_returns (order_id, user_id, reason) "
                           "VALUES ($1, 'u', 'cancelled')", order_id)
        await conn.execute("INSERT INTO stock_return_items (order_id, sku_id, qty) "
                           "VALUES ($1, $2, $3)", order_id, sku, qty)
    return order_id


async def waiting_on_a_lock(pg: asyncpg.Pool, deadline_s: float = 60) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while loop.time() < end:
        if await pg.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND wait_event_type = 'Lock'"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("nobody waited on the row lock")


async def stock_of(redis: Redis, keys: Keys, sku: int) -> int | None:
    value = await redis.get(keys.sku_stock(sku))
    return None if value is None else int(value)


async def test_a_return_to_a_sku_without_key_is_counted_once(
    own_database_settings: Settings, own_pg: asyncpg.Pool, redis: Redis
) -> None:
    keys = Keys(own_database_settings.namespace)
    # 10 units, 4 sold of which an order of 3 was cancelled: PostgreSQL says 1 sold
    sku = await new_sku(own_pg, stock=10, sold=1)
    order_id = await cancelled_checkout(own_pg, sku, 3)
    appliers = [StockReturnApplier(own_pg, redis, keys) for _ in range(3)]
    # three appliers race on the same pending return while the key does not exist
    await asyncio.gather(*(a.apply_pending() for a in appliers))
    assert await stock_of(redis, keys, sku) == 9
    assert await redis.exists(keys.checkout.released(order_id))
    # a replay of the whole return (its applied_at stamp lost) gives nothing again
    await own_pg.execute("UPDATE stock_returns SET applied_at = NULL WHERE order_id = $1",
                         order_id)
    await appliers[0].apply_pending()
    assert await stock_of(redis, keys, sku) == 9
    # and the key is not made up again from PostgreSQL
    assert await StockMirror(redis, keys).ensure(own_pg, sku) == 9


async def test_the_key_is_created_from_postgresql_less_unapplied_returns(
    own_database_settings: Settings, own_pg: asyncpg.Pool, redis: Redis
) -> None:
    keys = Keys(own_database_settings.namespace)
    mirror = StockMirror(redis, keys)
    sku = await new_sku(own_pg, stock=10, sold=2)
    await cancelled_checkout(own_pg, sku, 3)  # PostgreSQL counts these 3 free already
    # many racing creators agree on one value: the return's units come through the return
    values = await asyncio.gather(*(mirror.ensure(own_pg, sku) for _ in range(8)))
    assert values == [5] * 8
    await StockReturnApplier(own_pg, redis, keys).apply_pending()
    assert await stock_of(redis, keys, sku) == 8
    assert await mirror.ensure(own_pg, 10**12) is None  # no such SKU: no key either
    assert await redis.get(keys.sku_stock(10**12)) is None


async def test_held_units_are_counted_once_whenever_the_key_appears(
    own_database_settings: Settings, own_pg: asyncpg.Pool, redis: Redis
) -> None:
    keys = Keys(own_database_settings.namespace)
    mirror = StockMirror(redis, keys)
    # the key is created between the commit of a give and its step into Redis
    a = await new_sku(own_pg, stock=7)  # 7 = 4 before the give + 3 given, committed
    await mirror.hold(a, 3)
    assert await mirror.ensure(own_pg, a) == 4
    await mirror.apply(a, 3)
    assert await stock_of(redis, keys, a) == 7
    await mirror.apply(a, 3)  # repeated: nothing is held any more
    assert await stock_of(redis, keys, a) == 7
    # the give reaches Redis before the key exists: the key then counts it from PostgreSQL
    b = await new_sku(own_pg, stock=7)
    await mirror.hold(b, 3)
    await mirror.apply(b, 3)
    assert await stock_of(redis, keys, b) is None
    assert await mirror.ensure(own_pg, b) == 7
    # a give that rolls back: dropped, the key never sees it
    c = await new_sku(own_pg, stock=4)
    await mirror.take(c, 0)
    assert await mirror.ensure(own_pg, c) == 4
    await mirror.hold(c, 3)
    await mirror.drop(c, 3)
    await mirror.apply(c, 3)  # a late apply after the drop finds nothing held
    assert await stock_of(redis, keys, c) == 4
    assert await redis.get(keys.sku_held(c)) is None


async def test_a_take_without_key_changes_postgresql_alone_and_the_key_follows(
    own_database_settings: Settings, own_pg: asyncpg.Pool, redis: Redis
) -> None:
    keys = Keys(own_database_settings.namespace)
    mirror = StockMirror(redis, keys)
    sku = await new_sku(own_pg, stock=5)
    ready = asyncio.Event()

    async def cut() -> None:
        async with own_pg.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE skus SET stock = stock - 5 WHERE id = $1", sku)
            assert await mirror.take(sku, 5) is False  # no key: nothing held in Redis
            ready.set()
            await waiting_on_a_lock(own_pg)  # the creator waits on the row lock: commit

    task = asyncio.create_task(cut())
    await asyncio.wait_for(ready.wait(), 30)
    assert await mirror.ensure(own_pg, sku) == 0  # waited for the commit, read after it
    await task
    assert await stock_of(redis, keys, sku) == 0


async def test_a_give_cut_short_is_drift_and_the_repair_finishes_it_once(
    own_database_settings: Settings, own_pg: asyncpg.Pool, redis: Redis
) -> None:
    settings = own_database_settings
    keys = Keys(settings.namespace)
    mirror = StockMirror(redis, keys)
    sku = await new_sku(own_pg, stock=4)
    assert await mirror.ensure(own_pg, sku) == 4
    # a staff raise of 3 committed, then its process died before the units reached Redis
    await own_pg.execute("UPDATE skus SET stock = stock + 3 WHERE id = $1", sku)
    await mirror.hold(sku, 3)
    found = await reconcile(own_pg, redis, settings, quiet_s=0.3)
    assert found.exit_code == 1, found.lines()
    (check,) = [k for k in found.report.skus if k.sku_id == sku]
    assert check.problems == ["stock off by -3 (3 unit(s) held by a give not finished)"]
    repaired = await reconcile(own_pg, redis, settings, repair=True, quiet_s=0.3)
    assert repaired.exit_code == 0, repaired.lines()
    assert await stock_of(redis, keys, sku) == 7
    await mirror.apply(sku, 3)  # the give's own step arriving late adds nothing
    assert await stock_of(redis, keys, sku) == 7
