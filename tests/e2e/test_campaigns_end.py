"""Ending a flash sale early while buyers keep clicking, against `mall serve --workers 2` and
`mall writer` as real processes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import asyncpg
from redis.asyncio import Redis

from mall.keys import Keys
from mall.settings import Settings
from tests.stack import Stack, auth, request_json, token, window

SKU_STOCK = 1000
STOCK = 400
USERS = 1500
CONCURRENCY = 60
END_AFTER_ACCEPTED = 80


@dataclass
class Click:
    user: str
    sent_at: float = 0.0
    status: int = 0
    order_id: str | None = None


async def wait_for(probe, expected: object, timeout_s: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while (value := await probe()) != expected:
        assert time.monotonic() < deadline, f"{value!r} != {expected!r}"
        await asyncio.sleep(0.1)


async def test_end_early_under_concurrent_buying(own_database_settings: Settings,
                                                 redis: Redis) -> None:
    settings = own_database_settings
    pg = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
    stack = Stack.create(settings, "campaign-end", workers=2)
    staff = auth(settings, "ops", "staff")
    try:
        await stack.start()
        async with aiohttp.ClientSession() as session:
            status, product = await request_json(
                session, "POST", f"{stack.url}/api/v1/admin/products", headers=staff,
                json={"name": "Ending phone", "skus": [{"price": 100, "stock": SKU_STOCK}]})
            assert status == 201, product
            sku = product["skus"][0]["id"]
            starts_at, ends_at = window(-1, 600)
            status, sale = await request_json(
                session, "POST", f"{stack.url}/api/v1/admin/flash-sales", headers=staff,
                json={"sku_id": sku, "price": 50, "stock": STOCK, "per_user_limit": 1,
                      "starts_at": starts_at, "ends_at": ends_at})
            assert status == 201, sale
            sale_id = sale["id"]
            assert await sku_stock(pg, sku) == SKU_STOCK - STOCK

            clicks = [Click(f"e{u}") for u in range(USERS)]
            tokens = {c.user: token(settings, c.user) for c in clicks}
            queue: asyncio.Queue[Click] = asyncio.Queue()
            for c in clicks:
                queue.put_nowait(c)
            accepted_seen = asyncio.Event()
            ended: dict[str, float] = {}

            async def click(c: Click) -> None:
                c.sent_at = time.monotonic()
                c.status, body = await request_json(
                    session, "POST", f"{stack.url}/api/v1/flash-sales/{sale_id}/orders",
                    json={"qty": 1}, headers={"Authorization": f"Bearer {tokens[c.user]}"})
                if c.status == 202:
                    c.order_id = body["order_id"]
                    if sum(1 for x in clicks if x.status == 202) >= END_AFTER_ACCEPTED:
                        accepted_seen.set()

            async def buyer() -> None:
                while not queue.empty():
                    await click(queue.get_nowait())
                    if "done" in ended:  # after the end, slow down so the burst spans it
                        await asyncio.sleep(0.002)

            async def end() -> None:
                await accepted_seen.wait()
                ended["sent"] = time.monotonic()
                status, body = await request_json(
                    session, "POST", f"{stack.url}/api/v1/admin/flash-sales/{sale_id}/end",
                    headers=staff)
                ended["done"] = time.monotonic()
                assert status == 200, body
                assert body["state"] == "ended"

            await asyncio.gather(end(), *(buyer() for _ in range(CONCURRENCY)))

            statuses = {c.status for c in clicks}
            assert statuses <= {202, 403}, statuses
            late = [c for c in clicks if c.sent_at > ended["done"]]
            assert late, "the burst must go on after the end"
            assert all(c.status == 403 for c in late), "a request sent after the end got 202"
            accepted = {c.order_id: c.user for c in clicks if c.order_id}
            assert END_AFTER_ACCEPTED <= len(accepted) < STOCK

            # Every 202 persisted exactly once, including those still queued at the end.
            await wait_for(lambda: pg.fetchval(
                "SELECT count(*) FROM orders WHERE sale_id = $1", sale_id), len(accepted))
            rows = await pg.fetch("SELECT order_id, user_id, created_at FROM orders"
                                  " WHERE sale_id = $1", sale_id)
            assert {r["order_id"]: r["user_id"] for r in rows} == accepted
            meta = await redis.hgetall(Keys(settings.namespace).sale(sale_id).meta)
            closed_at_ms = int(meta[b"closed_at_ms"])
            assert all(r["created_at"].timestamp() * 1000 <= closed_at_ms + 1 for r in rows)

            sold = len(accepted)
            row = await pg.fetchrow("SELECT stock, sold, returned_to_sku, closed_at"
                                    " FROM flash_sales WHERE id = $1", sale_id)
            assert (row["stock"], row["sold"], row["returned_to_sku"]) == (
                STOCK, sold, STOCK - sold)
            assert await sku_stock(pg, sku) == SKU_STOCK - sold, "the SKU got the unsold back"

            # Ending again changes nothing.
            status, again = await request_json(
                session, "POST", f"{stack.url}/api/v1/admin/flash-sales/{sale_id}/end",
                headers=staff)
            assert status == 200 and again["returned_to_sku"] == STOCK - sold
            assert await sku_stock(pg, sku) == SKU_STOCK - sold

            # A cancellation after the end: the unit goes to the sale, then on to the SKU.
            order_id, user = next(iter(accepted.items()))
            status, body = await request_json(
                session, "POST", f"{stack.url}/api/v1/orders/{order_id}/cancel",
                headers=auth(settings, user))
            assert status == 200, body
            await wait_for(lambda: sku_stock(pg, sku), SKU_STOCK - sold + 1)
            row = await pg.fetchrow("SELECT sold, returned_to_sku FROM flash_sales"
                                    " WHERE id = $1", sale_id)
            assert (row["sold"], row["returned_to_sku"]) == (sold - 1, STOCK - sold + 1)
            status, body = await request_json(
                session, "POST", f"{stack.url}/api/v1/flash-sales/{sale_id}/orders",
                json={"qty": 1}, headers=auth(settings, user))
            assert status == 403 and body["error"]["code"] == "ended"
            status, report = await request_json(
                session, "GET", f"{stack.url}/api/v1/admin/flash-sales/{sale_id}/report",
                headers=staff)
            assert status == 200, report
            assert (report["sold"], report["accepted"], report["returned_to_sku"],
                    report["units_returned"], report["closed"]) == (
                sold - 1, sold - 1, STOCK - sold + 1, 1, True)
    finally:
        stack.stop()
        await pg.close()


async def sku_stock(pg: asyncpg.Pool, sku: int) -> int:
    return int(await pg.fetchval("SELECT stock FROM skus WHERE id = $1", sku))
