"""Price lists and member prices where customers meet them: the cart, checkout and the
product detail (cached in Redis), through the real app."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from catalog_api.availability import sellable_skus
from catalog_api.keys import CatalogKeys
from mall.settings import Settings
from tests.e2e.catalog_helpers import call, changes_of, new_product, staff_headers, unique
from tests.e2e.helpers import wait_persisted
from tests.stack import auth, iso

BASE = "/api/v1/admin/price-lists"


async def price_list(client: TestClient, settings: Settings, items: dict[int, int],
                     start_in_s: float = -60, length_s: float = 3600) -> dict[str, Any]:
    starts = datetime.now(UTC) + timedelta(seconds=start_in_s)
    _, made = await call(client, "POST", BASE, 201, headers=staff_headers(settings), json={
        "name": unique("限时"), "starts_at": iso(starts),
        "ends_at": iso(starts + timedelta(seconds=length_s)),
        "items": [{"sku_id": s, "price": p} for s, p in items.items()]})
    return dict(made)


async def end(client: TestClient, settings: Settings, list_id: int) -> None:
    await call(client, "POST", f"{BASE}/{list_id}/end", 200, headers=staff_headers(settings))


async def cart_prices(client: TestClient, settings: Settings, user: str) -> dict[int, int]:
    _, cart = await call(client, "GET", "/api/v1/cart", 200, headers=auth(settings, user))
    return {i["sku_id"]: i["unit_price"] for i in cart["items"]}


async def detail(client: TestClient, product_id: int, **headers: str
                 ) -> tuple[int, str | None, Any]:
    resp = await client.get(f"/api/v1/products/{product_id}", headers=headers)
    body = await resp.json() if resp.status == 200 else None
    return resp.status, resp.headers.get("ETag"), body


async def test_an_active_list_lowers_cart_and_checkout_prices(
        client: TestClient, settings: Settings) -> None:
    product = await new_product(client, settings, skus=[
        {"price": 1000, "stock": 10}, {"price": 2000, "stock": 10}, {"price": 3000, "stock": 10}])
    a, b, c = (s["id"] for s in product["skus"])
    live = await price_list(client, settings, {a: 800})
    await price_list(client, settings, {b: 1500}, start_in_s=600)  # not yet
    user = unique("pl-buyer")
    for sku in (a, b, c):
        await call(client, "POST", "/api/v1/cart/items", 200, headers=auth(settings, user),
                   json={"sku_id": sku, "qty": 1})
    assert await cart_prices(client, settings, user) == {a: 800, b: 2000, c: 3000}

    await price_list(client, settings, {c: 2500})
    await price_list(client, settings, {c: 2700, a: 900})  # overlapping: the lowest wins
    assert await cart_prices(client, settings, user) == {a: 800, b: 2000, c: 2500}

    _, placed = await call(client, "POST", "/api/v1/checkout", 202,
                           headers=auth(settings, user),
                           json={"items": [{"sku_id": a, "qty": 2}], "delivery": "pickup"})
    assert placed["total"] == 1600
    order = await wait_persisted(client, settings, user, placed["order_id"])
    assert [(i["sku_id"], i["price"]) for i in order["items"]] == [(a, 800)]

    await end(client, settings, live["id"])  # at once: the other list's 900 is next
    assert (await cart_prices(client, settings, user))[a] == 900


async def test_an_ended_list_no_longer_applies(client: TestClient, settings: Settings,
                                               pg: asyncpg.Pool) -> None:
    product = await new_product(client, settings, skus=[{"price": 1000, "stock": 10}])
    (a,) = (s["id"] for s in product["skus"])
    made = await price_list(client, settings, {a: 600}, start_in_s=-1, length_s=3)
    assert (await sellable_skus(pg, [a]))[a].price == 600
    ends = datetime.fromisoformat(made["ends_at"])
    await asyncio.sleep((ends - datetime.now(UTC)).total_seconds() + 0.2)  # it ran out
    user = unique("late")
    await call(client, "POST", "/api/v1/cart/items", 200, headers=auth(settings, user),
               json={"sku_id": a, "qty": 1})
    assert await cart_prices(client, settings, user) == {a: 1000}
    _, placed = await call(client, "POST", "/api/v1/checkout", 202,
                           headers=auth(settings, user),
                           json={"items": [{"sku_id": a, "qty": 1}], "delivery": "pickup"})
    assert placed["total"] == 1000
    _, got = await call(client, "GET", f"{BASE}/{made['id']}", 200,
                        headers=staff_headers(settings))
    assert got["state"] == "ended" and got["status"] == "active"


async def test_detail_shows_promotion_and_ending_early_clears_the_cache(
        client: TestClient, settings: Settings) -> None:
    product = await new_product(client, settings, skus=[{"price": 1000, "stock": 10},
                                                        {"price": 500, "stock": 10}])
    pid = product["id"]
    a, b = (s["id"] for s in product["skus"])
    status, etag_before, body = await detail(client, pid)
    assert status == 200 and [s["promotion"] for s in body["skus"]] == [None, None]

    made = await price_list(client, settings, {a: 750})
    _, etag_live, body = await detail(client, pid)
    promo = body["skus"][0]["promotion"]
    assert promo["price"] == 750 and promo["price_list_id"] == made["id"]
    assert datetime.fromisoformat(promo["ends_at"]) == datetime.fromisoformat(made["ends_at"])
    assert body["skus"][0]["price"] == 1000 and body["skus"][1]["promotion"] is None
    assert etag_live != etag_before
    assert (await detail(client, pid))[1] == etag_live  # now served from the cache
    resp = await client.get(f"/api/v1/products/{pid}", headers={"If-None-Match": etag_live})
    assert resp.status == 304

    await end(client, settings, made["id"])
    status, etag_after, body = await detail(client, pid, **{"If-None-Match": etag_live})
    assert status == 200 and etag_after != etag_live
    assert body["skus"][0]["promotion"] is None


async def test_cached_detail_follows_a_list_starting_and_ending_on_its_own(
        client: TestClient, settings: Settings, redis: Redis) -> None:
    product = await new_product(client, settings, skus=[{"price": 1000, "stock": 10}])
    pid, a = product["id"], product["skus"][0]["id"]
    made = await price_list(client, settings, {a: 880}, start_in_s=2.5, length_s=2)
    starts = datetime.fromisoformat(made["starts_at"])
    ends = datetime.fromisoformat(made["ends_at"])
    _, etag_before, body = await detail(client, pid)
    assert body["skus"][0]["promotion"] is None
    key = CatalogKeys(settings.namespace).product_detail(pid)
    ttl = await redis.ttl(key)
    assert ttl == -2 or 0 < ttl <= 2  # cached at most until the start

    await asyncio.sleep((starts - datetime.now(UTC)).total_seconds() + 0.2)
    _, etag_live, body = await detail(client, pid)
    assert body["skus"][0]["promotion"]["price"] == 880 and etag_live != etag_before
    await asyncio.sleep((ends - datetime.now(UTC)).total_seconds() + 0.2)
    _, etag_after, body = await detail(client, pid)
    assert body["skus"][0]["promotion"] is None and etag_after != etag_live


async def test_member_price(client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    headers = staff_headers(settings)
    product = await new_product(client, settings, skus=[{"price": 1000, "stock": 10}])
    pid, a = product["id"], product["skus"][0]["id"]
    await detail(client, pid)  # cached before the change
    _, sku = await call(client, "PATCH", f"/api/v1/admin/skus/{a}", 200, headers=headers,
                        json={"member_price": 850})
    assert sku["member_price"] == 850 and sku["price"] == 1000
    _, _, body = await detail(client, pid)
    assert body["skus"][0]["member_price"] == 850
    logged = [(c["field"], c["old_value"], c["new_value"]) for c in
              await changes_of(client, settings, pid)]
    assert ("member_price", None, 850) in logged

    assert (await sellable_skus(pg, [a]))[a].price == 1000
    member = (await sellable_skus(pg, [a], member=True))[a]
    assert (member.price, member.list_price, member.price_source) == (850, 1000, "member")
    user = unique("not-member")
    await call(client, "POST", "/api/v1/cart/items", 200, headers=auth(settings, user),
               json={"sku_id": a, "qty": 1})
    assert await cart_prices(client, settings, user) == {a: 1000}

    for edit, status, code in (({"member_price": 1001}, 422, "invalid_request"),
                               ({"member_price": 0}, 422, "invalid_request"),
                               ({"price": 800}, 409, "member_price_above_price")):
        got, err = await call(client, "PATCH", f"/api/v1/admin/skus/{a}", headers=headers,
                              json=edit)
        assert (got, err["error"]["code"]) == (status, code), edit
    assert await pg.fetchval("SELECT (price, member_price)::text FROM skus WHERE id = $1",
                             a) == "(1000,850)"
    await call(client, "PATCH", f"/api/v1/admin/skus/{a}", 200, headers=headers,
               json={"price": 800, "member_price": 800})
    _, sku = await call(client, "PATCH", f"/api/v1/admin/skus/{a}", 200, headers=headers,
                        json={"member_price": None})
    assert sku["member_price"] is None
    _, _, body = await detail(client, pid)
    assert body["skus"][0]["member_price"] is None and body["skus"][0]["price"] == 800
    assert (await sellable_skus(pg, [a], member=True))[a].price_source == "list"


async def test_new_sku_with_member_price(client: TestClient, settings: Settings,
                                         pg: asyncpg.Pool) -> None:
    headers = staff_headers(settings)
    pid = (await new_product(client, settings))["id"]
    _, sku = await call(client, "POST", f"/api/v1/admin/products/{pid}/skus", 201,
                        headers=headers, json={"price": 300, "stock": 2, "member_price": 250})
    assert sku["member_price"] == 250
    assert await pg.fetchval("SELECT member_price FROM skus WHERE id = $1", sku["id"]) == 250
    status, err = await call(client, "POST", f"/api/v1/admin/products/{pid}/skus",
                             headers=headers, json={"price": 300, "stock": 2,
                                                    "member_price": 301})
    assert status == 422
    assert await pg.fetchval("SELECT count(*) FROM skus WHERE product_id = $1", pid) == 2
