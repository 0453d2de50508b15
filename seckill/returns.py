"""Gives returned flash-sale units back to Redis, exactly once per order.

`order_writer.stock.record_stock_return` records the return in PostgreSQL in the same
transaction as the order's cancellation or refund. Every serving process polls those records,
applies each with lua/release.lua (whose per-order marker makes a second application a no-op)
and then stamps `applied_at`. A crash anywhere in between repeats the poll, never the units.
As soon as the stock is back the sold-out flags clear (seckill/soldout.py), so buyers can buy
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from mall.keys import Keys
from mall.lua import Script

log = logging.getLogger(__name__)

MARKER_TTL_S = 7 * 86_400
BATCH = 500

PENDING_RETURNS = """
SELECT r.order_id, r.sale_id, r.user_id, sum(i.qty)::int AS units
FROM stock_returns r JOIN stock_return_items i USING (order_id)
WHERE r.applied_at IS NULL AND r.sale_id IS NOT NULL
GROUP BY r.order_id, r.sale_id, r.user_id, r.recorded_at
ORDER BY r.recorded_at
LIMIT $1
"""
MARK_APPLIED = "UPDATE stock_returns SET applied_at = now() WHERE order_id = ANY($1::text[])"


class StockReturnApplier:
    def __init__(self, pool: asyncpg.Pool, release: Script, keys: Keys) -> None:
        self._pool = pool
        self._release = release
        self._keys = keys
        self._stopping = asyncio.Event()

    async def apply_pending(self) -> int:
        rows = await self._pool.fetch(PENDING_RETURNS, BATCH)
        done = []
        for row in rows:
            keys = self._keys.sale(row["sale_id"]).release(row["order_id"])
            applied, _ = await self._release(keys, [row["user_id"], row["units"], MARKER_TTL_S])
            if int(applied):
                log.info("returned %d unit(s) of order %s to sale %s", row["units"],
                         row["order_id"], row["sale_id"])
            done.append(row["order_id"])
        if done:
            await self._pool.execute(MARK_APPLIED, done)
        return len(done)

    async def run(self, interval_s: float) -> None:
        while not self._stopping.is_set():
            try:
                if await self.apply_pending() == BATCH:
                    continue
            except Exception:
                log.warning("applying stock returns failed; retrying", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval_s)

    def stop(self) -> None:
        self._stopping.set()
