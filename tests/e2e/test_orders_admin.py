"""Staff order search (keyset pages, newest first) and the CSV export."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from order_writer.staff import ORDER_COLUMNS
from tests.e2e.test_orders_api import call, lifecycle_client
from tests.integration.test_lifecycle_helpers import MadeOrder, make_order
from tests.stack import auth


@pytest.fixture(scope="module")
async def api(client: TestClient, settings: Settings) -> AsyncIterator[TestClient]:
    async with lifecycle_client(client, settings) as lifecycle:
        yield lifecycle


async def orders_of_one_buyer(pg: asyncpg.Pool, n: int) -> list[MadeOrder]:
    user = f"buyer{uuid.uuid4().hex[:10]}"
    made = [await make_order(pg, "pending_payment", qty=1, user=user, age_s=n - i)
            for i in range(n)]
    return made[::-1]  # newest first


async def test_search_pages_newest_first_without_gaps(api: TestClient, settings: Settings,
                                                      pg: asyncpg.Pool) -> None:
    made = await orders_of_one_buyer(pg, 5)
    user = made[0].user_id
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        query = f"/api/v1/admin/orders?user_id={user}&limit=2" + (
            f"&cursor={cursor}" if cursor else "")
        status, page = await call(api, settings, "GET", query, "ops1", "staff")
        assert status == 200, page
        seen += [o["order_id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [o.order_id for o in made]
    status, page = await call(api, settings, "GET", f"/api/v1/admin/orders?user_id={user}"
                              "&status=pending_payment&limit=100", "ops1", "staff")
    assert [o["order_id"] for o in page["items"]] == seen
    assert set(page["items"][0]) == {*ORDER_COLUMNS, "has_address", "items"}
    assert page["items"][0]["user_id"] == user
    status, page = await call(api, settings, "GET", f"/api/v1/admin/orders?user_id={user}"
                              "&status=paid", "ops1", "staff")
    assert page["items"] == []
    status, page = await call(api, settings, "GET", "/api/v1/admin/orders?sale_id="
                              f"{made[0].sale_id}", "ops1", "staff")
    assert [o["order_id"] for o in page["items"]] == [made[0].order_id]


async def test_search_by_creation_window(api: TestClient, settings: Settings,
                                         pg: asyncpg.Pool) -> None:
    made = await orders_of_one_buyer(pg, 3)
    created = await pg.fetch("SELECT order_id, created_at FROM orders WHERE user_id = $1"
                             " ORDER BY created_at", made[0].user_id)
    start, end = created[1]["created_at"], created[2]["created_at"]
    resp = await api.get("/api/v1/admin/orders", headers=auth(settings, "ops1", "staff"),
                         params={"user_id": made[0].user_id, "created_from": start.isoformat(),
                                 "created_to": end.isoformat()})
    assert resp.status == 200
    body = await resp.json()
    assert [o["order_id"] for o in body["items"]] == [created[1]["order_id"]]


@pytest.mark.parametrize("query", [
    "status=lost", "sale_id=abc", "created_from=yesterday", "created_to=2026-01-01T00:00:00",
    "limit=0", "limit=101", "cursor=%21%21",
])
async def test_bad_search_filters_are_422(api: TestClient, settings: Settings,
                                          query: str) -> None:
    for path in ("/api/v1/admin/orders", "/api/v1/admin/orders/export.csv"):
        if path.endswith("csv") and query.startswith(("limit", "cursor")):
            continue
        status, body = await call(api, settings, "GET", f"{path}?{query}", "ops1", "staff")
        assert status == 422 and body["error"]["code"] == "invalid_request", (path, query)


async def test_csv_export_has_a_header_and_one_row_per_order(api: TestClient,
                                                             settings: Settings,
                                                             pg: asyncpg.Pool) -> None:
    made = await orders_of_one_buyer(pg, 3)
    async with pg.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE orders SET carrier = '=HYPERLINK(1)' WHERE order_id = $1",
                           made[0].order_id)
    resp = await api.get("/api/v1/admin/orders/export.csv",
                         headers=auth(settings, "ops1", "staff"),
                         params={"user_id": made[0].user_id})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await resp.text())))
    assert rows[0] == list(ORDER_COLUMNS)
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [r["order_id"] for r in body] == [o.order_id for o in made]
    assert {r["user_id"] for r in body} == {made[0].user_id}
    assert {r["status"] for r in body} == {"pending_payment"}
    assert [int(r["total"]) for r in body] == [o.total for o in made]
    assert body[0]["carrier"] == "'=HYPERLINK(1)"
    assert body[0]["created_at"].endswith("+00:00") and body[0]["paid_at"] == ""
    resp = await api.get("/api/v1/admin/orders/export.csv",
                         headers=auth(settings, "ops1", "staff"),
                         params={"user_id": "nobody-at-all"})
    assert list(csv.reader(io.StringIO(await resp.text()))) == [list(ORDER_COLUMNS)]
