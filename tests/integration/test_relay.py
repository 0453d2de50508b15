"""The outbox relay on real Redis and RabbitMQ: confirm before ack, take over a dead relay."""

from __future__ import annotations

import asyncio
import time

import aio_pika
import orjson
from redis.asyncio import Redis

from mall.keys import RELAY_GROUP, Keys
from mall.settings import Settings
from mall.topology import Topology
from seckill.relay import OutboxRelay
from tests.integration.test_admit_lua import Sale, make_sale


async def drain_queue(settings: Settings, expected: int, timeout_s: float = 15) -> list[dict]:
    topology = Topology.for_namespace(settings.namespace)
    connection = await aio_pika.connect(settings.amqp_url)
    orders: list[dict] = []
    async with connection:
        channel = await connection.channel()
        await topology.declare(channel)
        queue = await channel.get_queue(topology.orders_queue)
        deadline = time.monotonic() + timeout_s
        while len(orders) < expected and time.monotonic() < deadline:
            message = await queue.get(fail=False, no_ack=True)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            orders += orjson.loads(message.body)
    return orders


async def run_relay_until(relay: OutboxRelay, predicate, timeout_s: float = 15) -> None:  # type: ignore[no-untyped-def]
    task = asyncio.create_task(relay.run())
    try:
        deadline = time.monotonic() + timeout_s
        while not await predicate():
            assert time.monotonic() < deadline, "relay did not finish in time"
            await asyncio.sleep(0.05)
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)


async def sale_with_orders(redis: Redis, settings: Settings, n: int) -> tuple[Sale, list[str]]:
    """A registered sale with `n` accepted orders waiting in its outbox."""
    sale = await make_sale(redis, settings, stock=100, limit=1)
    await redis.sadd(Keys(settings.namespace).outbox_registry, sale.k.outbox)
    return sale, [(await sale.admit(f"u{i}"))[1] for i in range(n)]


async def relay_all(redis: Redis, settings: Settings, sale: Sale, accepted: list[str],
                    timeout_s: float = 15) -> None:
    """Run a relay until the outbox is empty; every accepted order must be on the queue."""
    relay = OutboxRelay(redis, Keys(settings.namespace), settings)

    async def stream_empty() -> bool:
        return await redis.xlen(sale.k.outbox) == 0

    await run_relay_until(relay, stream_empty, timeout_s)
    orders = await drain_queue(settings, len(accepted))
    assert sorted(o["order_id"] for o in orders) == sorted(accepted)
    assert (await redis.xpending(sale.k.outbox, RELAY_GROUP))["pending"] == 0


async def test_relay_moves_orders_and_empties_the_stream(
    redis: Redis, fresh_settings: Settings
) -> None:
    sale, accepted = await sale_with_orders(redis, fresh_settings, 40)
    await relay_all(redis, fresh_settings, sale, accepted)


async def test_entries_of_a_dead_relay_are_taken_over(
    redis: Redis, fresh_settings: Settings
) -> None:
    sale, accepted = await sale_with_orders(redis, fresh_settings, 10)
    # A relay read these entries and died before publishing them.
    await redis.xreadgroup(RELAY_GROUP, "dead-relay", {sale.k.outbox: ">"}, count=100)
    assert (await redis.xpending(sale.k.outbox, RELAY_GROUP))["pending"] == 10
    claim_s = fresh_settings.relay_claim_idle_ms / 1000
    await relay_all(redis, fresh_settings, sale, accepted, timeout_s=claim_s + 10)


async def test_nothing_is_acknowledged_without_a_confirm(
    redis: Redis, fresh_settings: Settings
) -> None:
    """With RabbitMQ unreachable the entries stay in the stream, then go once it is back."""
    sale, accepted = await sale_with_orders(redis, fresh_settings, 5)
    unreachable = fresh_settings.with_(amqp_url="amqp://guest:guest@127.0.0.1:1/")
    relay = OutboxRelay(redis, Keys(fresh_settings.namespace), unreachable)
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(1.0)
    relay.stop()
    await asyncio.wait_for(task, 10)
    assert await redis.xlen(sale.k.outbox) == 5
    await relay_all(redis, fresh_settings, sale, accepted)
