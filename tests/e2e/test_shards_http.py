"""A flash sale split into four stock shards, bought through `mall serve --workers 2` and
persisted by `mall writer`, as real processes: the same guarantees as one shard, a
cancellation back to the shard that sold, reconciliation across shards, and an early end that
gives back exactly what was not sold."""

from __future__ import annotations

import random
from collections import Counter

import aiohttp
import asyncpg
from redis.asyncio import Redis

from mall.keys import Keys, parse_sale_order_id
from mall.settings import Settings
from seckill.shards import ShardedStock, home_shard
from tests.e2e.burst import Attempt, assert_persisted_exactly, fire
from tests.e2e.test_campaigns_end import wait_for
from tests.e2e.test_reconcile import run_cli
from tests.stack import Stack, auth, request_json, window

SHARDS = 4
STOCK = 150
LIMIT = 2
USERS = 400
SKU_STOCK = 1000


async def remaining(redis: Redis, settings: Settings, sale_id: int) -> int:
    return int(await ShardedStock(redis, Keys(settings.namespace)).remaining(sale_id) or 0)


async def test_a_sharded_sale_through_real_processes(own_database_settings: Settings,
                                                     redis: Redis) -> None:
    settings = own_database_settings
    pg = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
    stack = Stack.create(settings, "shards", workers=2)
    staff = auth(settings, "ops", "staff")
    try:
        await stack.start()
        async with aiohttp.ClientSession(base_url=stack.url) as http:
            status, product = await request_json(http, "POST", "/api/v1/admin/products",
                                                 headers=staff, json={
                "name": "Sharded phone", "skus": [{"price": 100, "stock": SKU_STOCK}]})
            assert status == 201, product
            sku = product["skus"][0]["id"]
            starts_at, ends_at = window(-1, 600)
            terms = {"sku_id": sku, "price": 50, "stock": STOCK, "per_user_limit": LIMIT,
                     "starts_at": starts_at, "ends_at": ends_at}
            for bad in (0, 129, "4"):
                status, body = await request_json(http, "POST", "/api/v1/admin/flash-sales",
                                                  headers=staff, json={**terms, "shards": bad})
                assert status == 422, (bad, body)
            status, body = await request_json(
                http, "POST", "/api/v1/admin/flash-sales", headers=staff,
                json={**terms, "stock": 3, "shards": 4})
            assert (status, body["error"]["code"]) == (422, "invalid_request"), body
            status, sale = await request_json(http, "POST", "/api/v1/admin/flash-sales",
                                              headers=staff, json={**terms, "shards": SHARDS})
            assert status == 201, sale
            sale_id = sale["id"]
            assert sale["shards"] == SHARDS
            assert await pg.fetchval("SELECT count(*) FROM flash_sales") == 1
            status, view = await request_json(http, "GET", f"/api/v1/flash-sales/{sale_id}")
            assert (status, view["remaining"], view["stock"]) == (200, STOCK, STOCK)

        attempts: list[Attempt] = []
        for u in range(USERS):
            user = f"s{u}"
            attempts += [Attempt(user, f"{user}-k{n}") for n in range(3)]
            attempts += [Attempt(user, f"{user}-k0"), Attempt(user, None)]
        random.Random(7).shuffle(attempts)
        result = await fire(stack.url, settings, sale_id, attempts, concurrency=150)
        statuses = result.final_statuses()
        assert set(statuses) <= {202, 409}, statuses
        accepted = result.accepted()
        assert len(accepted) == STOCK
        for order_id, user in accepted.items():
            assert parse_sale_order_id(order_id) == (sale_id, home_shard(user, SHARDS))
        assert len({parse_sale_order_id(o)[1] for o in accepted}) == SHARDS  # type: ignore[index]
        assert await remaining(redis, settings, sale_id) == 0

        async def rows() -> int:
            return int(await pg.fetchval("SELECT count(*) FROM orders WHERE sale_id = $1",
                                         sale_id))

        await wait_for(rows, STOCK)
        await assert_persisted_exactly(pg, sale_id, accepted, STOCK, 0, LIMIT)
        code, report = await run_cli(settings, "--flash-sale", str(sale_id))
        assert code == 0, report

        # A cancellation gives its unit back to the shard of the order, for its buyer to use.
        order_id, user = next(iter(accepted.items()))
        home = home_shard(user, SHARDS)
        me = auth(settings, user)
        async with aiohttp.ClientSession(base_url=stack.url) as http:
            status, body = await request_json(http, "POST", f"/api/v1/orders/{order_id}/cancel",
                                              headers=me)
            assert status == 200, body
        home_stock = Keys(settings.namespace).sale(sale_id, home).stock

        async def home_units() -> int:
            return int(await redis.get(home_stock) or 0)

        await wait_for(home_units, 1)
        assert await remaining(redis, settings, sale_id) == 1
        code, report = await run_cli(settings, "--flash-sale", str(sale_id))
        assert code == 0, report

        # Ending now hands exactly that unit to the SKU, and nothing more is admitted.
        async with aiohttp.ClientSession(base_url=stack.url) as http:
            status, ended = await request_json(
                http, "POST", f"/api/v1/admin/flash-sales/{sale_id}/end", headers=staff)
            assert status == 200, ended
            assert ended["returned_to_sku"] == 1
            status, body = await request_json(
                http, "POST", f"/api/v1/flash-sales/{sale_id}/orders", json={"qty": 1},
                headers=auth(settings, "late-buyer"))
            assert (status, body["error"]["code"]) == (403, "ended"), body
        sku_row = await pg.fetchrow("SELECT stock, sold FROM skus WHERE id = $1", sku)
        assert sku_row["stock"] - sku_row["sold"] == SKU_STOCK - STOCK + 1
        sale_row = await pg.fetchrow(
            "SELECT sold, returned_to_sku, stock FROM flash_sales WHERE id = $1", sale_id)
        assert sale_row["sold"] + sale_row["returned_to_sku"] == STOCK
        statuses_in_pg = Counter(r["status"] for r in await pg.fetch(
            "SELECT status FROM orders WHERE sale_id = $1", sale_id))
        assert statuses_in_pg == {"pending_payment": STOCK - 1, "cancelled": 1}
    finally:
        stack.stop()
        await pg.close()
