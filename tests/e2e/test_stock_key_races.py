"""A SKU's Redis stock key against every other change of its stock, each race forced.

A checkout reads the catalog from PostgreSQL and then reserves in Redis. The proxy in front of
Redis freezes the checkout's reservation call while a flash sale takes the SKU's units or staff
cut or raise its stock, so the reservation lands exactly after the change committed. Redis must
then decide from the change, never from a number read before it: the units are sold once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis
from redis.asyncio.connection import parse_url

from mall.app import create_app
from mall.keys import Keys
from mall.lua import Script
from mall.settings import Settings
from tests.conftest import running_writer
from tests.e2e.helpers import wait_persisted
from tests.redis_proxy import RedisHoldProxy
from tests.stack import auth, window

STAFF = "stockstaff"
DEADLINE_S = 60


@contextlib.asynccontextmanager
async def app_behind_proxy(settings: Settings) -> AsyncIterator[tuple[TestClient,
                                                                      RedisHoldProxy]]:
    proxy = RedisHoldProxy(int(parse_url(settings.redis_url)["port"]))
    await proxy.start()
    try:
        async with running_writer(settings):
            client = TestClient(TestServer(create_app(settings.with_(redis_url=proxy.url()))))
            await client.start_server()
            try:
                yield client, proxy
            finally:
                await client.close()
    finally:
        await proxy.close()


async def new_sku(client: TestClient, settings: Settings, stock: int) -> int:
    resp = await client.post("/api/v1/admin/products", headers=auth(settings, STAFF, "staff"),
                             json={"name": "Race kettle", "skus": [{"price": 900,
                                                                     "stock": stock}]})
    assert resp.status == 201, await resp.text()
    return int((await resp.json())["skus"][0]["id"])


async def checkout(client: TestClient, settings: Settings, user: str, sku: int,
                   qty: int) -> tuple[int, dict[str, Any]]:
    resp = await client.post("/api/v1/checkout", headers=auth(settings, user),
                             json={"items": [{"sku_id": sku, "qty": qty}],
                                   "delivery": "pickup"})
    return resp.status, dict(await resp.json())


async def frozen_checkout(client: TestClient, settings: Settings, proxy: RedisHoldProxy,
                          user: str, sku: int, qty: int) -> asyncio.Task[tuple[int, dict]]:
    """A checkout stopped at its first reservation call, its catalog read done."""
    proxy.hold(Script(Redis(), "reserve").sha.encode())
    task = asyncio.create_task(checkout(client, settings, user, sku, qty))
    await asyncio.wait_for(proxy.held.wait(), DEADLINE_S)
    return task


async def sku_row(pg: asyncpg.Pool, sku: int) -> tuple[int, int]:
    row = await pg.fetchrow("SELECT stock, sold FROM skus WHERE id = $1", sku)
    return row["stock"], row["sold"]


async def test_a_flash_sale_taking_the_units_of_a_fresh_sku_wins_over_a_stale_checkout(
    own_database_settings: Settings, redis: Redis
) -> None:
    settings = own_database_settings
    keys = Keys(settings.namespace)
    pg = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        async with app_behind_proxy(settings) as (client, proxy):
            sku = await new_sku(client, settings, 5)
            assert await redis.get(keys.sku_stock(sku)) is None  # fresh: no key yet
            task = await frozen_checkout(client, settings, proxy, "racer1", sku, 5)
            starts_at, ends_at = window(-1, 600)
            resp = await client.post(
                "/api/v1/admin/flash-sales", headers=auth(settings, STAFF, "staff"),
                json={"sku_id": sku, "price": 500, "stock": 5, "per_user_limit": 5,
                      "starts_at": starts_at, "ends_at": ends_at})
            assert resp.status == 201, await resp.text()
            proxy.release()
            status, body = await task
            assert (status, body["error"]["code"]) == (409, "insufficient_stock"), body
            assert int(await redis.get(keys.sku_stock(sku))) == 0
            assert await sku_row(pg, sku) == (0, 0)
            # the sale sells its five units, and they persist
            resp = await client.post(f"/api/v1/flash-sales/{(await resp.json())['id']}/orders",
                                     headers=auth(settings, "fan1"), json={"qty": 5})
            assert resp.status == 202, await resp.text()
            await wait_persisted(client, settings, "fan1", (await resp.json())["order_id"],
                                 timeout_s=DEADLINE_S)
    finally:
        await pg.close()


async def test_a_staff_stock_cut_wins_over_a_stale_checkout(
    own_database_settings: Settings, redis: Redis
) -> None:
    settings = own_database_settings
    keys = Keys(settings.namespace)
    pg = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        async with app_behind_proxy(settings) as (client, proxy):
            sku = await new_sku(client, settings, 5)
            task = await frozen_checkout(client, settings, proxy, "racer2", sku, 4)
            resp = await client.patch(f"/api/v1/admin/skus/{sku}",
                                      headers=auth(settings, STAFF, "staff"), json={"stock": 2})
            assert resp.status == 200, await resp.text()
            proxy.release()
            status, body = await task
            assert (status, body["error"]["code"]) == (409, "insufficient_stock"), body
            assert body["error"]["details"]["available"] == 2
            assert int(await redis.get(keys.sku_stock(sku))) == 2
            status, body = await checkout(client, settings, "racer2", sku, 2)
            assert status == 202, body
            await wait_persisted(client, settings, "racer2", body["order_id"],
                                 timeout_s=DEADLINE_S)
            assert await sku_row(pg, sku) == (2, 2)
            assert int(await redis.get(keys.sku_stock(sku))) == 0
    finally:
        await pg.close()


async def test_a_raise_committed_while_the_key_is_created_counts_once(
    own_database_settings: Settings, redis: Redis
) -> None:
    """The raise is committed in PostgreSQL and frozen before it reaches Redis; a checkout
    creates the key meanwhile from PostgreSQL, which already has the units. When the raise
    reaches Redis it must not add them a second time."""
    settings = own_database_settings
    keys = Keys(settings.namespace)
    pg = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        async with app_behind_proxy(settings) as (client, proxy):
            sku = await new_sku(client, settings, 3)
            proxy.hold(b"apply")  # lua/stock_give.lua's step after the commit
            raise_task = asyncio.create_task(client.patch(
                f"/api/v1/admin/skus/{sku}", headers=auth(settings, STAFF, "staff"),
                json={"stock": 10}))
            await asyncio.wait_for(proxy.held.wait(), DEADLINE_S)
            assert await sku_row(pg, sku) == (10, 0)  # committed
            status, body = await checkout(client, settings, "racer3", sku, 1)
            assert status == 202, body
            proxy.release()
            resp = await raise_task
            assert resp.status == 200, await resp.text()
            assert int(await redis.get(keys.sku_stock(sku))) == 9
            await wait_persisted(client, settings, "racer3", body["order_id"],
                                 timeout_s=DEADLINE_S)
            status, body = await checkout(client, settings, "racer3", sku, 10)
            assert (status, body["error"]["details"]["available"]) == (409, 9), body
    finally:
        await pg.close()
