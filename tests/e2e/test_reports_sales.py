"""The sales report against sums computed here from the generated orders."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.e2e.test_reports_helpers import (
    KEPT,
    Order,
    as_csv_row,
    get_csv,
    get_report,
    insert_orders,
    make_catalog,
    new_order_id,
    shanghai,
    staff,
)

STATUSES = ("pending_payment", "paid", "shipped", "delivered", "completed", "cancelled",
            "refunded")
START = shanghai(1991, 3, 4)  # a Monday
DAYS = 9


SalesData = tuple[list[Order], dict[int, str]]


def half_up(total: int, count: int) -> int:
    return int((Decimal(total) / Decimal(count)).quantize(Decimal(1), ROUND_HALF_UP))


@pytest.fixture(scope="module")
async def sales_data(pg: asyncpg.Pool) -> SalesData:
    """Generated once: every test of this module reads the same week of 1991."""
    return await generated_sales(pg)


async def generated_sales(pg: asyncpg.Pool) -> SalesData:
    rng = random.Random(1991)
    catalog = await make_catalog(pg, 4)
    category_of = {sku: catalog.category_name for sku in catalog.skus}
    orders = []
    for _ in range(150):
        created = START + timedelta(minutes=rng.randrange(DAYS * 24 * 60))
        status = rng.choice(STATUSES)
        lines = [(sku, rng.randint(1, 3), rng.choice((990, 1500, 12_345)))
                 for sku in rng.sample(catalog.skus, rng.randint(1, 3))]
        order = Order(new_order_id(), f"sales-{rng.randrange(40)}", status, created, lines)
        if status not in ("pending_payment",) and (status != "cancelled" or rng.random() < .5):
            # Paid a little later: near midnight this moves an order to the next day.
            order.paid_at = created + timedelta(minutes=rng.randrange(0, 90))
            order.paid_amount = order.goods + 800
            if status in KEPT and rng.random() < 0.2:
                order.refunded = rng.randrange(1, order.paid_amount)
        orders.append(order)
    # Paid in the last minute before a Shanghai midnight, and in the first one after it.
    for at in (START + timedelta(days=1, minutes=-1), START + timedelta(days=1)):
        sku = catalog.skus[0]
        orders.append(Order(new_order_id(), "sales-edge", "completed", at - timedelta(hours=1),
                            [(sku, 1, 5000)], paid_at=at, paid_amount=5000))
    await insert_orders(pg, orders)
    return orders, category_of


def expected_by_day(orders: list[Order], end_day: int) -> dict[str, dict[str, int]]:
    end = START + timedelta(days=end_day)
    days: dict[str, dict[str, int]] = defaultdict(lambda: {"orders": 0, "units": 0,
                                                          "revenue": 0})
    for o in orders:
        if o.status in KEPT and o.paid_at is not None and START <= o.paid_at < end:
            day = days[o.paid_at.astimezone(START.tzinfo).date().isoformat()]
            day["orders"] += 1
            day["units"] += sum(qty for _, qty, _ in o.lines)
            day["revenue"] += (o.paid_amount or 0) - o.refunded
    return dict(days)


async def test_sales_by_day_week_and_month(client: TestClient, settings: Settings,
                                           sales_data: SalesData) -> None:
    orders, _ = sales_data
    # `to` as a date includes that whole day: days 0..6.
    report = await get_report(client, settings, "sales", **{
        "from": "1991-03-04", "to": "1991-03-10", "granularity": "day"})
    expected = expected_by_day(orders, 7)
    assert {r["period"]: {k: r[k] for k in ("orders", "units", "revenue")}
            for r in report["rows"]} == expected
    assert report["timezone"] == "Asia/Shanghai" and report["currency"] == "CNY"
    for r in report["rows"]:
        assert r["average_order_value"] == half_up(r["revenue"], r["orders"])
    revenue = sum(d["revenue"] for d in expected.values())
    count = sum(d["orders"] for d in expected.values())
    assert report["totals"] == {
        "orders": count, "units": sum(d["units"] for d in expected.values()),
        "revenue": revenue, "average_order_value": half_up(revenue, count)}
    assert report["rows"][0]["period"] == "1991-03-04"

    weekly = await get_report(client, settings, "sales", **{
        "from": "1991-03-04", "to": "1991-03-10", "granularity": "week"})
    assert [(r["period"], r["revenue"], r["orders"]) for r in weekly["rows"]] == [
        ("1991-03-04", revenue, count)]
    monthly = await get_report(client, settings, "sales", **{
        "from": "1991-03-04T00:00:00+08:00", "to": "1991-03-13T00:00:00+08:00",
        "granularity": "month"})
    everything = expected_by_day(orders, DAYS)
    assert [(r["period"], r["revenue"], r["orders"]) for r in monthly["rows"]] == [
        ("1991-03-01", sum(d["revenue"] for d in everything.values()),
         sum(d["orders"] for d in everything.values()))]


async def test_sales_by_category_and_product(client: TestClient, settings: Settings,
                                             pg: asyncpg.Pool,
                                             sales_data: SalesData) -> None:
    orders, category_of = sales_data
    # Another category's orders on the same days must stay in their own rows.
    expected: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"orders": 0, "units": 0, "revenue": 0})
    by_sku: dict[int, int] = defaultdict(int)
    end = START + timedelta(days=DAYS)
    for o in orders:
        if o.status not in KEPT or o.paid_at is None or not START <= o.paid_at < end:
            continue
        day = o.paid_at.astimezone(START.tzinfo).date().isoformat()
        for sku, qty, price in o.lines:
            row = expected[(day, category_of[sku])]
            row["units"] += qty
            row["revenue"] += qty * price
            by_sku[sku] += qty * price
        for category in {category_of[sku] for sku, _, _ in o.lines}:
            expected[(day, category)]["orders"] += 1
    category = next(iter(category_of.values()))
    report = await get_report(client, settings, "sales", **{
        "from": "1991-03-04", "to": "1991-03-12", "group_by": "category"})
    mine = {(r["period"], r["category_name"]): {k: r[k] for k in ("orders", "units", "revenue")}
            for r in report["rows"] if r["category_name"] == category}
    assert mine == dict(expected)
    total = await get_report(client, settings, "sales", **{
        "from": "1991-03-04", "to": "1991-03-12", "group_by": "product", "granularity": "all"})
    products = {r["product_id"]: r["revenue"] for r in total["rows"]}
    skus = await pg.fetch("SELECT id, product_id FROM skus WHERE id = ANY($1::bigint[])",
                          list(by_sku))
    assert {s["product_id"]: products[s["product_id"]] for s in skus} == {
        s["product_id"]: by_sku[s["id"]] for s in skus}
    assert {r["period"] for r in total["rows"]} == {"1991-03-04"}


async def test_sales_csv_equals_json(client: TestClient, settings: Settings,
                                     sales_data: SalesData) -> None:
    for params in ({"group_by": "category"}, {"granularity": "day"}):
        query = {"from": "1991-03-04", "to": "1991-03-12", **params}
        report = await get_report(client, settings, "sales", **query)
        rows = await get_csv(client, settings, "sales", **query)
        assert rows == [as_csv_row(r) for r in report["rows"]]
        assert len(rows) > 3


async def test_sales_chart_is_an_svg_with_a_bar_per_day(client: TestClient, settings: Settings,
                                                        sales_data: SalesData) -> None:
    orders, _ = sales_data
    resp = await client.get("/api/v1/admin/reports/sales/chart.svg", params={
        "from": "1991-03-04", "to": "1991-03-10"}, headers=staff(settings))
    assert resp.status == 200
    assert resp.content_type == "image/svg+xml"
    svg = await resp.text()
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    days = expected_by_day(orders, 7)
    assert svg.count("<rect x=") == len(days)
    for day in days:
        assert f">{day}: " in svg
