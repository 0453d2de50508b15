"""Gives returned units back to Redis, exactly once per order.

`order_writer.stock.record_stock_return` records the return in PostgreSQL in the same
transaction as the order's cancellation or refund. Every serving process polls those records,
applies each with lua/release.lua (a flash-sale order) or lua/release_skus.lua (a checkout
order), whose per-order marker makes a second application a no-op, and then stamps
`applied_at`. A crash anywhere in between repeats the poll, never the units. As soon as a
sale's stock is back its sold-out flags clear (seckill/soldout.py), so buyers can buy again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from mall.background import StoppableLoop, stop_task
from mall.keys import Keys
from mall.lua import Script
from mall.resources import KEYS, PG, REDIS
from mall.stock_mirror import StockMirror

log = logging.getLogger(__name__)

MARKER_TTL_S = 7 * 86_400
BATCH = 500

PENDING_RETURNS = """
SELECT r.order_id, r.sale_id, r.user_id,
       array_agg(i.sku_id ORDER BY i.sku_id) AS sku_ids,
       array_agg(i.qty ORDER BY i.sku_id) AS qtys
FROM stock_returns r JOIN stock_return_items i USING (order_id)
WHERE r.applied_at IS NULL
GROUP BY r.order_id, r.sale_id, r.user_id, r.recorded_at
ORDER BY r.recorded_at
LIMIT $1
"""
MARK_APPLIED = "UPDATE stock_returns SET applied_at = now() WHERE order_id = ANY($1::text[])"


class StockReturnApplier(StoppableLoop):
    interval_s = 0.2

    def __init__(self, pool: asyncpg.Pool, redis: Redis, keys: Keys) -> None:
        super().__init__()
        self._pool = pool
        self._release = Script(redis, "release")
        self._release_skus = Script(redis, "release_skus")
        self._mirror = StockMirror(redis, keys)
        self._keys = keys

    async def apply_pending(self) -> int:
        rows = await self._pool.fetch(PENDING_RETURNS, BATCH)
        done = []
        for row in rows:
            if await self._apply(row):
                log.info("returned %d unit(s) of order %s", sum(row["qtys"]), row["order_id"])
            done.append(row["order_id"])
        if done:
            await self._pool.execute(MARK_APPLIED, done)
        return len(done)

    async def _apply(self, row: asyncpg.Record) -> bool:
        order_id = row["order_id"]
        if row["sale_id"] is not None:
            keys = self._keys.release_of(row["sale_id"], order_id)
            applied, _ = await self._release(keys, [row["user_id"], sum(row["qtys"]),
                                                    MARKER_TTL_S])
            return bool(int(applied))
        keys = [self._keys.checkout.released(order_id),
                *(self._keys.sku_stock(s) for s in row["sku_ids"])]
        for _ in range(len(row["sku_ids"]) + 1):
            done = int(await self._release_skus(keys, [MARKER_TTL_S, *row["qtys"]]))
            if done >= 0:
                return bool(done)
            # That SKU has no stock key: create it (this return is left out of it, being
            # unapplied), then give the units back.
            await self._mirror.ensure(self._pool, row["sku_ids"][-done - 1])
        raise RuntimeError(f"order {order_id}: a stock key kept missing")

    async def step(self) -> bool:
        return await self.apply_pending() == BATCH


STOP_TIMEOUT_S = 5.0


async def returns_ctx(app: web.Application) -> AsyncIterator[None]:
    """Every serving process applies pending returns; the markers make that safe."""
    applier = StockReturnApplier(app[PG], app[REDIS], app[KEYS])
    task = asyncio.create_task(applier.run())
    yield
    applier.stop()
    await stop_task(task, STOP_TIMEOUT_S)
