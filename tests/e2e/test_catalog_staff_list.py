"""Staff list every product (unpublished too) with each SKU's stock and sold, and read one
product with them; customers are refused; bad query values answer 422 and change nothing;
the public detail keeps its shape."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.catalog_helpers import (
    call,
    new_category,
    new_product,
    staff_headers,
    unique,
)
from tests.stack import auth

LIST = "/api/v1/admin/products"


async def listed(client: TestClient, settings: Settings, query: str) -> dict:
    _, data = await call(client, "GET", f"{LIST}?{query}", 200,
                         headers=staff_headers(settings))
    return dict(data)


async def test_list_includes_unpublished_filters_and_pages(client: TestClient,
                                                          settings: Settings,
                                                          pg: asyncpg.Pool) -> None:
    tag = unique("StaffList")
    parent = await new_category(client, settings)
    child = await new_category(client, settings, parent_id=parent["id"])
    shown = await new_product(client, settings, name=f"{tag} 耳机 Shown",
                              category_id=parent["id"],
                              skus=[{"price": 1990, "stock": 7, "attributes": {"颜色": "黑"}},
                                    {"price": 2990, "stock": 3}])
    hidden = await new_product(client, settings, name=f"{tag} 耳机 Hidden", published=False,
                               category_id=child["id"])
    other = await new_product(client, settings, name=f"{tag} other_%x")
    # Units sold show as `sold` and reduce `available`.
    await pg.execute("UPDATE skus SET sold = 2 WHERE id = $1", shown["skus"][0]["id"])

    # Case-insensitive name substring; unpublished included; newest first.
    data = await listed(client, settings, f"q={tag.lower()}&limit=100")
    assert [p["id"] for p in data["items"]] == [other["id"], hidden["id"], shown["id"]]
    assert data["next_cursor"] is None
    item = next(p for p in data["items"] if p["id"] == shown["id"])
    assert (item["name"], item["published"], item["category_id"]) == (
        f"{tag} 耳机 Shown", True, parent["id"])
    assert item["created_at"] and item["updated_at"] and item["price_from"] == 1990
    assert [(s["id"], s["price"], s["stock"], s["sold"], s["available"], s["attributes"])
            for s in item["skus"]] == [
        (shown["skus"][0]["id"], 1990, 7, 2, 5, {"颜色": "黑"}),
        (shown["skus"][1]["id"], 2990, 3, 0, 3, {})]
    hidden_item = next(p for p in data["items"] if p["id"] == hidden["id"])
    assert hidden_item["published"] is False and hidden_item["skus"][0]["stock"] == 10

    # published filter
    data = await listed(client, settings, f"q={tag}&published=false")
    assert [p["id"] for p in data["items"]] == [hidden["id"]]
    data = await listed(client, settings, f"q={tag}&published=true")
    assert [p["id"] for p in data["items"]] == [other["id"], shown["id"]]
    # category with its descendants
    data = await listed(client, settings, f"category_id={parent['id']}")
    assert [p["id"] for p in data["items"]] == [hidden["id"], shown["id"]]
    data = await listed(client, settings, f"category_id={child['id']}")
    assert [p["id"] for p in data["items"]] == [hidden["id"]]
    # LIKE wildcards in q are plain characters
    data = await listed(client, settings, f"q={tag}%20other_%25")
    assert [p["id"] for p in data["items"]] == [other["id"]]
    data = await listed(client, settings, f"q={tag}%25Shown")
    assert data["items"] == []
    # CJK substring, surrounding spaces ignored
    data = await listed(client, settings, f"q=%20{tag}%20耳机%20&published=false")
    assert [p["id"] for p in data["items"]] == [hidden["id"]]

    # Keyset pages by id: each item once, in order.
    seen: list[int] = []
    cursor = None
    for _ in range(5):
        query = f"q={tag}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        data = await listed(client, settings, query)
        seen += [p["id"] for p in data["items"]]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert seen == [other["id"], hidden["id"], shown["id"]]
    # Without filters the newest products come first (other tests add products too).
    data = await listed(client, settings, "limit=1")
    assert len(data["items"]) == 1 and data["next_cursor"] is not None


async def test_staff_detail_shows_stock_and_sold_and_the_public_one_does_not(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    product = await new_product(client, settings, published=False,
                                skus=[{"price": 5000, "stock": 9}])
    sku_id = product["skus"][0]["id"]
    await call(client, "PATCH", f"/api/v1/admin/skus/{sku_id}", 200,
               json={"member_price": 4500}, headers=staff_headers(settings))
    await pg.execute("UPDATE skus SET sold = 4 WHERE id = $1", sku_id)
    _, detail = await call(client, "GET", f"{LIST}/{product['id']}", 200,
                           headers=staff_headers(settings))
    assert detail["published"] is False and detail["name"] == product["name"]
    sku = detail["skus"][0]
    assert (sku["id"], sku["price"], sku["member_price"], sku["stock"], sku["sold"],
            sku["available"]) == (sku_id, 5000, 4500, 9, 4, 5)

    # The public detail (cached per product) keeps its shape, also for staff.
    await call(client, "POST", f"/api/v1/admin/products/{product['id']}/publish", 200,
               headers=staff_headers(settings))
    for headers in ({}, auth(settings, "buyer-1"), staff_headers(settings)):
        _, public = await call(client, "GET", f"/api/v1/products/{product['id']}", 200,
                               headers=headers)
        assert set(public["skus"][0]) == {"id", "price", "member_price", "promotion",
                                          "available", "attributes"}
        assert public["skus"][0]["available"] == 5
    # The staff detail is read from the database, never from the cache.
    await pg.execute("UPDATE skus SET sold = 6 WHERE id = $1", sku_id)
    _, detail = await call(client, "GET", f"{LIST}/{product['id']}", 200,
                           headers=staff_headers(settings))
    assert (detail["skus"][0]["sold"], detail["skus"][0]["available"]) == (6, 3)

    for path in (f"{LIST}/999999999999", f"{LIST}/abc", f"{LIST}/0"):
        status, err = await call(client, "GET", path, headers=staff_headers(settings))
        assert status == 404 and err["error"]["code"] == "not_found", path


@pytest.mark.parametrize("role", ["customer", "member"])
async def test_customers_are_refused(client: TestClient, settings: Settings,
                                     role: str) -> None:
    product = await new_product(client, settings, published=False)
    headers = auth(settings, f"{role}-1", role)
    for path in (f"{LIST}?published=false", f"{LIST}/{product['id']}", f"{LIST}?limit=0"):
        status, err = await call(client, "GET", path, headers=headers)
        assert status == 403 and err["error"]["code"] == "forbidden", path
        status, err = await call(client, "GET", path)
        assert status == 401 and err["error"]["code"] == "unauthorized", path


@pytest.mark.parametrize("query", [
    "limit=0", "limit=101", "limit=abc", "limit=-1", "limit=²", "cursor=abc", "cursor=0",
    "cursor=99999999999999999999", "published=yes", "published=", "published=TRUE",
    "category_id=0", "category_id=x", "q=", "q=%20%20", "q=" + "x" * 101, "q=a%00b",
    "q=a&q=b", "sort=name", "unknown=1",
])
async def test_bad_query_values_answer_422_and_change_nothing(
        client: TestClient, settings: Settings, pg: asyncpg.Pool, query: str) -> None:
    before = await pg.fetchval("SELECT count(*) FROM catalog_changes")
    products = await pg.fetchval("SELECT count(*) FROM products")
    status, err = await call(client, "GET", f"{LIST}?{query}", headers=staff_headers(settings))
    assert status == 422 and err["error"]["code"] == "invalid_request", (query, err)
    assert await pg.fetchval("SELECT count(*) FROM catalog_changes") == before
    assert await pg.fetchval("SELECT count(*) FROM products") == products
