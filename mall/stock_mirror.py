"""Checkout's sellable stock of a SKU in Redis, moved with staff changes of SKU stock and with
the units a flash sale takes from its SKU or gives back.

Units taken leave Redis first, inside the PostgreSQL transaction (refused when orders on their
way to PostgreSQL hold them); units given back reach Redis after the commit. Either way Redis
never offers more of a SKU than PostgreSQL will accept.
"""

from __future__ import annotations

from redis.asyncio import Redis

from mall.errors import ApiError
from mall.keys import Keys
from mall.lua import Script


class StockMirror:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._script = Script(redis, "adjust_stock")
        self._keys = keys

    async def take(self, sku_id: int, units: int) -> None:
        code, now = await self._script([self._keys.sku_stock(sku_id)], [-units])
        if int(code) == 1:
            raise ApiError(409, "stock_in_flight",
                           f"only {int(now)} units of the SKU are free; the rest are held by "
                           "orders being placed", details={"free": int(now)})

    async def give(self, sku_id: int, units: int) -> None:
        await self._script([self._keys.sku_stock(sku_id)], [units])
