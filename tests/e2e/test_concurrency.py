"""Thousands of concurrent requests, more buyers than stock, with duplicates and replays,
against `mall serve --workers 2` and `mall writer` as real processes."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import aiohttp
import asyncpg
from redis.asyncio import Redis

from mall.settings import Settings
from tests.e2e.burst import Attempt, assert_persisted_exactly, fire, settle
from tests.stack import Stack, auth, request_json, window

STOCK = 200
LIMIT = 2
USERS = 700


async def create_sale_http(url: str, settings: Settings, stock: int, limit: int) -> int:
    async with aiohttp.ClientSession() as session:
        status, product = await request_json(
            session, "POST", f"{url}/api/v1/admin/products",
            headers=auth(settings, "ops", "admin"),
            json={"name": "Hot phone", "skus": [{"price": 100, "stock": stock}]},
        )
        assert status == 201, product
        starts_at, ends_at = window(-1, 600)
        status, sale = await request_json(
            session, "POST", f"{url}/api/v1/admin/flash-sales",
            headers=auth(settings, "ops", "admin"),
            json={"sku_id": product["skus"][0]["id"], "price": 50, "stock": stock,
                  "per_user_limit": limit, "starts_at": starts_at, "ends_at": ends_at},
        )
        assert status == 201, sale
        return int(sale["id"])


async def test_burst_sells_exactly_the_stock(fresh_settings: Settings, pg: asyncpg.Pool,
                                             redis: Redis) -> None:
    stack = Stack.create(fresh_settings, "concurrency", workers=2)
    try:
        await stack.start()
        sale_id = await create_sale_http(stack.url, fresh_settings, STOCK, LIMIT)
        attempts: list[Attempt] = []
        for u in range(USERS):
            user = f"c{u}"
            # Three distinct clicks, one replay of the first click, one request without a key.
            attempts += [Attempt(user, f"{user}-k{n}") for n in range(3)]
            attempts += [Attempt(user, f"{user}-k0"), Attempt(user, None)]
        random.shuffle(attempts)
        result = await fire(stack.url, fresh_settings, sale_id, attempts, concurrency=200)

        statuses = result.final_statuses()
        assert set(statuses) <= {202, 409}, statuses
        assert sum(statuses.values()) == len(attempts)
        accepted = result.accepted()
        assert len(accepted) == STOCK, "distinct accepted orders must equal the stock"
        per_user = Counter(accepted.values())
        assert max(per_user.values()) <= LIMIT
        by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
        for a in result.attempts:
            if a.key and a.order_id:
                by_key[(a.user, a.key)].add(a.order_id)
        assert all(len(ids) == 1 for ids in by_key.values()), "a replay got a second order"

        remaining, rows = await settle(pg, redis, fresh_settings, sale_id, STOCK)
        assert (remaining, rows) == (0, STOCK)
        await assert_persisted_exactly(pg, sale_id, accepted, STOCK, remaining, LIMIT)
    finally:
        stack.stop()
