"""`mall reconcile` on real Redis, PostgreSQL and RabbitMQ: in-flight outbox entries are counted
exactly, and a system with orders on the queue is reported as not settled and not repaired."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable

import aio_pika
import asyncpg
import orjson
import pytest
from redis.asyncio import Redis

from mall.keys import Keys, make_order_id
from mall.reconcile import NOT_SETTLED, Reconciler, reconcile
from mall.resources import make_redis
from mall.settings import Settings
from mall.stock_mirror import StockMirror
from mall.topology import Topology
from seckill.campaign_admin import CampaignAdmin
from seckill.relay import OutboxRelay
from tests.integration.factories import insert_sale
from tests.integration.test_admit_lua import Sale
from tests.integration.test_relay import run_relay_until
from tests.pg_locks import holding, wait_lock_waiter
from tests.stack import ROOT

QUIET_S = 0.3


@pytest.fixture
async def own(own_database_settings: Settings) -> AsyncIterator[tuple[Settings, asyncpg.Pool,
                                                                      Redis]]:
    settings = own_database_settings
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
    redis = make_redis(settings)
    yield settings, pool, redis
    await redis.aclose()
    await pool.close()


async def run_cli(settings: Settings, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mall.cli", "reconcile", "--quiet-s", str(QUIET_S), *args,
        env=settings.process_env(), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def fake_admission(sale_id: int, sku_id: int, user: str) -> bytes:
    return orjson.dumps({"order_id": make_order_id(sale_id, uuid.uuid4().hex), "user_id": user,
                         "sale_id": sale_id, "sku_id": sku_id, "qty": 1, "price": 500,
                         "total": 500, "accepted_at_ms": 1})


async def admit_without_relay(redis: Redis, keys: Keys, sale_id: int, sku_id: int,
                              user: str) -> bytes:
    """What admit.lua does to the sale's keys, with no relay running to move the entry on."""
    k = keys.sale(sale_id)
    order = fake_admission(sale_id, sku_id, user)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.decrby(k.stock, 1)
        pipe.hincrby(k.buyers, user, 1)
        pipe.xadd(k.outbox, {"o": order})
        await pipe.execute()
    return order


async def test_outbox_entries_count_as_in_flight_exactly(own) -> None:  # type: ignore[no-untyped-def]
    settings, pool, redis = own
    keys = Keys(settings.namespace)
    sale_id, sku_id = await insert_sale(pool, stock=10)
    await CampaignAdmin(pool, redis, keys, StockMirror(redis, keys)).warm_up(sale_id)

    clean = await reconcile(pool, redis, settings, quiet_s=QUIET_S)
    assert clean.exit_code == 0, clean.lines()
    assert clean.report.sales[0].expected_remaining == 10

    for user in ("u1", "u2", "u2"):
        await admit_without_relay(redis, keys, sale_id, sku_id, user)
    busy = await reconcile(pool, redis, settings, quiet_s=QUIET_S)
    sale = busy.report.sales[0]
    assert (sale.in_flight_units, sale.redis_remaining, sale.expected_remaining) == (3, 7, 7)
    assert sale.buyers_checked == 2 and not sale.problems
    assert busy.exit_code == 0, busy.lines()

    # a lost buyer entry of an order still in the outbox is drift, and a repair restores it
    await redis.hdel(keys.sale(sale_id).buyers, "u2")
    drifted = await reconcile(pool, redis, settings, quiet_s=QUIET_S)
    assert drifted.exit_code == 1
    assert drifted.report.sales[0].buyers_examples == {"u2": [0, 2]}
    repaired = await reconcile(pool, redis, settings, repair=True, quiet_s=QUIET_S)
    assert repaired.exit_code == 0, repaired.lines()
    assert await redis.hget(keys.sale(sale_id).buyers, "u2") == b"2"
    assert int(await redis.get(keys.sale(sale_id).stock)) == 7


async def test_orders_on_the_queue_make_the_system_not_settled(own) -> None:  # type: ignore[no-untyped-def]
    settings, pool, redis = own
    keys = Keys(settings.namespace)
    sale_id, sku_id = await insert_sale(pool, stock=10)
    await CampaignAdmin(pool, redis, keys, StockMirror(redis, keys)).warm_up(sale_id)
    # an order that left the outbox for RabbitMQ, with no writer to persist it
    order = await admit_without_relay(redis, keys, sale_id, sku_id, "q1")
    await redis.delete(keys.sale(sale_id).outbox)
    await redis.xgroup_create(keys.sale(sale_id).outbox, "relay", id="0", mkstream=True)
    topology = Topology.for_namespace(settings.namespace)
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange, _, _ = await topology.declare(channel)
        await exchange.publish(aio_pika.Message(b"[" + order + b"]"),
                               topology.orders_routing_key)

    code, out = await run_cli(settings)
    assert code == NOT_SETTLED, out
    assert "settled: no" in out and "orders queue" in out

    await redis.set(keys.sale(sale_id).stock, 10)  # looks like drift, but the queue holds 1
    code, out = await run_cli(settings, "--repair")
    assert code == NOT_SETTLED, out
    assert "repair refused" in out and "--force" in out
    assert await redis.get(keys.sale(sale_id).stock) == b"10", "a refused repair wrote"

    # forced, the repair cannot see the queued unit: it writes what PostgreSQL knows
    code, out = await run_cli(settings, "--repair", "--force", "--json")
    assert code == NOT_SETTLED, out
    result = orjson.loads(out[out.index("{"):])
    assert result["repaired"] and result["refused"] is None
    assert await redis.get(keys.sale(sale_id).stock) == b"10"
    assert result["after"]["settled"] is False


async def drifted_sale(settings: Settings, pool: asyncpg.Pool, redis: Redis) -> Sale:
    """A live sale of 5 units whose Redis stock offers 2 too many: a repair has work to do."""
    keys = Keys(settings.namespace)
    sale_id, _ = await insert_sale(pool, stock=5)
    await CampaignAdmin(pool, redis, keys, StockMirror(redis, keys)).warm_up(sale_id)
    await redis.incrby(keys.sale(sale_id).stock, 2)
    return Sale(redis, keys, sale_id)


async def buy_and_relay(redis: Redis, settings: Settings, sale: Sale) -> None:
    """A purchase through admit.lua that the real relay then moves to RabbitMQ: past the
    outbox, where no writer takes it (a writer holding it looks the same to Redis)."""
    code, _, remaining = await sale.admit("late")
    assert (code, remaining) == (0, 6)

    async def relayed() -> bool:
        return await redis.xlen(sale.k.outbox) == 0

    await run_relay_until(OutboxRelay(redis, sale.keys, settings), relayed)


async def repair_outcome(repair: Awaitable[list[str]]) -> RuntimeError | None:
    try:
        await repair
    except RuntimeError as exc:
        return exc
    return None


async def assert_purchase_kept(redis: Redis, sale: Sale, raced: RuntimeError | None) -> None:
    assert await redis.hget(sale.k.buyers, "late") == b"1", \
        "the repair rebuilt the sale over a purchase it had not counted"
    assert await redis.get(sale.k.stock) == b"6", "the repair gave the purchased unit back"
    assert raced is not None and "after the check" in str(raced), raced


async def test_a_purchase_between_the_check_and_the_repair_stops_it(own) -> None:  # type: ignore[no-untyped-def]
    settings, pool, redis = own
    sale = await drifted_sale(settings, pool, redis)
    reconciler = Reconciler(pool, redis, settings)
    report = await reconciler.check(quiet_s=QUIET_S)
    assert report.settled and report.drift, report.lines()

    await buy_and_relay(redis, settings, sale)
    await assert_purchase_kept(redis, sale, await repair_outcome(reconciler.repair(report)))

    # started over, the command sees the order past the outbox and refuses
    outcome = await reconcile(pool, redis, settings, repair=True, quiet_s=QUIET_S)
    assert outcome.exit_code == NOT_SETTLED and outcome.refused, outcome.lines()
    assert outcome.report.unpersisted_orders == 1, outcome.lines()
    assert await redis.get(sale.k.stock) == b"6"


async def test_a_purchase_inside_the_repairs_watch_stops_it(own) -> None:  # type: ignore[no-untyped-def]
    settings, pool, redis = own
    sale = await drifted_sale(settings, pool, redis)
    reconciler = Reconciler(pool, redis, settings)
    report = await reconciler.check(quiet_s=QUIET_S)
    assert report.settled and report.drift, report.lines()

    # the repair reads the sale's holders under WATCH: hold it there while a purchase lands
    async with holding(settings.database_url, "LOCK TABLE order_items IN ACCESS EXCLUSIVE MODE"):
        repair = asyncio.create_task(repair_outcome(reconciler.repair(report)))
        await wait_lock_waiter(pool, "order_items")
        await buy_and_relay(redis, settings, sale)
    await assert_purchase_kept(redis, sale, await repair)
