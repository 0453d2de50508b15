"""Building what the recommendations are served from: co-purchase counts and popular products.

Co-purchase counts are incremental. Each orders row is visited once, in (persisted_at,
order_id) order after a watermark kept in Redis; an order with two or more distinct products
adds one to both directions of every pair (ZINCRBY), in the same MULTI that moves the
watermark. Orders are read only once they are `settle_s` old, so a transaction that committed
late cannot slip in behind the watermark.

Cancelled orders do not count. Whether an order counts is decided against one cut-off time
per refresh: it counts unless a cancellation at or before the cut-off is recorded in
order_history. A cancellation recorded later is subtracted by the refresh whose window
(previous cut-off, its cut-off] contains it, if the order is behind the orders watermark; so
each cancelled order is added and taken back at most once.

Popular products (units sold in the last `POPULAR_DAYS` days, published products only) are
recomputed in full on every refresh, overall and per category.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import permutations

import asyncpg
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from recommendations.keys import RecsKeys
from recommendations.lock import RefreshLock

log = logging.getLogger(__name__)

SETTLE_S = 30.0
BATCH_ORDERS = 2_000
# Pairs grow with the square of an order's size; the largest orders are wholesale, not taste.
MAX_ORDER_PRODUCTS = 20
POPULAR_DAYS = 30
POPULAR_KEEP = 200
LOCK_TTL_MS = 120_000

CUTOFF = "SELECT now() - make_interval(secs => $1)"

NEW_ORDERS = """
WITH page AS (
    SELECT o.order_id, o.persisted_at,
           NOT EXISTS (SELECT 1 FROM order_history h
                       WHERE h.order_id = o.order_id AND h.to_status = 'cancelled'
                         AND h.at <= $3)
           AND (o.status <> 'cancelled'
                OR EXISTS (SELECT 1 FROM order_history h
                           WHERE h.order_id = o.order_id AND h.to_status = 'cancelled'))
           AS counted
    FROM orders o
    WHERE o.persisted_at <= $3
      AND ($1::timestamptz IS NULL OR (o.persisted_at, o.order_id) > ($1, $2))
    ORDER BY o.persisted_at, o.order_id
    LIMIT $4
)
SELECT page.order_id, page.persisted_at, page.counted,
       array_remove(array_agg(DISTINCT s.product_id), NULL) AS products
FROM page
LEFT JOIN order_items i ON i.order_id = page.order_id
LEFT JOIN skus s ON s.id = i.sku_id
GROUP BY page.order_id, page.persisted_at, page.counted
ORDER BY page.persisted_at, page.order_id
"""

CANCELLED_BETWEEN = """
SELECT o.order_id, array_agg(DISTINCT s.product_id) AS products
FROM (SELECT DISTINCT order_id FROM order_history
      WHERE to_status = 'cancelled' AND from_status IS DISTINCT FROM 'cancelled'
        AND at > $1 AND at <= $2) h
JOIN orders o ON o.order_id = h.order_id
JOIN order_items i ON i.order_id = o.order_id
JOIN skus s ON s.id = i.sku_id
WHERE (o.persisted_at, o.order_id) <= ($3, $4)
GROUP BY o.order_id
"""

UNITS_SOLD = """
SELECT s.product_id, p.category_id, sum(i.qty)::bigint AS units
FROM orders o
JOIN order_items i ON i.order_id = o.order_id
JOIN skus s ON s.id = i.sku_id
JOIN products p ON p.id = s.product_id
WHERE o.created_at >= now() - make_interval(days => $1)
  AND o.status <> 'cancelled' AND p.published
GROUP BY s.product_id, p.category_id
"""


@dataclass(frozen=True, slots=True)
class Watermarks:
    orders_at: datetime | None
    orders_id: str
    cancels_at: datetime | None

    @classmethod
    def decode(cls, raw: dict[bytes, bytes]) -> Watermarks:
        def when(field: bytes) -> datetime | None:
            value = raw.get(field)
            return datetime.fromisoformat(value.decode()) if value else None

        return cls(when(b"orders_at"), raw.get(b"orders_id", b"").decode(), when(b"cancels_at"))


@dataclass(slots=True)
class RefreshReport:
    orders_seen: int = 0
    orders_counted: int = 0
    orders_subtracted: int = 0
    popular_products: int = 0


def pair_counts(orders: Iterable[Sequence[int]]) -> Counter[tuple[int, int]]:
    """(a, b) -> number of orders holding both, in both directions; one entry per order."""
    counts: Counter[tuple[int, int]] = Counter()
    for products in orders:
        distinct = sorted(set(products))[:MAX_ORDER_PRODUCTS]
        if len(distinct) >= 2:
            counts.update(permutations(distinct, 2))
    return counts


class RecsBuilder:
    """One refresh at a time per namespace, guarded by the refresh lock."""

    def __init__(self, pool: asyncpg.Pool, redis: Redis, keys: RecsKeys, *,
                 settle_s: float = SETTLE_S, batch: int = BATCH_ORDERS,
                 lock_ttl_ms: int = LOCK_TTL_MS) -> None:
        self._pool = pool
        self._redis = redis
        self._keys = keys
        self._settle_s = settle_s
        self._batch = batch
        self._lock_ttl_ms = lock_ttl_ms

    async def refresh(self) -> RefreshReport | None:
        """Bring the counts and popular lists up to date; None when another process holds the
        lock (that process does the work)."""
        lock = RefreshLock(self._redis, self._keys.lock, self._lock_ttl_ms)
        if not await lock.acquire():
            return None
        try:
            report = RefreshReport()
            marks = Watermarks.decode(await self._redis.hgetall(self._keys.state))
            cutoff = await self._pool.fetchval(CUTOFF, self._settle_s)
            if marks.cancels_at is not None:
                cutoff = max(cutoff, marks.cancels_at)
            report.orders_subtracted = await self._subtract_cancelled(lock, marks, cutoff)
            await self._add_new_orders(lock, marks, cutoff, report)
            report.popular_products = await self._rebuild_popular(lock)
            return report
        finally:
            await lock.release()

    async def _subtract_cancelled(self, lock: RefreshLock, marks: Watermarks,
                                  cutoff: datetime) -> int:
        rows = []
        if marks.orders_at is not None and marks.cancels_at is not None:
            rows = await self._pool.fetch(CANCELLED_BETWEEN, marks.cancels_at, cutoff,
                                          marks.orders_at, marks.orders_id)
        counts = pair_counts(r["products"] for r in rows)

        def queue(pipe: Pipeline) -> None:
            for (a, b), n in counts.items():
                pipe.zincrby(self._keys.bought_with(a), -n, b)
            for a in {a for a, _ in counts}:
                pipe.zremrangebyscore(self._keys.bought_with(a), "-inf", 0)
            pipe.hset(self._keys.state, "cancels_at", cutoff.isoformat())

        await lock.fenced(queue)
        return sum(1 for r in rows if len(set(r["products"])) >= 2)

    async def _add_new_orders(self, lock: RefreshLock, marks: Watermarks, cutoff: datetime,
                              report: RefreshReport) -> None:
        after_at, after_id = marks.orders_at, marks.orders_id
        while True:
            rows = await self._pool.fetch(NEW_ORDERS, after_at, after_id, cutoff, self._batch)
            if not rows:
                return
            counted = [r["products"] for r in rows if r["counted"]]
            counts = pair_counts(counted)
            last = rows[-1]

            def queue(pipe: Pipeline, counts: Counter[tuple[int, int]] = counts,
                      last: asyncpg.Record = last) -> None:
                for (a, b), n in counts.items():
                    pipe.zincrby(self._keys.bought_with(a), n, b)
                pipe.hset(self._keys.state, mapping={
                    "orders_at": last["persisted_at"].isoformat(),
                    "orders_id": last["order_id"]})

            await lock.fenced(queue)
            report.orders_seen += len(rows)
            report.orders_counted += sum(1 for p in counted if len(set(p)) >= 2)
            after_at, after_id = last["persisted_at"], last["order_id"]
            if len(rows) < self._batch:
                return

    async def _rebuild_popular(self, lock: RefreshLock) -> int:
        rows = await self._pool.fetch(UNITS_SOLD, POPULAR_DAYS)
        overall = _top({r["product_id"]: r["units"] for r in rows})
        by_category: dict[int, dict[int, int]] = {}
        for r in rows:
            if r["category_id"] is not None:
                by_category.setdefault(r["category_id"], {})[r["product_id"]] = r["units"]
        previous = {int(c) for c in await self._redis.smembers(self._keys.popular_categories)}

        def queue(pipe: Pipeline) -> None:
            pipe.delete(self._keys.popular, self._keys.popular_categories,
                        *(self._keys.popular_in(c) for c in previous - by_category.keys()))
            if overall:
                pipe.zadd(self._keys.popular, overall)
            for category_id, units in by_category.items():
                key = self._keys.popular_in(category_id)
                pipe.delete(key)
                pipe.zadd(key, _top(units))
            if by_category:
                pipe.sadd(self._keys.popular_categories, *by_category)

        await lock.fenced(queue)
        return len(rows)


def _top(units: dict[int, int]) -> dict[int, int]:
    best = sorted(units.items(), key=lambda item: (-item[1], item[0]))[:POPULAR_KEEP]
    return dict(best)
