"""A customer's whole journey through the API: cart, checkout, payment, shipping, receipt and
a refund, checked in Redis and PostgreSQL at every step."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from mall.keys import Keys
from mall.settings import Settings
from tests.e2e.helpers import wait_persisted
from tests.stack import auth

ADDRESS = {"recipient": "王五", "phone": "+8613700137000", "province": "广东",
           "city": "深圳", "line": "深南大道 3 号"}


async def call(client: TestClient, method: str, path: str, headers: dict[str, str],
               body: Any = None, expect: int = 200) -> Any:
    resp = await client.request(method, path, headers=headers, json=body)
    text = await resp.text()
    assert resp.status == expect, f"{method} {path}: {resp.status} {text}"
    return await resp.json() if text else None


async def eventually(probe, expected: object) -> None:  # type: ignore[no-untyped-def]
    for _ in range(200):
        if await probe() == expected:
            return
        await asyncio.sleep(0.05)
    assert await probe() == expected


async def test_cart_to_paid_to_delivered_to_refunded(client: TestClient, settings: Settings,
                                                     pg: asyncpg.Pool, redis: Redis) -> None:
    staff, me = auth(settings, "ops", "staff"), auth(settings, "journey")
    product = await call(client, "POST", "/api/v1/admin/products", staff, {
        "name": "旅行箱 Suitcase", "skus": [{"price": 12900, "stock": 5}]}, expect=201)
    sku = product["skus"][0]["id"]
    stock_key = Keys(settings.namespace).sku_stock(sku)

    async def sold() -> int:
        return int(await pg.fetchval("SELECT sold FROM skus WHERE id = $1", sku))

    async def in_redis() -> int:
        return int(await redis.get(stock_key) or -1)

    await call(client, "POST", "/api/v1/cart/items", me, {"sku_id": sku, "qty": 2})
    placed = await call(client, "POST", "/api/v1/checkout", {**me, "Idempotency-Key": "j-1"},
                        {"delivery": "standard", "address": ADDRESS}, expect=202)
    order_id = placed["order_id"]
    assert placed["total"] == 25800  # free standard delivery from 99.00
    order = await wait_persisted(client, settings, "journey", order_id)
    assert order["status"] == "pending_payment"
    assert (await in_redis(), await sold()) == (3, 2)

    payment = await call(client, "POST", f"/api/v1/orders/{order_id}/payments", me,
                         {"provider": "sandbox"}, expect=201)
    paid = await call(client, "POST", f"/api/v1/sandbox/pay/{payment['payment_id']}", me)
    assert paid["outcome"] == "paid"
    await call(client, "POST", f"/api/v1/admin/orders/{order_id}/ship", staff,
               {"carrier": "SF Express", "tracking_number": "SF1234567890"})
    await call(client, "POST", f"/api/v1/admin/orders/{order_id}/deliver", staff)
    done = await call(client, "POST", f"/api/v1/orders/{order_id}/confirm-receipt", me)
    assert done["status"] == "completed"
    assert (await in_redis(), await sold()) == (3, 2)  # nothing moves until a refund

    request = await call(client, "POST", f"/api/v1/orders/{order_id}/after-sales", me, {
        "type": "refund", "reason": "wrong colour", "photo_urls": []}, expect=201)
    await call(client, "POST", f"/api/v1/admin/after-sales/{request['id']}/approve", staff,
               {"note": "refunded"})
    view = await call(client, "GET", f"/api/v1/orders/{order_id}", me)
    assert view["status"] == "refunded"
    await eventually(in_redis, 5)
    assert await sold() == 0
    refunded = await pg.fetchval("SELECT refunded_amount FROM payments WHERE id = $1",
                                 payment["payment_id"])
    assert refunded == 25800
    history = await call(client, "GET", f"/api/v1/orders/{order_id}/history", me)
    path = [step["to_status"] for step in history["items"]]
    for status in ("pending_payment", "paid", "shipped", "delivered", "completed",
                   "refunded"):
        assert status in path, path
    # Someone else sees none of it.
    stranger = auth(settings, "stranger")
    await call(client, "GET", f"/api/v1/orders/{order_id}", stranger, expect=404)
    await call(client, "GET", f"/api/v1/orders/{order_id}/history", stranger, expect=404)
