"""`mall reconcile` against `mall serve` and `mall writer` as real processes: no drift after a
burst, drift found and repaired, and a total loss of the namespace's Redis state rebuilt so
buying works again without oversell or a user over the limit."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter

import aio_pika
import aiohttp
import asyncpg
import orjson
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from mall.app import create_app
from mall.keys import Keys, SaleKeys
from mall.settings import Settings
from mall.topology import Topology
from seckill.drift import drift_ctx
from tests.conftest import running_writer
from tests.e2e.burst import Attempt, fire
from tests.e2e.test_campaigns_end import wait_for
from tests.pg_locks import holding, wait_lock_waiter
from tests.stack import ROOT, Stack, auth, request_json, window

STOCK = 60
LIMIT = 2


async def run_cli(settings: Settings, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mall.cli", "reconcile", "--json", "--quiet-s", "0.5", *args,
        env=settings.process_env(), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    assert out, err.decode()
    return proc.returncode, orjson.loads(out)


async def create_sale(url: str, settings: Settings, stock: int, limit: int,
                      sku_stock: int = 1000) -> tuple[int, int]:
    staff = auth(settings, "ops", "staff")
    async with aiohttp.ClientSession() as session:
        status, product = await request_json(
            session, "POST", f"{url}/api/v1/admin/products", headers=staff,
            json={"name": "Reconciled phone", "skus": [{"price": 100, "stock": sku_stock}]})
        assert status == 201, product
        sku = product["skus"][0]["id"]
        starts_at, ends_at = window(-1, 600)
        status, sale = await request_json(
            session, "POST", f"{url}/api/v1/admin/flash-sales", headers=staff,
            json={"sku_id": sku, "price": 50, "stock": stock, "per_user_limit": limit,
                  "starts_at": starts_at, "ends_at": ends_at})
        assert status == 201, sale
    return sale["id"], sku


async def persisted(pg: asyncpg.Pool, sale_id: int, expected_rows: int,
                    timeout_s: float = 60) -> list[asyncpg.Record]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = await pg.fetch("SELECT o.order_id, o.user_id, i.qty FROM orders o"
                              " JOIN order_items i USING (order_id) WHERE o.sale_id = $1",
                              sale_id)
        if len(rows) >= expected_rows or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.2)


async def wait_clean(settings: Settings, timeout_s: float = 30) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while True:
        code, result = await run_cli(settings)
        if code == 0 or time.monotonic() > deadline:
            assert code == 0, result
            return result
        await asyncio.sleep(0.5)


def sale_of(result: dict, sale_id: int) -> dict:  # type: ignore[type-arg]
    return next(s for s in result["report"]["sales"] if s["sale_id"] == sale_id)


async def delete_namespace_keys(redis: Redis, namespace: str) -> int:
    """Every key of the namespace, and nothing else of the shared Redis."""
    deleted = 0
    async for key in redis.scan_iter(match=f"{namespace}:*", count=1000):
        deleted += await redis.delete(key)
    return deleted


async def test_drift_found_repaired_and_total_loss_rebuilt(own_database_settings: Settings,
                                                           redis: Redis) -> None:
    settings = own_database_settings
    pg = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
    stack = Stack.create(settings, "reconcile", workers=2)
    keys = Keys(settings.namespace)
    try:
        await stack.start()
        sale_id, sku_id = await create_sale(stack.url, settings, STOCK, LIMIT)
        k = keys.sale(sale_id)

        first = await fire(stack.url, settings, sale_id,
                           [Attempt(f"a{u}", None) for u in range(30)], concurrency=30)
        accepted = first.accepted()
        assert len(accepted) == 30, first.final_statuses()
        assert len(await persisted(pg, sale_id, 30)) == 30

        # settled after a burst: no drift
        result = await wait_clean(settings)
        sale = sale_of(result, sale_id)
        assert sale["expected_remaining"] == sale["redis_remaining"] == STOCK - 30
        assert sale["buyers_checked"] == 30

        # corrupted stock: drift (exit 1) in the oversell direction, then repaired
        await redis.incrby(k.stock, 5)
        code, result = await run_cli(settings)
        assert code == 1, result
        assert sale_of(result, sale_id)["drift_units"] == 5
        code, result = await run_cli(settings, "--repair")
        assert code == 0, result
        assert int(await redis.get(k.stock)) == STOCK - 30

        # lost buyers: a user could buy over the limit; found and rebuilt
        await redis.delete(k.buyers)
        code, result = await run_cli(settings, "--flash-sale", str(sale_id))
        assert code == 1 and sale_of(result, sale_id)["buyers_wrong"] == 30, result
        code, result = await run_cli(settings, "--flash-sale", str(sale_id), "--repair")
        assert code == 0, result
        assert await redis.hlen(k.buyers) == 30

        # lost meta: the sale is gone from Redis
        await redis.delete(k.meta)
        code, result = await run_cli(settings)
        assert code == 1 and "sale missing from Redis" in sale_of(result, sale_id)["problems"]
        code, result = await run_cli(settings, "--repair")
        assert code == 0, result
        assert (await redis.hget(k.meta, "per_user_limit")) == str(LIMIT).encode()

        # a wrong checkout stock of the SKU
        await redis.set(keys.sku_stock(sku_id), 999)
        code, result = await run_cli(settings)
        assert code == 1, result
        code, result = await run_cli(settings, "--repair")
        assert code == 0, result
        assert int(await redis.get(keys.sku_stock(sku_id))) == 1000 - STOCK

        # total loss of the namespace's Redis state, while the processes keep running
        assert await delete_namespace_keys(redis, settings.namespace) > 0
        code, result = await run_cli(settings)
        assert code == 1, result
        code, result = await run_cli(settings, "--repair")
        assert code == 0, result
        assert int(await redis.get(k.stock)) == STOCK - 30
        await asyncio.sleep(1.0)  # sold-out flags and the relay's stream list catch up

        # old buyers may buy once more, new ones twice; demand far above what is left
        users = [f"a{u}" for u in range(30)] + [f"b{u}" for u in range(50)]
        second = await fire(stack.url, settings, sale_id,
                            [Attempt(u, None) for u in users for _ in range(3)],
                            concurrency=60)
        again = second.accepted()
        assert set(second.final_statuses()) <= {202, 409, 429}, second.final_statuses()
        assert len(again) == STOCK - 30, "the rebuilt sale did not sell exactly what was left"
        rows = await persisted(pg, sale_id, STOCK)
        by_order = Counter(r["order_id"] for r in rows)
        assert set(by_order) == set(accepted) | set(again), "a 202 is missing or extra"
        assert max(by_order.values()) == 1
        assert sum(r["qty"] for r in rows) == STOCK
        per_user = Counter()
        for r in rows:
            per_user[r["user_id"]] += r["qty"]
        assert max(per_user.values()) <= LIMIT, "a user went over the limit after the rebuild"
        assert await pg.fetchval("SELECT sold FROM flash_sales WHERE id = $1", sale_id) == STOCK
        await wait_clean(settings)
    finally:
        stack.stop()
        await pg.close()


async def test_drift_metric_on_metrics(own_database_settings: Settings, redis: Redis) -> None:
    settings = own_database_settings.with_(drift_check_s=0.3)
    app = create_app(settings)
    app.cleanup_ctx.append(drift_ctx)
    async with running_writer(settings):
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            url = str(client.make_url("")).rstrip("/")
            sale_id, _ = await create_sale(url, settings, 10, 1)
            line = f'mall_drift_units{{sale_id="{sale_id}"}}'

            async def metric() -> float | None:
                resp = await client.get("/metrics")
                for text in (await resp.text()).splitlines():
                    if text.startswith(line):
                        return float(text.split()[-1])
                return None

            async def wait_metric(value: float) -> None:
                deadline = time.monotonic() + 20
                while (seen := await metric()) != value:
                    assert time.monotonic() < deadline, f"{line} is {seen}, not {value}"
                    await asyncio.sleep(0.2)

            await wait_metric(0.0)
            await redis.incrby(Keys(settings.namespace).sale(sale_id).stock, 3)
            await wait_metric(3.0)
        finally:
            await client.close()


async def ready_on_queue(settings: Settings) -> int:
    """Messages ready on the orders queue (a passive declare counts no unacknowledged ones)."""
    connection = await aio_pika.connect(settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(Topology.for_namespace(settings.namespace)
                                            .orders_queue, passive=True)
        return int(queue.declaration_result.message_count or 0)


async def buyers_and_stock(redis: Redis, k: SaleKeys) -> tuple[dict[bytes, bytes], bytes | None]:
    return await redis.hgetall(k.buyers), await redis.get(k.stock)


async def repair_when_settled(settings: Settings, timeout_s: float = 60) -> tuple[int, dict]:  # type: ignore[type-arg]
    """`mall reconcile --repair` until it runs (exit 3: not settled), as the fault runs do."""
    deadline = time.monotonic() + timeout_s
    while True:
        code, result = await run_cli(settings, "--repair")
        if code != 3 or time.monotonic() > deadline:
            return code, result
        await asyncio.sleep(0.5)


async def test_repair_refuses_while_a_stalled_writer_holds_a_sold_out_sale(
        own_database_settings: Settings, redis: Redis) -> None:
    """The writer holds every accepted order of a sold-out sale unacknowledged, stuck behind a
    row lock: nothing is ready on the queue and nothing moves, yet the repair must refuse, or
    it would give the units back and drop the buyers (they could buy again)."""
    settings = own_database_settings
    pg = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
    stack = Stack.create(settings, "reconcile-stalled")
    try:
        await stack.start()
        sale_id, _ = await create_sale(stack.url, settings, stock=5, limit=1)
        k = Keys(settings.namespace).sale(sale_id)
        await wait_for(lambda: pg.fetchval(
            "SELECT warmed_at IS NOT NULL FROM flash_sales WHERE id = $1", sale_id), True)
        async with holding(settings.database_url,
                           "SELECT 1 FROM flash_sales WHERE id = $1 FOR UPDATE", sale_id):
            burst = await fire(stack.url, settings, sale_id,
                               [Attempt(f"s{u}", None) for u in range(8)], concurrency=8)
            assert len(burst.accepted()) == 5, burst.final_statuses()
            await wait_lock_waiter(pg, "INSERT INTO orders")  # the writer, behind the lock
            await wait_for(lambda: redis.xlen(k.outbox), 0)
            await wait_for(lambda: ready_on_queue(settings), 0)  # all in the writer's hands
            assert await pg.fetchval("SELECT count(*) FROM orders WHERE sale_id = $1",
                                     sale_id) == 0
            held = await buyers_and_stock(redis, k)
            assert held[1] == b"0" and len(held[0]) == 5, held

            code, result = await run_cli(settings)  # the report: not settled, not a guess
            assert code == 3 and result["report"]["unpersisted_orders"] == 5, result
            for scope in ([], ["--flash-sale", str(sale_id)]):
                code, result = await run_cli(settings, "--repair", *scope)
                assert code == 3, result
                assert result["repaired"] == [] and result["after"] is None, result
                assert "held unacknowledged by a writer" in result["refused"], result
                assert result["report"]["unpersisted_orders"] == 5, result["report"]
                assert await buyers_and_stock(redis, k) == held, "a refused repair wrote"
            again = await fire(stack.url, settings, sale_id, [Attempt("s0", None)],
                               concurrency=1)
            assert again.final_statuses() == Counter({409: 1}), again.final_statuses()

        assert len(await persisted(pg, sale_id, 5)) == 5
        code, result = await repair_when_settled(settings)
        assert code == 0, result
        assert result["repaired"] == [] and result["report"]["settled"], result
        assert await buyers_and_stock(redis, k) == held, "a repair of a consistent sale wrote"
        assert await pg.fetchval("SELECT sold FROM flash_sales WHERE id = $1", sale_id) == 5
    finally:
        stack.stop()
        await pg.close()
