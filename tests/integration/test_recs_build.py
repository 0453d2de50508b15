"""The recommendation builder on real PostgreSQL and Redis: counts, increments, cancellations,
popularity and the refresh lock."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter

import asyncpg
import pytest
from redis.asyncio import Redis

from bench.recs_eval import History, Loaded, generate, load_catalog, load_orders
from mall.settings import Settings
from order_writer.lifecycle import transition
from recommendations.build import POPULAR_KEEP, RecsBuilder
from recommendations.keys import RecsKeys
from recommendations.lock import LockLost, RefreshLock

PAIRS_OF_ORDERS = """
SELECT sa.product_id AS a, sb.product_id AS b, count(DISTINCT o.order_id) AS n
FROM orders o
JOIN order_items ia ON ia.order_id = o.order_id JOIN skus sa ON sa.id = ia.sku_id
JOIN order_items ib ON ib.order_id = o.order_id JOIN skus sb ON sb.id = ib.sku_id
WHERE o.order_id = ANY($1::text[]) AND o.status <> 'cancelled' AND sa.product_id <> sb.product_id
GROUP BY 1, 2
"""


@pytest.fixture
def keys(fresh_settings: Settings) -> RecsKeys:
    return RecsKeys(fresh_settings.namespace)


@pytest.fixture
def builder(pg: asyncpg.Pool, redis: Redis, keys: RecsKeys) -> RecsBuilder:
    return RecsBuilder(pg, redis, keys, settle_s=0, batch=97)  # small pages: many batches


def small_history(seed: int) -> History:
    return generate(seed, users=40, orders=300, categories=3, per_category=8, bundles=6)


async def stored_counts(redis: Redis, keys: RecsKeys, products: list[int]) -> Counter[tuple]:
    counts: Counter[tuple[int, int]] = Counter()
    for a in products:
        for member, score in await redis.zrange(keys.bought_with(a), 0, -1, withscores=True):
            if int(member) in set(products):
                counts[(a, int(member))] = int(score)
    return counts


async def sql_counts(pg: asyncpg.Pool, order_ids: list[str]) -> Counter[tuple]:
    rows = await pg.fetch(PAIRS_OF_ORDERS, order_ids)
    return Counter({(r["a"], r["b"]): r["n"] for r in rows})


def python_counts(history: History, loaded: Loaded) -> Counter[tuple]:
    counts: Counter[tuple[int, int]] = Counter()
    for order in history.orders:
        ids = {loaded.product_ids[p] for p in order.products}
        counts.update((a, b) for a in ids for b in ids if a != b)
    return counts


async def load(pg: asyncpg.Pool, history: History, seed: int,
               unpublished: frozenset[int] = frozenset()) -> Loaded:
    async with pg.acquire() as conn:
        return await load_catalog(conn, history, f"r{uuid.uuid4().hex[:8]}", unpublished)


async def test_counts_equal_an_independent_count(pg: asyncpg.Pool, redis: Redis, keys: RecsKeys,
                                                 builder: RecsBuilder) -> None:
    history = small_history(1)
    loaded = await load(pg, history, 1)
    async with pg.acquire() as conn:
        await load_orders(conn, loaded, history.orders, random.Random(1))
    report = await builder.refresh()
    assert report is not None and report.orders_seen >= len(history.orders)
    expected = python_counts(history, loaded)
    assert sum(expected.values()) > 200  # the history has real structure to count
    assert await sql_counts(pg, loaded.order_ids) == expected
    assert await stored_counts(redis, keys, loaded.product_ids) == expected


async def test_incremental_runs_add_only_new_orders(pg: asyncpg.Pool, redis: Redis,
                                                    keys: RecsKeys, builder: RecsBuilder) -> None:
    history = small_history(2)
    loaded = await load(pg, history, 2)
    first, second = history.orders[:150], history.orders[150:]
    rng = random.Random(2)
    async with pg.acquire() as conn:
        first_ids = await load_orders(conn, loaded, first, rng)
    assert await builder.refresh() is not None
    after_first = await stored_counts(redis, keys, loaded.product_ids)
    assert after_first == await sql_counts(pg, first_ids)
    assert await builder.refresh() is not None  # nothing new: nothing may change
    assert await stored_counts(redis, keys, loaded.product_ids) == after_first
    async with pg.acquire() as conn:
        await load_orders(conn, loaded, second, rng)
    assert await builder.refresh() is not None
    assert await builder.refresh() is not None
    assert await stored_counts(redis, keys, loaded.product_ids) == python_counts(history, loaded)


async def test_cancelled_orders_do_not_count(pg: asyncpg.Pool, redis: Redis, keys: RecsKeys,
                                             builder: RecsBuilder) -> None:
    history = small_history(3)
    loaded = await load(pg, history, 3)
    rng = random.Random(3)
    kept, cancelled_later = history.orders[:200], history.orders[200:260]
    async with pg.acquire() as conn:
        kept_ids = await load_orders(conn, loaded, kept, rng)
        later_ids = await load_orders(conn, loaded, cancelled_later, rng)
        # Cancelled before any refresh saw them: never counted.
        await load_orders(conn, loaded, history.orders[260:], rng, status="cancelled")
    assert await builder.refresh() is not None
    assert await stored_counts(redis, keys, loaded.product_ids) == \
        await sql_counts(pg, kept_ids + later_ids)
    # Cancelled after they were counted: the next refresh takes them back, once.
    async with pg.acquire() as conn:
        for order_id in later_ids:
            async with conn.transaction():
                await transition(conn, order_id, "cancelled", "test", "customer_cancelled")
    report = await builder.refresh()
    assert report is not None and report.orders_subtracted > 0
    assert await builder.refresh() is not None
    expected = await sql_counts(pg, kept_ids)
    assert expected and await stored_counts(redis, keys, loaded.product_ids) == expected
    for a in loaded.product_ids:  # no pair is left behind at zero
        assert await redis.zcount(keys.bought_with(a), "-inf", 0) == 0


async def test_popular_lists_count_units_of_published_products(
        pg: asyncpg.Pool, redis: Redis, keys: RecsKeys, builder: RecsBuilder) -> None:
    history = small_history(4)
    hidden = 0  # the top product of category 0 in this history
    loaded = await load(pg, history, 4, unpublished=frozenset({hidden}))
    async with pg.acquire() as conn:
        await load_orders(conn, loaded, history.orders, random.Random(4))
    assert await builder.refresh() is not None
    units = await pg.fetch(
        "SELECT s.product_id, sum(i.qty) AS units FROM order_items i JOIN skus s ON s.id = i.sku_id"
        " WHERE i.order_id = ANY($1::text[]) GROUP BY 1", loaded.order_ids)
    assert loaded.product_ids[hidden] in {r["product_id"] for r in units}  # it did sell
    for c, category_id in enumerate(loaded.category_ids):
        members = {loaded.product_ids[p] for p, cat in enumerate(history.categories_of)
                   if cat == c and p != hidden}
        expected = {r["product_id"]: r["units"] for r in units if r["product_id"] in members}
        stored = await redis.zrange(keys.popular_in(category_id), 0, -1, withscores=True)
        assert {int(m): int(s) for m, s in stored} == expected
    overall = {int(m) for m in await redis.zrange(keys.popular, 0, -1)}
    assert len(overall) <= POPULAR_KEEP
    assert loaded.product_ids[hidden] not in overall
    assert int(await redis.zcard(keys.popular_in(loaded.category_ids[0]))) > 0


async def test_only_one_of_two_concurrent_refreshes_works(
        pg: asyncpg.Pool, redis: Redis, keys: RecsKeys, fresh_settings: Settings) -> None:
    history = small_history(5)
    loaded = await load(pg, history, 5)
    async with pg.acquire() as conn:
        await load_orders(conn, loaded, history.orders, random.Random(5))
    other_redis = Redis.from_url(fresh_settings.redis_url)
    other_pg = await asyncpg.create_pool(fresh_settings.database_url, min_size=1, max_size=2)
    try:
        first = RecsBuilder(pg, redis, keys, settle_s=0, batch=50)
        second = RecsBuilder(other_pg, other_redis, keys, settle_s=0, batch=50)
        reports = await asyncio.gather(first.refresh(), second.refresh())
    finally:
        await other_redis.aclose()
        await other_pg.close()
    assert sorted(r is None for r in reports) == [False, True]
    assert await stored_counts(redis, keys, loaded.product_ids) == python_counts(history, loaded)
    assert await redis.exists(keys.lock) == 0  # released by its holder


async def test_a_refresh_that_lost_its_lock_cannot_write(redis: Redis, keys: RecsKeys) -> None:
    stale = RefreshLock(redis, keys.lock, ttl_ms=50)
    assert await stale.acquire()
    await asyncio.sleep(0.1)
    current = RefreshLock(redis, keys.lock, ttl_ms=10_000)
    assert await current.acquire()
    with pytest.raises(LockLost):
        await stale.fenced(lambda pipe: pipe.set(keys.state, "overwritten"))
    await stale.release()  # not its lock any more: must stay
    assert await redis.exists(keys.lock) == 1 and await redis.exists(keys.state) == 0
    await current.fenced(lambda pipe: pipe.hset(keys.state, "probe", "1"))
    assert await redis.hget(keys.state, "probe") == b"1"
    await current.release()
    assert await redis.exists(keys.lock) == 0
