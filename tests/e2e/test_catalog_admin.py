"""Staff manage categories, products and SKUs; every change is recorded; others are refused."""

from __future__ import annotations

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.catalog_helpers import (
    call,
    changes_of,
    new_category,
    new_product,
    staff_headers,
    unique,
)
from tests.stack import auth


def find(tree: list[dict], category_id: int) -> dict | None:
    for node in tree:
        if node["id"] == category_id:
            return node
        found = find(node["children"], category_id)
        if found is not None:
            return found
    return None


async def test_category_tree_moves_and_refuses_cycles(client: TestClient,
                                                      settings: Settings) -> None:
    root = await new_category(client, settings, unique("服装"))
    child = await new_category(client, settings, "Men", root["id"])
    grandchild = await new_category(client, settings, "Shirts 衬衫", child["id"])
    other = await new_category(client, settings, unique("other"))

    _, data = await call(client, "GET", "/api/v1/categories", 200)
    node = find(data["items"], root["id"])
    assert node is not None and [c["name"] for c in node["children"]] == ["Men"]
    assert node["children"][0]["children"][0]["id"] == grandchild["id"]

    headers = staff_headers(settings)
    for parent in (grandchild["id"], child["id"], root["id"]):
        status, err = await call(client, "PATCH", f"/api/v1/admin/categories/{root['id']}",
                                 json={"parent_id": parent}, headers=headers)
        assert status == 409 and err["error"]["code"] == "category_cycle", parent

    await call(client, "PATCH", f"/api/v1/admin/categories/{child['id']}", 200,
               json={"parent_id": other["id"], "name": "Men 男装"}, headers=headers)
    _, data = await call(client, "GET", "/api/v1/categories", 200)
    assert find(data["items"], root["id"])["children"] == []
    moved = find(data["items"], other["id"])["children"][0]
    assert moved["name"] == "Men 男装" and moved["children"][0]["id"] == grandchild["id"]

    # to the top, then a sibling of the same name is refused
    await call(client, "PATCH", f"/api/v1/admin/categories/{grandchild['id']}", 200,
               json={"parent_id": None}, headers=headers)
    status, err = await call(client, "POST", "/api/v1/admin/categories", json={
        "name": "Shirts 衬衫"}, headers=headers)
    assert status == 409 and err["error"]["code"] == "category_exists"
    status, _ = await call(client, "POST", "/api/v1/admin/categories",
                           json={"name": "x", "parent_id": 987654321}, headers=headers)
    assert status == 422
    status, _ = await call(client, "PATCH", "/api/v1/admin/categories/987654321",
                           json={"name": "x"}, headers=headers)
    assert status == 404


async def test_minimal_create_keeps_its_contract(client: TestClient,
                                                 settings: Settings) -> None:
    status, data = await call(client, "POST", "/api/v1/admin/products", 201,
                              json={"name": "Phone 手机", "skus": [{"price": 1999, "stock": 5},
                                                                   {"price": 2999, "stock": 0}]},
                              headers=staff_headers(settings))
    assert data["name"] == "Phone 手机" and isinstance(data["id"], int)
    assert [(s["price"], s["stock"]) for s in data["skus"]] == [(1999, 5), (2999, 0)]
    assert all(isinstance(s["id"], int) for s in data["skus"])
    assert data["published"] is True
    _, detail = await call(client, "GET", f"/api/v1/products/{data['id']}", 200)
    assert detail["price_from"] == 1999


async def test_create_edit_publish_are_recorded(client: TestClient, settings: Settings) -> None:
    cat = await new_category(client, settings)
    product = await new_product(client, settings, published=False, category_id=cat["id"],
                                tags=["New", "new", "夏季"],
                                image_urls=["https://img.example.com/a.png"])
    pid, sku = product["id"], product["skus"][0]["id"]
    assert product["tags"] == ["new", "夏季"] and product["published"] is False
    headers = staff_headers(settings, "editor1")

    _, edited = await call(client, "PATCH", f"/api/v1/admin/products/{pid}", 200, json={
        "name": "Renamed 改名", "description": "desc", "tags": ["sale"], "category_id": None},
        headers=headers)
    assert edited["name"] == "Renamed 改名" and edited["category_id"] is None
    await call(client, "POST", f"/api/v1/admin/products/{pid}/publish", 200, headers=headers)
    _, again = await call(client, "POST", f"/api/v1/admin/products/{pid}/publish", 200,
                          headers=headers)
    assert again["changed"] is False
    await call(client, "PATCH", f"/api/v1/admin/skus/{sku}", 200,
               json={"price": 1500, "stock": 7}, headers=headers)
    await call(client, "PATCH", f"/api/v1/admin/skus/{sku}", 200, json={"price": 1500},
               headers=headers)  # no change, nothing recorded
    _, added = await call(client, "POST", f"/api/v1/admin/products/{pid}/skus", 201,
                          json={"price": 900, "stock": 3, "attributes": {"size": "L"}},
                          headers=headers)
    await call(client, "POST", f"/api/v1/admin/products/{pid}/unpublish", 200, headers=headers)

    log = await changes_of(client, settings, pid)
    by_field = [(c["field"], c["old_value"], c["new_value"]) for c in reversed(log)]
    assert by_field[0][0] == "created" and by_field[1][0] == "sku_added"
    assert ("name", product["name"], "Renamed 改名") in by_field
    assert ("category_id", cat["id"], None) in by_field
    assert ("tags", ["new", "夏季"], ["sale"]) in by_field
    assert by_field.count(("published", False, True)) == 1
    assert ("price", 1000, 1500) in by_field and ("stock", 10, 7) in by_field
    assert ("published", True, False) == by_field[-1]
    assert sum(1 for f in by_field if f[0] == "price") == 1
    added_rows = [c for c in log if c["field"] == "sku_added" and c["sku_id"] == added["id"]]
    assert added_rows[0]["new_value"]["attributes"] == {"size": "L"}
    late = [c for c in log if c["field"] != "created" and c["field"] != "sku_added"]
    assert {c["actor"] for c in late} == {"editor1"}
    assert all(c["changed_at"] for c in log)


async def test_changes_cannot_be_rewritten(client: TestClient, settings: Settings,
                                           pg: asyncpg.Pool) -> None:
    product = await new_product(client, settings)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pg.execute("DELETE FROM catalog_changes WHERE product_id = $1", product["id"])
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pg.execute("UPDATE catalog_changes SET actor = 'x' WHERE product_id = $1",
                         product["id"])
    assert len(await changes_of(client, settings, product["id"])) == 2


async def test_stock_below_sold_is_refused(client: TestClient, settings: Settings,
                                           pg: asyncpg.Pool) -> None:
    product = await new_product(client, settings)
    sku = product["skus"][0]["id"]
    await pg.execute("UPDATE skus SET sold = 6 WHERE id = $1", sku)
    headers = staff_headers(settings)
    status, err = await call(client, "PATCH", f"/api/v1/admin/skus/{sku}",
                             json={"stock": 5}, headers=headers)
    assert status == 409 and err["error"]["code"] == "stock_below_sold"
    assert await pg.fetchval("SELECT stock FROM skus WHERE id = $1", sku) == 10
    _, ok = await call(client, "PATCH", f"/api/v1/admin/skus/{sku}", 200, json={"stock": 6},
                       headers=headers)
    assert ok["available"] == 0 and ok["sold"] == 6


STAFF_ROUTES = [
    ("POST", "/api/v1/admin/categories", {"name": "x"}),
    ("PATCH", "/api/v1/admin/categories/{cat}", {"name": "y"}),
    ("POST", "/api/v1/admin/products", {"name": "x", "skus": [{"price": 1, "stock": 1}]}),
    ("PATCH", "/api/v1/admin/products/{pid}", {"name": "y"}),
    ("POST", "/api/v1/admin/products/{pid}/publish", None),
    ("POST", "/api/v1/admin/products/{pid}/unpublish", None),
    ("POST", "/api/v1/admin/products/{pid}/skus", {"price": 1, "stock": 1}),
    ("PATCH", "/api/v1/admin/skus/{sku}", {"price": 1}),
    ("GET", "/api/v1/admin/products/{pid}/changes", None),
]


async def test_staff_routes_refuse_customers_and_anonymous(client: TestClient,
                                                           settings: Settings,
                                                           pg: asyncpg.Pool) -> None:
    cat = await new_category(client, settings)
    product = await new_product(client, settings)
    ids = {"cat": cat["id"], "pid": product["id"], "sku": product["skus"][0]["id"]}
    before = await pg.fetchval("SELECT count(*) FROM catalog_changes")
    for method, path, body in STAFF_ROUTES:
        url = path.format(**ids)
        for role in ("customer", "member"):
            status, err = await call(client, method, url, json=body,
                                     headers=auth(settings, "shopper", role))
            assert status == 403 and err["error"]["code"] == "forbidden", (method, url)
        status, err = await call(client, method, url, json=body)
        assert status == 401 and err["error"]["code"] == "unauthorized", (method, url)
    assert await pg.fetchval("SELECT count(*) FROM catalog_changes") == before
    _, detail = await call(client, "GET", f"/api/v1/products/{product['id']}", 200)
    assert detail["name"] == product["name"] and detail["published"] is True


@pytest.mark.parametrize("body", [
    {"name": "x", "skus": [{"price": 1, "stock": 1}], "image_urls": ["http://a.example/x.png"]},
    {"name": "x", "skus": [{"price": 1, "stock": 1}], "image_urls": ["javascript:alert(1)"]},
    {"name": "x", "skus": [{"price": 1, "stock": 1}], "tags": [""]},
    {"name": "x", "skus": [{"price": 1, "stock": 1}], "tags": ["t" * 33]},
    {"name": "x", "skus": [{"price": 1, "stock": 1, "attributes": {"colour": 1}}]},
    {"name": "x", "skus": [{"price": 1, "stock": 1, "attributes": {"": "red"}}]},
    {"name": "x", "skus": [{"price": 1, "stock": 1}], "category_id": 987654321},
    {"name": "   ", "skus": [{"price": 1, "stock": 1}]},
    {"name": "x", "skus": [{"price": 1, "stock": 1}], "published": "yes"},
])
async def test_bad_product_fields_are_422(client: TestClient, settings: Settings,
                                          pg: asyncpg.Pool, body: dict) -> None:
    before = await pg.fetchval("SELECT count(*) FROM products")
    status, err = await call(client, "POST", "/api/v1/admin/products", json=body,
                             headers=staff_headers(settings))
    assert status == 422 and err["error"]["code"] == "invalid_request"
    assert await pg.fetchval("SELECT count(*) FROM products") == before


async def test_unknown_ids_are_404(client: TestClient, settings: Settings) -> None:
    headers = staff_headers(settings)
    for method, path, body in [
        ("PATCH", "/api/v1/admin/products/987654321", {"name": "y"}),
        ("POST", "/api/v1/admin/products/987654321/publish", None),
        ("POST", "/api/v1/admin/products/987654321/skus", {"price": 1, "stock": 1}),
        ("PATCH", "/api/v1/admin/skus/987654321", {"price": 1}),
        ("GET", "/api/v1/admin/products/abc/changes", None),
        ("GET", "/api/v1/products/987654321", None),
        ("GET", "/api/v1/products/-1", None),
    ]:
        status, err = await call(client, method, path, json=body, headers=headers)
        assert status == 404 and err["error"]["code"] == "not_found", (method, path)
