"""Checkout's sellable stock of a SKU in Redis: the one place that changes it outside the
purchase scripts, and the one place that creates it.

Redis decides and PostgreSQL must accept what Redis accepted, so every change of a SKU's stock
is ordered against the key and the SKU's PostgreSQL row lock:

- Units taken away (a staff cut, a flash sale taking its units) leave Redis first, inside the
  PostgreSQL transaction and under the row lock (refused when orders on their way to
  PostgreSQL hold them). A SKU without a key changes in PostgreSQL alone.
- Units given back (a staff raise, a sale's unsold or returned units) are held in Redis inside
  the transaction, under the row lock, and moved into the stock after the commit
  (lua/stock_give.lua): Redis never offers them before PostgreSQL has them.
- The key is created only by `ensure`, under the row lock, from PostgreSQL's free units less
  what is held and the stock returns not yet applied (lua/stock_init.lua), never from a value
  read earlier: a checkout that finds no key asks for it and tries again.
"""

from __future__ import annotations

import asyncpg
from redis.asyncio import Redis

from mall.errors import ApiError
from mall.keys import Keys
from mall.lua import Script

# Free units of a SKU under its row lock, less its checkout returns not yet applied to Redis.
FREE_FOR_INIT = """
SELECT s.stock - s.sold - coalesce((
    SELECT sum(i.qty) FROM stock_returns r JOIN stock_return_items i USING (order_id)
    WHERE r.applied_at IS NULL AND r.sale_id IS NULL AND i.sku_id = s.id), 0) AS free
FROM skus s WHERE s.id = $1
FOR UPDATE OF s
"""

TAKEN, REFUSED, NO_KEY = 0, 1, 2


class StockMirror:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._adjust = Script(redis, "adjust_stock")
        self._give = Script(redis, "stock_give")
        self._init = Script(redis, "stock_init")
        self._keys = keys

    def _pair(self, sku_id: int) -> list[str]:
        return [self._keys.sku_stock(sku_id), self._keys.sku_held(sku_id)]

    async def take(self, sku_id: int, units: int) -> bool:
        """Inside the transaction that takes the units, under the SKU's row lock. True when
        Redis held them (undo with `untake` if the transaction does not commit)."""
        code, now = await self._adjust([self._keys.sku_stock(sku_id)], [-units])
        if int(code) == REFUSED:
            raise ApiError(409, "stock_in_flight",
                           f"only {int(now)} units of the SKU are free; the rest are held by "
                           "orders being placed", details={"free": int(now)})
        return int(code) == TAKEN

    async def untake(self, sku_id: int, units: int) -> None:
        """Undo a `take` that answered True, inside its transaction, before it rolls back."""
        await self._adjust([self._keys.sku_stock(sku_id)], [units])

    async def hold(self, sku_id: int, units: int) -> None:
        """Inside the transaction that gives the units, once the SKU's row is locked."""
        await self._give(self._pair(sku_id), ["hold", units])

    async def drop(self, sku_id: int, units: int) -> None:
        """Inside that transaction, before it rolls back: the units are not given."""
        await self._give(self._pair(sku_id), ["drop", units])

    async def apply(self, sku_id: int, units: int) -> None:
        """After the commit: the held units become sellable."""
        await self._give(self._pair(sku_id), ["apply", units])

    async def ensure(self, pool: asyncpg.Pool, sku_id: int) -> int | None:
        """Create the SKU's key if it is missing; the units now, None for no such SKU."""
        async with pool.acquire() as conn, conn.transaction():
            free = await conn.fetchval(FREE_FOR_INIT, sku_id)
            if free is None:
                return None
            _, now = await self._init(self._pair(sku_id), [max(int(free), 0)])
        return int(now)
