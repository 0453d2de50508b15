"""Price lists through the staff API: create, read, page, change before the start, end early,
and bad input that stores nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.catalog_helpers import call, new_product, staff_headers, unique
from tests.stack import auth, iso

BASE = "/api/v1/admin/price-lists"


def window(start_in_s: float = -60, length_s: float = 3600) -> dict[str, str]:
    starts = datetime.now(UTC) + timedelta(seconds=start_in_s)
    return {"starts_at": iso(starts), "ends_at": iso(starts + timedelta(seconds=length_s))}


async def skus(client: TestClient, settings: Settings, *prices: int) -> list[int]:
    product = await new_product(client, settings,
                                skus=[{"price": p, "stock": 10} for p in prices])
    return [s["id"] for s in product["skus"]]


async def create(client: TestClient, settings: Settings, items: list[dict[str, int]],
                 expect: int | None = 201, **fields: Any) -> tuple[int, Any]:
    body = {"name": unique("sale 促销"), **window(), "items": items, **fields}
    return await call(client, "POST", BASE, expect, json=body, headers=staff_headers(settings))


async def stored_lists(pg: asyncpg.Pool, name: str) -> int:
    return int(await pg.fetchval("SELECT count(*) FROM price_lists WHERE name = $1", name))


async def test_create_read_and_replay(client: TestClient, settings: Settings) -> None:
    a, b = await skus(client, settings, 1000, 2000)
    body = {"name": unique("双十一"), **window(), "items": [{"sku_id": b, "price": 1500},
                                                          {"sku_id": a, "price": 999}]}
    headers = {**staff_headers(settings), "Idempotency-Key": unique("pl")}
    _, made = await call(client, "POST", BASE, 201, json=body, headers=headers)
    assert made["state"] == "live" and made["status"] == "active" and made["item_count"] == 2
    assert made["created_by"] == "catstaff" and made["ended_at"] is None
    assert [(i["sku_id"], i["price"], i["list_price"]) for i in made["items"]] == [
        (a, 999, 1000), (b, 1500, 2000)]
    _, again = await call(client, "POST", BASE, 201, json=body, headers=headers)
    assert again["id"] == made["id"]
    status, err = await call(client, "POST", BASE, json={**body, "name": "other"},
                             headers=headers)
    assert status == 422 and err["error"]["code"] == "idempotency_key_reused"
    _, got = await call(client, "GET", f"{BASE}/{made['id']}", 200,
                        headers=staff_headers(settings))
    assert got == made
    assert (await call(client, "GET", f"{BASE}/987654321", headers=staff_headers(settings)))[0] \
        == 404
    upcoming = (await create(client, settings, [{"sku_id": a, "price": 1}],
                             **window(start_in_s=600)))[1]
    assert upcoming["state"] == "upcoming"


async def test_staff_only(client: TestClient, settings: Settings) -> None:
    for method, path in (("GET", BASE), ("POST", BASE), ("GET", f"{BASE}/1"),
                         ("PATCH", f"{BASE}/1"), ("POST", f"{BASE}/1/end")):
        assert (await call(client, method, path, json={}))[0] == 401
        assert (await call(client, method, path, json={},
                           headers=auth(settings, "shopper", "customer")))[0] == 403
        assert (await call(client, method, path, json={},
                           headers=auth(settings, "shopper", "member")))[0] == 403


async def test_pages_newest_first(client: TestClient, settings: Settings) -> None:
    (a,) = await skus(client, settings, 1000)
    made = [(await create(client, settings, [{"sku_id": a, "price": 900 - i}]))[1]["id"]
            for i in range(3)]
    headers = staff_headers(settings)
    _, first = await call(client, "GET", f"{BASE}?limit=2", 200, headers=headers)
    assert [i["id"] for i in first["items"]] == made[::-1][:2]
    assert "items" not in first["items"][0]
    _, second = await call(client, "GET", f"{BASE}?limit=2&cursor={first['next_cursor']}", 200,
                           headers=headers)
    assert second["items"][0]["id"] == made[0]
    for bad in ("limit=0", "limit=101", "limit=x", "cursor=abc"):
        assert (await call(client, "GET", f"{BASE}?{bad}", headers=headers))[0] == 422


async def test_bad_input_stores_nothing(client: TestClient, settings: Settings,
                                        pg: asyncpg.Pool) -> None:
    a, b = await skus(client, settings, 1000, 500)
    good = {"sku_id": a, "price": 900}
    ends_before = window()
    ends_before["ends_at"], ends_before["starts_at"] = ends_before["starts_at"], \
        ends_before["ends_at"]
    naive = {"starts_at": "2030-01-01T00:00:00", "ends_at": "2030-01-02T00:00:00"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"items": [good, {"sku_id": b, "price": 500}]}, 422, "price_not_lower"),
        ({"items": [{"sku_id": b, "price": 501}]}, 422, "price_not_lower"),
        ({"items": [good, {"sku_id": 10**15, "price": 1}]}, 404, "not_found"),
        ({"items": [good], **ends_before}, 422, "invalid_request"),
        ({"items": [good], **window(start_in_s=-7200)}, 422, "invalid_request"),  # ended
        ({"items": [good], **naive}, 422, "invalid_request"),
        ({"items": [good, {"sku_id": a, "price": 800}]}, 422, "invalid_request"),
        ({"items": [{"sku_id": i, "price": 1} for i in range(1, 1002)]}, 422,
         "invalid_request"),
        ({"items": []}, 422, "invalid_request"),
        ({"items": [{"sku_id": a, "price": 0}]}, 422, "invalid_request"),
        ({"items": [good], "extra": 1}, 422, "invalid_request"),
        ({"items": [good], "name": "   "}, 422, "invalid_request"),
    ]
    for fields, status, code in cases:
        body = {"name": unique("bad"), **window(), **fields}
        got, err = await call(client, "POST", BASE, json=body, headers=staff_headers(settings))
        assert (got, err["error"]["code"]) == (status, code), fields
        name = body["name"]
        assert await stored_lists(pg, name) == 0, fields
    assert await pg.fetchval("SELECT count(*) FROM price_list_items WHERE sku_id = ANY($1)",
                             [a, b]) == 0
    status, err = await create(client, settings, [{"sku_id": b, "price": 1}, good,
                                                  {"sku_id": 10**15 + 1, "price": 1}],
                               expect=None)
    assert status == 404 and err["error"]["details"]["sku_ids"] == [10**15 + 1]


async def test_a_thousand_items_fit(client: TestClient, settings: Settings,
                                    pg: asyncpg.Pool) -> None:
    (first,) = await skus(client, settings, 100)
    product_id = await pg.fetchval("SELECT product_id FROM skus WHERE id = $1", first)
    rows = await pg.fetch("INSERT INTO skus (product_id, price, stock)"
                          " SELECT $1, 100, 1 FROM generate_series(1, 999) RETURNING id",
                          product_id)
    items = [{"sku_id": s, "price": 99} for s in [first, *(r["id"] for r in rows)]]
    _, made = await create(client, settings, items)
    assert made["item_count"] == 1000


async def test_patch_before_start_only(client: TestClient, settings: Settings,
                                       pg: asyncpg.Pool) -> None:
    a, b = await skus(client, settings, 1000, 2000)
    headers = staff_headers(settings)
    _, upcoming = await create(client, settings, [{"sku_id": a, "price": 900}],
                               **window(start_in_s=600))
    path = f"{BASE}/{upcoming['id']}"
    later = window(start_in_s=1200, length_s=60)
    _, changed = await call(client, "PATCH", path, 200, headers=headers, json={
        "name": "改名 renamed", **later, "items": [{"sku_id": b, "price": 1000}]})
    assert changed["name"] == "改名 renamed" and changed["state"] == "upcoming"
    assert [(i["sku_id"], i["price"]) for i in changed["items"]] == [(b, 1000)]
    assert datetime.fromisoformat(changed["starts_at"]) == datetime.fromisoformat(
        later["starts_at"])
    for bad, code in (({"items": [{"sku_id": b, "price": 2000}]}, "price_not_lower"),
                      ({"ends_at": later["starts_at"]}, "invalid_request"),
                      ({"items": [{"sku_id": 10**15, "price": 1}]}, "not_found")):
        status, err = await call(client, "PATCH", path, headers=headers, json=bad)
        assert status in (404, 422) and err["error"]["code"] == code
    _, unchanged = await call(client, "GET", path, 200, headers=headers)
    assert unchanged == changed

    _, live = await create(client, settings, [{"sku_id": a, "price": 900}])
    for edit in ({"name": "too late"}, {"items": [{"sku_id": a, "price": 1}]},
                 window(start_in_s=600)):
        status, err = await call(client, "PATCH", f"{BASE}/{live['id']}", headers=headers,
                                 json=edit)
        assert status == 409 and err["error"]["code"] == "price_list_started"
    _, after = await call(client, "GET", f"{BASE}/{live['id']}", 200, headers=headers)
    assert after == live

    await call(client, "POST", f"{path}/end", 200, headers=headers)
    status, err = await call(client, "PATCH", path, headers=headers, json={"name": "x"})
    assert status == 409 and err["error"]["code"] == "price_list_ended"
    assert (await call(client, "PATCH", f"{BASE}/987654321", headers=headers,
                       json={"name": "x"}))[0] == 404


async def test_end_early(client: TestClient, settings: Settings) -> None:
    (a,) = await skus(client, settings, 1000)
    headers = staff_headers(settings)
    _, live = await create(client, settings, [{"sku_id": a, "price": 900}])
    _, ended = await call(client, "POST", f"{BASE}/{live['id']}/end", 200, headers=headers)
    assert ended["changed"] is True and ended["status"] == "ended"
    assert ended["state"] == "ended" and ended["ended_at"] is not None
    _, again = await call(client, "POST", f"{BASE}/{live['id']}/end", 200, headers=headers)
    assert again["changed"] is False and again["ended_at"] == ended["ended_at"]
    _, upcoming = await create(client, settings, [{"sku_id": a, "price": 900}],
                               **window(start_in_s=600))
    _, cancelled = await call(client, "POST", f"{BASE}/{upcoming['id']}/end", 200,
                              headers=headers)
    assert cancelled["state"] == "ended"
    assert (await call(client, "POST", f"{BASE}/987654321/end", headers=headers))[0] == 404
