"""Removing everything a namespace owns in Redis and RabbitMQ (test runs, benchmark runs)."""

from __future__ import annotations

import aio_pika
from redis.asyncio import Redis

from mall.settings import Settings
from mall.topology import Topology


async def drop_namespace(settings: Settings) -> None:
    redis = Redis.from_url(settings.redis_url)
    try:
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=f"{settings.namespace}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await redis.delete(*batch)
                batch = []
        if batch:
            await redis.delete(*batch)
    finally:
        await redis.aclose()
    topology = Topology.for_namespace(settings.namespace)
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        for queue in (topology.orders_queue, topology.dead_queue):
            await channel.queue_delete(queue)
        await channel.exchange_delete(topology.exchange)
