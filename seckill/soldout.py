"""In-process sold-out flags, so sold-out traffic is answered without touching Redis.

When a sale's stock reaches zero, the process snapshots its buyers. From then on a buyer who
never bought is answered `sold_out` at once; a past buyer still goes to Redis, because their
request may be an idempotent replay of an accepted order or deserve `limit_reached`. No one
can become a buyer while the stock is zero, so the snapshot stays complete. A refresher clears
the flag as soon as stock comes back (payment timeout, cancel, refund), so buyers can buy
again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from redis.asyncio import Redis

from mall.keys import Keys
from seckill.shards import ShardedStock

log = logging.getLogger(__name__)

# Past this many buyers the snapshot is not kept; such a sale's sold-out traffic goes to Redis.
MAX_SNAPSHOT_BUYERS = 200_000


@dataclass(slots=True)
class _Flag:
    buyers: frozenset[str] | None  # None while loading or when too large to keep


class SoldOutFlags:
    def __init__(self, redis: Redis, keys: Keys, shards: ShardedStock) -> None:
        self._redis = redis
        self._keys = keys
        self._shards = shards
        self._flags: dict[int, _Flag] = {}
        self._loading: dict[int, asyncio.Task[None]] = {}

    def answers_sold_out(self, sale_id: int, user_id: str) -> bool:
        """True when this request can be answered sold out without asking Redis."""
        flag = self._flags.get(sale_id)
        return flag is not None and flag.buyers is not None and user_id not in flag.buyers

    def mark_sold_out(self, sale_id: int) -> None:
        if sale_id in self._flags:
            return
        self._flags[sale_id] = _Flag(buyers=None)
        task = asyncio.get_running_loop().create_task(self._load_buyers(sale_id))
        self._loading[sale_id] = task
        task.add_done_callback(lambda _t: self._loading.pop(sale_id, None))

    async def _load_buyers(self, sale_id: int) -> None:
        try:
            shard_keys = await self._shards.shard_keys(sale_id)
            count = 0
            for keys in shard_keys:
                count += await self._redis.hlen(keys.buyers)
            if count > MAX_SNAPSHOT_BUYERS:
                return
            buyers: list[bytes] = []
            for keys in shard_keys:
                buyers += await self._redis.hkeys(keys.buyers)
            stock = await self._shards.remaining(sale_id)
        except Exception:
            log.warning("could not snapshot buyers of sale %s; asking Redis instead", sale_id)
            self._flags.pop(sale_id, None)
            return
        flag = self._flags.get(sale_id)
        if flag is None or int(stock or 0) > 0:
            self._flags.pop(sale_id, None)
            return
        flag.buyers = frozenset(b.decode() if isinstance(b, bytes) else b for b in buyers)

    async def refresh(self) -> None:
        """Clear the flags of sales whose stock came back."""
        sale_ids = list(self._flags)
        if not sale_ids:
            return
        # One read per sale (few are sold out at once): on Redis Cluster sales are in
        # different slots, where MGET is refused.
        stocks = [await self._shards.remaining(s) for s in sale_ids]
        for sale_id, stock in zip(sale_ids, stocks, strict=True):
            if stock is None or int(stock) > 0:
                self._flags.pop(sale_id, None)
                log.info("stock of sale %s came back; sold-out flag cleared", sale_id)

    async def run_refresher(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except Exception:
                log.warning("sold-out refresh failed; retrying", exc_info=True)

    async def aclose(self) -> None:
        for task in list(self._loading.values()):
            task.cancel()
        await asyncio.gather(*self._loading.values(), return_exceptions=True)
