"""Periodic gauges for promotion-day dashboards: stock per live sale, accepted versus persisted
units (what is in flight, which must settle to zero), and PostgreSQL pool usage."""

from __future__ import annotations

import contextlib
import logging
import time

import asyncpg
from redis.asyncio import Redis

from mall.background import StoppableLoop
from mall.keys import Keys
from mall.metrics import PG_POOL_CONNECTIONS
from seckill import metrics
from seckill.shards import ShardedStock

log = logging.getLogger(__name__)

RECENT_S = 3600  # sales that ended longer ago than this drop off the dashboards
SOLD = "SELECT id, sold FROM flash_sales WHERE id = ANY($1::bigint[])"


class SaleStats(StoppableLoop):
    def __init__(self, pool: asyncpg.Pool, redis: Redis, keys: Keys, interval_s: float,
                 shards: ShardedStock | None = None) -> None:
        super().__init__()
        self._pool = pool
        self._redis = redis
        self._keys = keys
        self._shards = shards or ShardedStock(redis, keys)
        self.interval_s = interval_s

    async def step(self) -> None:
        await self.collect()

    async def collect(self) -> None:
        PG_POOL_CONNECTIONS.labels("in_use").set(self._pool.get_size()
                                                 - self._pool.get_idle_size())
        PG_POOL_CONNECTIONS.labels("idle").set(self._pool.get_idle_size())
        members = await self._redis.smembers(self._keys.outbox_registry)
        found: set[int] = set()
        for member in members:
            key = member.decode() if isinstance(member, bytes) else member
            with contextlib.suppress(ValueError):
                found.add(self._keys.sale_from_outbox(key))
        sale_ids = sorted(found)
        if not sale_ids:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for sale_id in sale_ids:
                pipe.hmget(self._keys.sale(sale_id).meta, "stock", "ends_at_ms")
                pipe.get(self._keys.sale(sale_id).stock)
            replies = await pipe.execute()
        now_ms = time.time() * 1000
        live: dict[int, tuple[int, int]] = {}
        for i, sale_id in enumerate(sale_ids):
            (stock, ends_at_ms), remaining = replies[2 * i], replies[2 * i + 1]
            if stock is None or remaining is None:
                continue
            if int(ends_at_ms) < now_ms - RECENT_S * 1000:
                continue
            if await self._shards.count(sale_id) > 1:
                remaining = await self._shards.remaining(sale_id) or 0
            live[sale_id] = (int(stock), int(remaining))
        sold = dict(await self._pool.fetch(SOLD, list(live))) if live else {}
        for sale_id, (stock, remaining) in live.items():
            label = str(sale_id)
            metrics.SALE_REMAINING.labels(label).set(remaining)
            metrics.SALE_ACCEPTED.labels(label).set(stock - remaining)
            metrics.SALE_PERSISTED.labels(label).set(sold.get(sale_id, 0))
