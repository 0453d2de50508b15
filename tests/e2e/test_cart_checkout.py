"""Cart and regular checkout through the real app, relay and writer."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from mall.keys import Keys
from mall.settings import Settings
from tests.e2e.helpers import wait_persisted
from tests.stack import auth

ADDRESS = {"recipient": "张三", "phone": "+8613800138000", "province": "上海",
           "city": "上海", "line": "人民路 1 号"}


async def product(client: TestClient, settings: Settings, skus: list[tuple[int, int]]
                  ) -> tuple[int, list[int]]:
    resp = await client.post(
        "/api/v1/admin/products", headers=auth(settings, "staff1", "staff"),
        json={"name": "Cart thing", "skus": [{"price": p, "stock": s} for p, s in skus]})
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return body["id"], [s["id"] for s in body["skus"]]


async def cart(client: TestClient, settings: Settings, user: str) -> dict:
    resp = await client.get("/api/v1/cart", headers=auth(settings, user))
    assert resp.status == 200
    return dict(await resp.json())


async def test_cart_lines_prices_and_limits(client: TestClient, settings: Settings) -> None:
    _, (a, b) = await product(client, settings, [(1000, 5), (250, 2)])
    h = auth(settings, "carter")
    assert (await client.post("/api/v1/cart/items", headers=h,
                              json={"sku_id": a, "qty": 2})).status == 200
    assert (await client.post("/api/v1/cart/items", headers=h,
                              json={"sku_id": a, "qty": 1})).status == 200
    resp = await client.put(f"/api/v1/cart/items/{b}", headers=h, json={"qty": 2})
    body = await resp.json()
    assert resp.status == 200
    lines = {i["sku_id"]: i for i in body["items"]}
    assert lines[a]["qty"] == 3 and lines[a]["line_total"] == 3000
    assert lines[b]["line_total"] == 500 and body["total"] == 3500
    resp = await client.post("/api/v1/cart/items", headers=h, json={"sku_id": a, "qty": 3})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "insufficient_stock"
    assert (await cart(client, settings, "carter"))["items"][0]["qty"] == 3  # unchanged
    for bad in ({"sku_id": a, "qty": 0}, {"sku_id": a, "qty": 100}, {"sku_id": "x"},
                {"sku_id": a, "qty": 1, "price": 1}):
        assert (await client.post("/api/v1/cart/items", headers=h, json=bad)).status == 422
    resp = await client.post("/api/v1/cart/items", headers=h, json={"sku_id": 10**15, "qty": 1})
    assert resp.status == 404
    assert (await client.delete(f"/api/v1/cart/items/{b}", headers=h)).status == 200
    assert [i["sku_id"] for i in (await cart(client, settings, "carter"))["items"]] == [a]
    assert (await cart(client, settings, "someone-else"))["items"] == []
    assert (await client.get("/api/v1/cart")).status == 401
    assert (await client.delete("/api/v1/cart", headers=h)).status == 204
    assert (await cart(client, settings, "carter"))["items"] == []


async def test_unpublished_product_cannot_be_carted_or_bought(client: TestClient,
                                                              settings: Settings) -> None:
    product_id, (a,) = await product(client, settings, [(500, 5)])
    h = auth(settings, "unpub")
    assert (await client.post("/api/v1/cart/items", headers=h,
                              json={"sku_id": a, "qty": 1})).status == 200
    resp = await client.post(f"/api/v1/admin/products/{product_id}/unpublish",
                             headers=auth(settings, "staff1", "staff"))
    assert resp.status in (200, 204), await resp.text()
    line = (await cart(client, settings, "unpub"))["items"][0]
    assert line["purchasable"] is False
    resp = await client.post("/api/v1/cart/items", headers=h, json={"sku_id": a, "qty": 1})
    assert resp.status == 404
    resp = await client.post("/api/v1/checkout", headers=h,
                             json={"items": [{"sku_id": a, "qty": 1}], "delivery": "pickup"})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_available"


async def test_checkout_from_cart_to_pending_payment(client: TestClient, settings: Settings,
                                                     pg: asyncpg.Pool, redis: Redis) -> None:
    _, (a, b) = await product(client, settings, [(1000, 5), (3000, 5)])
    h = auth(settings, "buyer-co")
    await client.post("/api/v1/cart/items", headers=h, json={"sku_id": a, "qty": 2})
    await client.post("/api/v1/cart/items", headers=h, json={"sku_id": b, "qty": 1})
    resp = await client.post("/api/v1/checkout", headers={**h, "Idempotency-Key": "co-1"},
                             json={"delivery": "express", "address": ADDRESS})
    assert resp.status == 202, await resp.text()
    placed = await resp.json()
    assert placed["status"] == "queued" and placed["total"] == 5000 + 2000
    again = await client.post("/api/v1/checkout", headers={**h, "Idempotency-Key": "co-1"},
                              json={"delivery": "express", "address": ADDRESS})
    assert again.status == 202 and (await again.json())["order_id"] == placed["order_id"]
    assert (await cart(client, settings, "buyer-co"))["items"] == []
    order = await wait_persisted(client, settings, "buyer-co", placed["order_id"])
    assert order["status"] == "pending_payment" and order["total"] == 7000
    assert sorted((i["sku_id"], i["qty"]) for i in order["items"]) == [(a, 2), (b, 1)]
    sold = dict(await pg.fetch("SELECT id, sold FROM skus WHERE id = ANY($1::bigint[])", [a, b]))
    assert sold == {a: 2, b: 1}
    keys = Keys(settings.namespace)
    assert int(await redis.get(keys.sku_stock(a))) == 3
    resp = await client.get(f"/api/v1/orders/{placed['order_id']}",
                            headers=auth(settings, "intruder"))
    assert resp.status == 404


async def test_checkout_bad_input(client: TestClient, settings: Settings) -> None:
    _, (a,) = await product(client, settings, [(100, 1)])
    h = auth(settings, "bad-co")
    cases = [
        ({"items": [{"sku_id": a, "qty": 1}]}, 422),  # no address for standard delivery
        ({"items": [], "delivery": "pickup"}, 422),
        ({"delivery": "pickup"}, 422),  # empty cart
        ({"items": [{"sku_id": a, "qty": 1}], "delivery": "drone"}, 422),
        ({"items": [{"sku_id": a, "qty": 1}], "delivery": "pickup", "coupon": "FREE"}, 422),
        ({"items": [{"sku_id": a, "qty": 2}], "delivery": "pickup"}, 409),
    ]
    for body, status in cases:
        resp = await client.post("/api/v1/checkout", headers=h, json=body)
        assert resp.status == status, (body, await resp.text())


@pytest.mark.parametrize("buyers", [60])
async def test_concurrent_checkouts_sell_exactly_the_stock(
    client: TestClient, settings: Settings, pg: asyncpg.Pool, buyers: int
) -> None:
    _, (a, b) = await product(client, settings, [(100, 20), (200, 30)])

    async def attempt(i: int) -> tuple[int, dict]:
        resp = await client.post("/api/v1/checkout", headers=auth(settings, f"rush{i}"),
                                 json={"items": [{"sku_id": a, "qty": 1}, {"sku_id": b, "qty": 2}],
                                       "delivery": "pickup"})
        return resp.status, await resp.json()

    results = await asyncio.gather(*(attempt(i) for i in range(buyers)))
    accepted = [body["order_id"] for status, body in results if status == 202]
    assert len(accepted) == 15  # b runs out first: 30 units / 2
    assert {s for s, _ in results} == {202, 409}
    for order_id in accepted:
        user = next(f"rush{i}" for i, (s, body) in enumerate(results)
                    if body.get("order_id") == order_id)
        await wait_persisted(client, settings, user, order_id)
    sold = dict(await pg.fetch("SELECT id, sold FROM skus WHERE id = ANY($1::bigint[])", [a, b]))
    assert sold == {a: 15, b: 30}


async def test_staff_stock_changes_reach_checkout_stock(client: TestClient, settings: Settings,
                                                        pg: asyncpg.Pool, redis: Redis) -> None:
    _, (a,) = await product(client, settings, [(100, 10)])
    h = auth(settings, "mirror")
    resp = await client.post("/api/v1/checkout", headers=h,
                             json={"items": [{"sku_id": a, "qty": 1}], "delivery": "pickup"})
    await wait_persisted(client, settings, "mirror", (await resp.json())["order_id"])
    key = Keys(settings.namespace).sku_stock(a)
    assert int(await redis.get(key)) == 9
    staff = auth(settings, "staff1", "staff")
    resp = await client.patch(f"/api/v1/admin/skus/{a}", headers=staff, json={"stock": 14})
    assert resp.status == 200 and int(await redis.get(key)) == 13
    await redis.decrby(key, 3)  # three units held by orders on their way to PostgreSQL
    # 1 sold + 3 in flight: stock 3 would be an oversell (PostgreSQL alone would allow it).
    resp = await client.patch(f"/api/v1/admin/skus/{a}", headers=staff, json={"stock": 3})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "stock_in_flight"
    assert await pg.fetchval("SELECT stock FROM skus WHERE id = $1", a) == 14
    assert int(await redis.get(key)) == 10
    resp = await client.patch(f"/api/v1/admin/skus/{a}", headers=staff, json={"stock": 5})
    assert resp.status == 200 and int(await redis.get(key)) == 1


async def test_checkout_to_a_saved_address_and_not_to_someone_elses(
    client: TestClient, settings: Settings
) -> None:
    from tests.e2e.accounts_helpers import bearer, register

    _, (a,) = await product(client, settings, [(20000, 5)])
    owner = await register(client)
    other = await register(client)
    owner_auth = bearer(owner["tokens"]["access_token"])
    resp = await client.post("/api/v1/me/addresses", headers=owner_auth,
                             json={"recipient": "李四", "phone": "+8613900139000",
                                   "province": "北京", "city": "北京", "district": "朝阳",
                                   "line": "建国路 2 号"})
    assert resp.status == 201, await resp.text()
    address_id = (await resp.json())["id"]
    body = {"items": [{"sku_id": a, "qty": 1}], "address_id": address_id}
    resp = await client.post("/api/v1/checkout", json=body,
                             headers=bearer(other["tokens"]["access_token"]))
    assert resp.status == 404
    resp = await client.post("/api/v1/checkout", json=body,
                             headers=bearer(owner["tokens"]["access_token"]))
    assert resp.status == 202, await resp.text()
    placed = await resp.json()
    assert placed["shipping_fee"] == 0  # standard delivery is free from 99.00
    order = await wait_persisted(client, settings, owner["user"]["user_id"], placed["order_id"])
    assert order["total"] == 20000


async def test_cancelled_checkout_gives_its_units_back_once(
    client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis
) -> None:
    _, (a, b) = await product(client, settings, [(100, 3), (200, 3)])
    h = auth(settings, "changed-mind")
    resp = await client.post("/api/v1/checkout", headers=h, json={
        "items": [{"sku_id": a, "qty": 3}, {"sku_id": b, "qty": 1}], "delivery": "pickup"})
    order_id = (await resp.json())["order_id"]
    await wait_persisted(client, settings, "changed-mind", order_id)
    keys = Keys(settings.namespace)
    assert int(await redis.get(keys.sku_stock(a))) == 0
    cancels = await asyncio.gather(*(client.post(f"/api/v1/orders/{order_id}/cancel",
                                                 headers=h) for _ in range(3)))
    assert sorted(r.status for r in cancels) == [200, 409, 409]
    for _ in range(100):
        if int(await redis.get(keys.sku_stock(a))) == 3:
            break
        await asyncio.sleep(0.05)
    assert int(await redis.get(keys.sku_stock(a))) == 3
    assert int(await redis.get(keys.sku_stock(b))) == 2 + 1
    sold = dict(await pg.fetch("SELECT id, sold FROM skus WHERE id = ANY($1::bigint[])", [a, b]))
    assert sold == {a: 0, b: 0}
    resp = await client.post("/api/v1/checkout", headers=auth(settings, "next-buyer"), json={
        "items": [{"sku_id": a, "qty": 3}], "delivery": "pickup"})
    assert resp.status == 202
