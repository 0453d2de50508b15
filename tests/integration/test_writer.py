"""The order writer on real RabbitMQ and PostgreSQL: batches, duplicates, poison messages."""

from __future__ import annotations

import asyncio
import time

import aio_pika
import asyncpg
import msgspec
import pytest

from mall.settings import Settings
from mall.topology import ATTEMPTS_HEADER, Topology
from order_writer.store import AcceptedOrder, write_orders
from tests.conftest import running_writer
from tests.integration.factories import insert_sale, order


async def publish(settings: Settings, *bodies: bytes) -> None:
    topology = Topology.for_namespace(settings.namespace)
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange, _, _ = await topology.declare(channel)
        for body in bodies:
            await exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                topology.orders_routing_key,
            )


async def dead_letters(settings: Settings) -> list[aio_pika.abc.AbstractIncomingMessage]:
    topology = Topology.for_namespace(settings.namespace)
    connection = await aio_pika.connect(settings.amqp_url)
    found = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.dead_queue)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            found.append(message)
    return found


def encode(*orders: AcceptedOrder) -> bytes:
    return msgspec.json.encode(list(orders))


async def wait_for(predicate, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def count_orders(pg: asyncpg.Pool, sale_id: int) -> int:
    return int(await pg.fetchval("SELECT count(*) FROM orders WHERE sale_id = $1", sale_id))


async def sold(pg: asyncpg.Pool, sale_id: int) -> int:
    return int(await pg.fetchval("SELECT sold FROM flash_sales WHERE id = $1", sale_id))


async def test_write_orders_is_idempotent(pg: asyncpg.Pool) -> None:
    sale_id, sku = await insert_sale(pg, stock=10)
    a, b = order(sale_id, sku, "a", qty=2), order(sale_id, sku, "b")
    async with pg.acquire() as conn:
        first = await write_orders(conn, [a, b, a])  # a duplicate inside one batch
        second = await write_orders(conn, [a, b])  # a redelivered batch
    assert sorted(first.inserted) == sorted([a.order_id, b.order_id])
    assert first.duplicates == 1
    assert second.inserted == [] and second.duplicates == 2
    assert await sold(pg, sale_id) == 3
    items = await pg.fetch("SELECT order_id, qty FROM order_items WHERE order_id = ANY($1)",
                           [a.order_id, b.order_id])
    assert sorted((r["order_id"], r["qty"]) for r in items) == sorted(
        [(a.order_id, 2), (b.order_id, 1)])
    status = await pg.fetchval("SELECT status FROM orders WHERE order_id = $1", a.order_id)
    assert status == "pending_payment"


async def test_schema_refuses_to_oversell(pg: asyncpg.Pool) -> None:
    sale_id, sku = await insert_sale(pg, stock=2)
    async with pg.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await write_orders(conn, [order(sale_id, sku, u) for u in "abc"])
    assert await count_orders(pg, sale_id) == 0 and await sold(pg, sale_id) == 0


async def test_writer_persists_batches_and_redeliveries_once(
    pg: asyncpg.Pool, fresh_settings: Settings
) -> None:
    sale_id, sku = await insert_sale(pg, stock=1000)
    orders = [order(sale_id, sku, f"u{i}") for i in range(600)]
    bodies = [encode(*orders[i : i + 50]) for i in range(0, 600, 50)]
    async with running_writer(fresh_settings):
        await publish(fresh_settings, *bodies, *bodies[:3])  # the first three arrive twice
        await wait_for(lambda: _equals(count_orders(pg, sale_id), 600))
        await asyncio.sleep(0.3)
    assert await count_orders(pg, sale_id) == 600
    assert await sold(pg, sale_id) == 600


async def _equals(coro, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return await coro == expected


async def test_poison_messages_are_dead_lettered_and_good_ones_kept(
    pg: asyncpg.Pool, fresh_settings: Settings
) -> None:
    sale_id, sku = await insert_sale(pg, stock=10)
    good = order(sale_id, sku, "good")
    orphan = order(999_999_999, sku, "orphan")  # no such sale: a foreign-key error every time
    async with running_writer(fresh_settings):
        await publish(fresh_settings, b"not json", encode(orphan), encode(good))
        await wait_for(lambda: _equals(count_orders(pg, sale_id), 1))
        deadline = time.monotonic() + 20
        dead: list[aio_pika.abc.AbstractIncomingMessage] = []
        while len(dead) < 2 and time.monotonic() < deadline:
            dead += await dead_letters(fresh_settings)
            await asyncio.sleep(0.1)
    bodies = sorted(m.body for m in dead)
    assert bodies == sorted([b"not json", encode(orphan)])
    orphan_copy = next(m for m in dead if m.body == encode(orphan))
    assert orphan_copy.headers[ATTEMPTS_HEADER] == fresh_settings.writer_max_attempts
    assert await pg.fetchval("SELECT count(*) FROM orders WHERE order_id = $1",
                             orphan.order_id) == 0
    assert await sold(pg, sale_id) == 1


async def test_checkout_orders_move_sku_counters_once(pg: asyncpg.Pool) -> None:
    from order_writer.store import OrderItem

    _, sku_a = await insert_sale(pg, stock=1)
    _, sku_b = await insert_sale(pg, stock=1)
    await pg.execute("UPDATE skus SET stock = 5 WHERE id = ANY($1::bigint[])", [sku_a, sku_b])
    base = order(0, sku_a, "shopper")
    checkout = AcceptedOrder(
        order_id="co-" + base.order_id[-32:], user_id="shopper", total=2500,
        accepted_at_ms=base.accepted_at_ms, items=[OrderItem(sku_a, 2, 500),
                                                   OrderItem(sku_b, 3, 500)],
        shipping_fee=0, delivery="pickup")
    async with pg.acquire() as conn:
        first = await write_orders(conn, [checkout, checkout])
        again = await write_orders(conn, [checkout])
    assert first.inserted == [checkout.order_id] and again.inserted == []
    sold = dict(await pg.fetch("SELECT id, sold FROM skus WHERE id = ANY($1::bigint[])",
                               [sku_a, sku_b]))
    assert sold == {sku_a: 2, sku_b: 3}
    row = await pg.fetchrow("SELECT sale_id, delivery, total FROM orders WHERE order_id = $1",
                            checkout.order_id)
    assert (row["sale_id"], row["delivery"], row["total"]) == (None, "pickup", 2500)
    over = AcceptedOrder(order_id="co-" + "f" * 32, user_id="x", total=1,
                         accepted_at_ms=base.accepted_at_ms, items=[OrderItem(sku_a, 4, 1)])
    async with pg.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await write_orders(conn, [over])


def test_an_order_without_lines_is_undecodable() -> None:
    from order_writer.store import decode_orders

    with pytest.raises(msgspec.ValidationError):
        decode_orders(b'[{"order_id": "x", "user_id": "u", "total": 1, "accepted_at_ms": 1}]')
