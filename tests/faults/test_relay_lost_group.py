"""An outbox stream without its consumer group (Redis lost its data, or the key was recreated)
must not stop the relay for every other sale: the relay recreates the group and moves on."""

from __future__ import annotations

import aio_pika
from redis.asyncio import Redis

from mall.keys import RELAY_GROUP, Keys
from mall.settings import Settings
from seckill.relay import OutboxRelay


async def test_a_stream_without_its_group_does_not_block_the_others(
    fresh_settings: Settings, redis: Redis
) -> None:
    keys = Keys(fresh_settings.namespace)
    orphan, healthy = keys.sale(900).outbox, keys.sale(901).outbox
    assert sorted([orphan, healthy])[0] == orphan  # the orphan is read first
    await redis.xadd(orphan, {"o": b'{"order_id": "fs900-a"}'})
    await redis.xgroup_create(healthy, RELAY_GROUP, id="0", mkstream=True)
    await redis.xadd(healthy, {"o": b'{"order_id": "fs901-a"}'})
    await redis.sadd(keys.outbox_registry, orphan, healthy)

    relay = OutboxRelay(redis, keys, fresh_settings)
    connection = await aio_pika.connect(fresh_settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange, queue, _ = await relay._topology.declare(channel)
        moved = await relay.relay_once(exchange)
        moved += await relay.relay_once(exchange)
        assert moved == 2
        assert await redis.xlen(orphan) == 0 and await redis.xlen(healthy) == 0
        declared = await channel.declare_queue(queue.name, passive=True)
        assert declared.declaration_result.message_count == 2
