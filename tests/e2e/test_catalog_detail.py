"""Product detail: visibility, the Redis cache and its invalidation, ETag and 304."""

from __future__ import annotations

import asyncpg
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

from catalog_api.keys import CatalogKeys
from mall.settings import Settings
from tests.e2e.catalog_helpers import call, new_category, new_product, staff_headers
from tests.stack import auth


async def get(client: TestClient, product_id: int, **headers: str):
    resp = await client.get(f"/api/v1/products/{product_id}", headers=headers)
    body = await resp.read()
    return resp.status, resp.headers.get("ETag"), body


async def test_unpublished_is_404_except_for_staff(client: TestClient,
                                                   settings: Settings) -> None:
    product = await new_product(client, settings, published=False)
    pid = product["id"]
    customer = auth(settings, "buyer", "customer")
    for _ in range(2):  # the second round is served from the cache
        assert (await get(client, pid))[0] == 404
        assert (await get(client, pid, **customer))[0] == 404
        status, _, body = await get(client, pid, **staff_headers(settings))
        assert status == 200 and b'"published":false' in body
    await call(client, "POST", f"/api/v1/admin/products/{pid}/publish", 200,
               headers=staff_headers(settings))
    assert (await get(client, pid, **customer))[0] == 200
    await call(client, "POST", f"/api/v1/admin/products/{pid}/unpublish", 200,
               headers=staff_headers(settings))
    assert (await get(client, pid))[0] == 404
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await get(client, pid, **bad))[0] == 401


async def test_detail_has_skus_available_and_category_path(client: TestClient,
                                                           settings: Settings,
                                                           pg: asyncpg.Pool) -> None:
    top = await new_category(client, settings, "数码")
    mid = await new_category(client, settings, "Phones", top["id"])
    product = await new_product(client, settings, category_id=mid["id"], skus=[
        {"price": 300, "stock": 5, "attributes": {"colour": "red", "size": "L"}},
        {"price": 200, "stock": 2}])
    await pg.execute("UPDATE skus SET sold = 3 WHERE id = $1", product["skus"][0]["id"])
    status, etag, _ = await get(client, product["id"])
    assert status == 200 and etag
    _, data = await call(client, "GET", f"/api/v1/products/{product['id']}", 200)
    assert data["category"]["path"] == [{"id": top["id"], "name": "数码"},
                                        {"id": mid["id"], "name": "Phones"}]
    assert [(s["price"], s["available"], s["attributes"]) for s in data["skus"]] == [
        (300, 2, {"colour": "red", "size": "L"}), (200, 2, {})]
    assert data["price_from"] == 200 and data["currency"] == "CNY"
    assert "stock" not in data["skus"][0]
    # renaming a category invalidates the products below it
    await call(client, "PATCH", f"/api/v1/admin/categories/{top['id']}", 200,
               json={"name": "Digital 数码"}, headers=staff_headers(settings))
    _, data = await call(client, "GET", f"/api/v1/products/{product['id']}", 200)
    assert data["category"]["path"][0]["name"] == "Digital 数码"


async def test_detail_is_cached_then_invalidated_by_a_price_change(
        client: TestClient, settings: Settings, pg: asyncpg.Pool, redis: Redis) -> None:
    product = await new_product(client, settings)
    pid, sku = product["id"], product["skus"][0]["id"]
    status, etag1, body1 = await get(client, pid)
    assert status == 200
    key = CatalogKeys(settings.namespace).product_detail(pid)
    assert await redis.hget(key, "body") == body1
    assert 0 < await redis.ttl(key) <= settings.product_cache_ttl_s

    # A change behind the API's back is not seen: the answer really comes from the cache.
    await pg.execute("UPDATE products SET description = 'sneaky' WHERE id = $1", pid)
    status, etag_cached, body_cached = await get(client, pid)
    assert (etag_cached, body_cached) == (etag1, body1)

    status, etag304, body304 = await get(client, pid, **{"If-None-Match": etag1})
    assert status == 304 and body304 == b"" and etag304 == etag1
    assert (await get(client, pid, **{"If-None-Match": f'"x", W/{etag1}'}))[0] == 304
    assert (await get(client, pid, **{"If-None-Match": '"other"'}))[0] == 200

    await call(client, "PATCH", f"/api/v1/admin/skus/{sku}", 200, json={"price": 1234},
               headers=staff_headers(settings))
    status, etag2, body2 = await get(client, pid, **{"If-None-Match": etag1})
    assert status == 200 and etag2 != etag1
    _, data = await call(client, "GET", f"/api/v1/products/{pid}", 200)
    assert data["skus"][0]["price"] == 1234 and data["price_from"] == 1234
    assert data["description"] == "sneaky"
    assert (await get(client, pid, **{"If-None-Match": etag2}))[0] == 304


async def test_every_change_invalidates(client: TestClient, settings: Settings) -> None:
    product = await new_product(client, settings)
    pid, sku = product["id"], product["skus"][0]["id"]
    headers = staff_headers(settings)
    steps = [
        ("PATCH", f"/api/v1/admin/products/{pid}", {"name": "Changed 改"},
         lambda d: d["name"] == "Changed 改"),
        ("PATCH", f"/api/v1/admin/skus/{sku}", {"stock": 3},
         lambda d: d["skus"][0]["available"] == 3),
        ("POST", f"/api/v1/admin/products/{pid}/skus", {"price": 5, "stock": 1},
         lambda d: len(d["skus"]) == 2 and d["price_from"] == 5),
        ("POST", f"/api/v1/admin/products/{pid}/unpublish", None,
         lambda d: d["published"] is False),
    ]
    for method, path, body, check in steps:
        await call(client, "GET", f"/api/v1/products/{pid}", 200, headers=headers)  # cache it
        await call(client, method, path, json=body, headers=headers)
        _, data = await call(client, "GET", f"/api/v1/products/{pid}", 200, headers=headers)
        assert check(data), (method, path, data)
