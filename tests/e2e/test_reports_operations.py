"""Flash-sale, coupon, search, inventory, logistics and after-sales reports on rows generated
here, the dashboard page, and bad input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.test_reports_helpers import (
    REPORTS,
    Order,
    as_csv_row,
    get_csv,
    get_report,
    insert_orders,
    make_catalog,
    new_order_id,
    shanghai,
    staff,
    tag,
)
from tests.stack import auth


async def test_flash_sale_report(client: TestClient, settings: Settings,
                                 pg: asyncpg.Pool) -> None:
    sku = (await make_catalog(pg, 1, stock=0)).skus[0]
    starts = shanghai(1994, 5, 1, 10)
    sale = await pg.fetchval(
        "INSERT INTO flash_sales (sku_id, price, stock, sold, per_user_limit, starts_at,"
        " ends_at, created_by) VALUES ($1, 500, 5, 4, 2, $2, $3, 'test') RETURNING id",
        sku, starts, starts + timedelta(hours=1))
    # Accepted units 2, 1, 1, 2 (the 4th order makes 6 >= 5: sold out 40 s after the start);
    # the second order was cancelled later, so 4 units stay sold.
    plan = [("paid", 2, "a", 10), ("cancelled", 1, "b", 20), ("completed", 1, "a", 30),
            ("pending_payment", 2, "c", 40)]
    orders = []
    for status, qty, buyer, second in plan:
        at = starts + timedelta(seconds=second)
        order = Order(new_order_id(), f"fs{buyer}", status, at, [(sku, qty, 500)], sale_id=sale)
        if status in ("paid", "completed"):
            order.paid_at, order.paid_amount = at + timedelta(seconds=5), qty * 500
        orders.append(order)
    orders[2].refunded = 100
    await insert_orders(pg, orders)
    report = await get_report(client, settings, "flash-sales", **{"from": "1994-05-01",
                                                                   "to": "1994-05-01"})
    [row] = report["rows"]
    assert row["sale_id"] == sale
    assert {k: row[k] for k in ("stock", "sold", "accepted_orders", "paid_orders", "revenue",
                                "buyers", "seconds_to_sell_out")} == {
        "stock": 5, "sold": 4, "accepted_orders": 4, "paid_orders": 2,
        "revenue": 1000 + 500 - 100, "buyers": 3, "seconds_to_sell_out": 40.0}
    assert await get_csv(client, settings, "flash-sales", **{"from": "1994-05-01",
                                                              "to": "1994-05-01"}) == [
        as_csv_row(row)]


async def test_coupon_report(client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    sku = (await make_catalog(pg, 1)).skus[0]
    at = shanghai(1995, 2, 1, 12)
    template_ids = []
    for name in ("ten off", "five off"):
        template_ids.append(await pg.fetchval(
            "INSERT INTO coupon_templates (name, kind, amount, claim_starts_at, claim_ends_at,"
            " valid_from, valid_until, total, per_user, created_by)"
            " VALUES ($1, 'fixed', 1000, $2, $3, $2, $3, 100, 5, 'test') RETURNING id",
            f"{name} {tag()}", at - timedelta(days=1), at + timedelta(days=1)))
    ten, five = template_ids

    async def coupon(template: int) -> int:
        return int(await pg.fetchval(
            "INSERT INTO user_coupons (template_id, user_id, seq, source) VALUES"
            " ($1, $2, 1, 'claim') RETURNING id", template, f"cp{tag()}"))

    orders = [
        # one coupon, paid: 1000 off a 5000 order
        Order(new_order_id(), "cp1", "paid", at, [(sku, 5, 1000)], paid_at=at,
              paid_amount=4000, discount=1000, coupon_ids=[await coupon(ten)]),
        # two coupons share 1501 off: 751 to the first, 750 to the second
        Order(new_order_id(), "cp2", "completed", at, [(sku, 3, 1000)], paid_at=at,
              paid_amount=1499, discount=1501,
              coupon_ids=[await coupon(ten), await coupon(five)]),
        # not paid yet: used, no revenue
        Order(new_order_id(), "cp3", "pending_payment", at, [(sku, 1, 1000)], discount=500,
              coupon_ids=[await coupon(five)]),
        # cancelled: the coupon came back, so it does not count
        Order(new_order_id(), "cp4", "cancelled", at, [(sku, 1, 1000)], discount=500,
              coupon_ids=[await coupon(five)]),
    ]
    await insert_orders(pg, orders)
    report = await get_report(client, settings, "coupons", **{"from": "1995-02-01",
                                                               "to": "1995-02-01"})
    rows = {r["template_id"]: r for r in report["rows"]}
    assert set(rows) == {ten, five}
    assert {k: rows[ten][k] for k in ("used", "discount", "orders", "revenue")} == {
        "used": 2, "discount": 1000 + 751, "orders": 2, "revenue": 4000 + 1499}
    assert {k: rows[five][k] for k in ("used", "discount", "orders", "revenue")} == {
        "used": 2, "discount": 750 + 500, "orders": 2, "revenue": 1499}


async def test_search_report_top_terms_and_terms_without_results(
        client: TestClient, settings: Settings, pg: asyncpg.Pool) -> None:
    at = datetime(1993, 3, 3, 3, tzinfo=UTC)
    searches = ([("Phone", 12)] * 3 + [("phone ", 4)] * 2 + [("case", 1)] * 2
                + [("unicorn", 0)] * 3 + [("case", 0)] + [("zzz", 0)])
    await pg.executemany("INSERT INTO events (at, kind, query, results)"
                         " VALUES ($1, 'search', $2, $3)",
                         [(at, q, n) for q, n in searches])
    params = {"from": "1993-03-03", "to": "1993-03-03", "limit": 2}
    report = await get_report(client, settings, "searches", **params)
    assert [(r["list"], r["term"], r["searches"], r["no_result_searches"])
            for r in report["rows"]] == [
        ("top", "phone", 5, 0), ("top", "case", 3, 1),
        ("no_results", "unicorn", 3, 3), ("no_results", "case", 3, 1)]
    assert await get_csv(client, settings, "searches", **params) == [
        as_csv_row(r) for r in report["rows"]]


async def test_zero_result_searches_made_over_http_are_reported(
        client: TestClient, settings: Settings) -> None:
    term = f"qq{tag()}"
    for _ in range(2):
        resp = await client.get("/api/v1/products", params={"q": term})
        assert resp.status == 200 and (await resp.json())["items"] == []
    today = datetime.now(UTC)
    params = {"from": (today - timedelta(hours=1)).isoformat(),
              "to": (today + timedelta(minutes=5)).isoformat(), "limit": 1000}
    found: list[dict[str, object]] = []
    for _ in range(60):  # the sink copies events to PostgreSQL about once a second
        report = await get_report(client, settings, "searches", **params)
        found = [r for r in report["rows"] if r["term"] == term and r["list"] == "no_results"]
        if found:
            break
        await asyncio.sleep(0.1)
    assert [(r["searches"], r["no_result_searches"]) for r in found] == [(2, 2)]


async def test_inventory_report(client: TestClient, settings: Settings,
                                pg: asyncpg.Pool) -> None:
    catalog = await make_catalog(pg, 3, stock=10, sold=0)
    empty, low, plenty = catalog.skus
    await pg.execute("UPDATE skus SET sold = 10 WHERE id = $1", empty)
    await pg.execute("UPDATE skus SET sold = 7 WHERE id = $1", low)
    now = datetime.now(UTC)
    await pg.execute(
        "INSERT INTO flash_sales (sku_id, price, stock, sold, per_user_limit, starts_at,"
        " ends_at, created_by) VALUES ($1, 1, 6, 2, 1, $2, $3, 't'), ($1, 1, 9, 0, 1, $4, $2,"
        " 't')", low, now - timedelta(hours=1), now + timedelta(hours=1),
        now - timedelta(hours=3))
    report = await get_report(client, settings, "inventory", threshold=3,
                              category_id=catalog.category_id)
    assert [(r["state"], r["sku_id"], r["available"], r["flash_sale_reserved"])
            for r in report["rows"]] == [("out_of_stock", empty, 0, 0), ("low_stock", low, 3, 4)]
    assert plenty not in {r["sku_id"] for r in report["rows"]}
    assert (report["out_of_stock"], report["low_stock"]) == (1, 1)
    assert await get_csv(client, settings, "inventory", threshold=3,
                         category_id=catalog.category_id) == [
        as_csv_row(r) for r in report["rows"]]


async def test_logistics_and_after_sales_reports(client: TestClient, settings: Settings,
                                                 pg: asyncpg.Pool) -> None:
    sku = (await make_catalog(pg, 1)).skus[0]
    placed = shanghai(1996, 7, 1, 9)
    now = datetime.now(UTC)
    ages = {"<1h": timedelta(minutes=10), "1-24h": timedelta(hours=5),
            "1-3d": timedelta(days=2), ">3d": None}
    orders = []
    for status, age in [("paid", "<1h"), ("paid", "1-24h"), ("paid", "1-24h"),
                        ("shipped", "1-3d"), ("delivered", "<1h"), ("completed", ">3d"),
                        ("delivered", ">3d"), ("pending_payment", ">3d")]:
        order = Order(new_order_id(), "lg", status, placed, [(sku, 1, 100)])
        step = ages[age]
        if status != "pending_payment":
            order.paid_at, order.paid_amount = placed, 100
        if step is not None:
            order.shipped_at = now - step  # the latest step decides the age
        if status in ("delivered", "completed"):
            order.delivered_at = order.shipped_at or placed
        orders.append(order)
    await insert_orders(pg, orders)
    params = {"from": "1996-07-01", "to": "1996-07-01"}
    logistics = await get_report(client, settings, "logistics", **params)
    got = {(r["status"], r["age"]): r["orders"] for r in logistics["rows"] if r["orders"]}
    assert got == {("paid", "<1h"): 1, ("paid", "1-24h"): 2, ("shipped", "1-3d"): 1,
                   ("delivered", "<1h"): 1, ("completed", ">3d"): 1, ("delivered", ">3d"): 1,
                   ("pending_payment", ">3d"): 1}
    assert logistics["by_status"]["paid"] == 3

    delivered = [o for o in orders if o.status in ("delivered", "completed")]
    requests = [(delivered[0], "return", "too small", "requested"),
                (delivered[1], "refund", "broken", "approved"),
                (delivered[2], "return", "too small", "rejected")]
    await pg.executemany(
        "INSERT INTO after_sales_requests (order_id, user_id, type, reason, status)"
        " VALUES ($1, 'lg', $2, $3, $4)", [(o.order_id, t, r, s) for o, t, r, s in requests])
    report = await get_report(client, settings, "after-sales", **params)
    assert (report["delivered_orders"], report["requests"]) == (3, 3)
    assert report["rate"] == 1.0
    assert report["by_status"] == {"requested": 1, "approved": 1, "rejected": 1}
    assert report["by_type"] == {"return": 2, "refund": 1}
    assert sorted((r["type"], r["reason"], r["status"], r["requests"])
                  for r in report["rows"]) == sorted(
        (t, r, s, 1) for _, t, r, s in requests)
    assert await get_csv(client, settings, "after-sales", **params) == [
        as_csv_row(r) for r in report["rows"]]


async def test_dashboard_page_holds_no_data_and_locks_down_scripts(client: TestClient) -> None:
    resp = await client.get(f"{REPORTS}/dashboard")
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    assert "/sales/chart.svg" in page and "/funnel/chart.svg" in page
    assert "Authorization" in page and "token=" not in page
    policy = resp.headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in policy and "frame-ancestors 'none'" in policy


NAMES = ("sales", "flash-sales", "coupons", "funnel", "searches", "logistics", "after-sales")


@pytest.mark.parametrize("query", [
    {"from": "yesterday"}, {"to": "2024-13-01"}, {"from": "2024-01-01T00:00:00"},
    {"from": "2024-02-01", "to": "2024-01-01"}, {"from": "2020-01-01", "to": "2022-06-01"},
    {"format": "xml"},
])
@pytest.mark.parametrize("name", NAMES)
async def test_bad_periods_are_422(client: TestClient, settings: Settings, name: str,
                                   query: dict[str, str]) -> None:
    resp = await client.get(f"{REPORTS}/{name}", params=query, headers=staff(settings))
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["code"] == "invalid_request"


@pytest.mark.parametrize(("name", "query"), [
    ("sales", {"granularity": "hour"}), ("sales", {"group_by": "brand"}),
    ("searches", {"limit": "0"}), ("inventory", {"threshold": "-1"}),
    ("inventory", {"category_id": "x"}), ("inventory", {"limit": "10001"}),
    ("sales/chart.svg", {"from": "2024-02-01", "to": "2024-01-01"}),
    ("funnel/chart.svg", {"to": "soon"}),
])
async def test_bad_options_are_422(client: TestClient, settings: Settings, name: str,
                                   query: dict[str, str]) -> None:
    resp = await client.get(f"{REPORTS}/{name}", params=query, headers=staff(settings))
    assert resp.status == 422, await resp.text()


@pytest.mark.parametrize("name", [*NAMES, "inventory", "sales/chart.svg", "funnel/chart.svg"])
async def test_reports_are_for_staff_only(client: TestClient, settings: Settings,
                                          name: str) -> None:
    resp = await client.get(f"{REPORTS}/{name}")
    assert resp.status == 401
    resp = await client.get(f"{REPORTS}/{name}", headers=auth(settings, "shopper"))
    assert resp.status == 403
    resp = await client.get(f"{REPORTS}/{name}", params={"token": "x"},
                            headers=auth(settings, "boss", "admin"))
    assert resp.status == 200
