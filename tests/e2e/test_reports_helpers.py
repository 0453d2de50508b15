"""Rows for the report tests, inserted straight into PostgreSQL in periods far in the past (a
different year per test module), so other tests' orders and events never reach the numbers."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp.test_utils import TestClient

from mall.settings import Settings
from tests.stack import auth

SHANGHAI = ZoneInfo("Asia/Shanghai")
KEPT = ("paid", "shipped", "delivered", "completed")
REPORTS = "/api/v1/admin/reports"


def tag() -> str:
    return uuid.uuid4().hex[:10]


def staff(settings: Settings) -> dict[str, str]:
    return auth(settings, "reportstaff", "staff")


async def get_report(client: TestClient, settings: Settings, name: str,
                     **params: Any) -> dict[str, Any]:
    resp = await client.get(f"{REPORTS}/{name}", headers=staff(settings),
                            params={k: str(v) for k, v in params.items()})
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def get_csv(client: TestClient, settings: Settings, name: str,
                  **params: Any) -> list[dict[str, str]]:
    resp = await client.get(f"{REPORTS}/{name}", headers=staff(settings),
                            params={**{k: str(v) for k, v in params.items()}, "format": "csv"})
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/csv"
    return list(csv.DictReader(io.StringIO(await resp.text())))


def as_csv_row(row: dict[str, Any]) -> dict[str, str]:
    """What a JSON row looks like once written to CSV."""
    out = {}
    for k, v in row.items():
        if v is None:
            out[k] = ""
        elif isinstance(v, bool):
            out[k] = "true" if v else "false"
        else:
            out[k] = str(v)
    return out


@dataclass
class Catalog:
    """A category with products, one SKU each."""

    category_id: int
    category_name: str
    skus: list[int] = field(default_factory=list)
    products: list[int] = field(default_factory=list)


async def make_catalog(pg: asyncpg.Pool, n_products: int, stock: int = 1000,
                       sold: int = 0) -> Catalog:
    name = f"reports-{tag()}"
    async with pg.acquire() as conn, conn.transaction():
        category = await conn.fetchval(
            "INSERT INTO categories (name) VALUES ($1) RETURNING id", name)
        catalog = Catalog(int(category), name)
        for i in range(n_products):
            product = await conn.fetchval(
                "INSERT INTO products (name, category_id) VALUES ($1, $2) RETURNING id",
                f"{name} product {i}", category)
            sku = await conn.fetchval(
                "INSERT INTO skus (product_id, price, stock, sold) VALUES ($1, 100, $2, $3)"
                " RETURNING id", product, stock, sold)
            catalog.products.append(int(product))
            catalog.skus.append(int(sku))
    return catalog


@dataclass
class Order:
    order_id: str
    user_id: str
    status: str
    created_at: datetime
    lines: list[tuple[int, int, int]]  # sku, qty, unit price
    paid_at: datetime | None = None
    paid_amount: int | None = None
    refunded: int = 0  # completed refunds
    discount: int = 0
    coupon_ids: list[int] = field(default_factory=list)
    sale_id: int | None = None
    delivered_at: datetime | None = None
    shipped_at: datetime | None = None

    @property
    def goods(self) -> int:
        return sum(qty * price for _, qty, price in self.lines)


async def insert_orders(pg: asyncpg.Pool, orders: list[Order]) -> None:
    async with pg.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO orders (order_id, user_id, sale_id, status, total, created_at, paid_at,"
            " paid_amount, discount, coupon_ids, delivered_at, shipped_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            [(o.order_id, o.user_id, o.sale_id, o.status, max(o.goods - o.discount, 0),
              o.created_at, o.paid_at, o.paid_amount, o.discount, o.coupon_ids,
              o.delivered_at, o.shipped_at) for o in orders])
        await conn.executemany(
            "INSERT INTO order_items (order_id, sku_id, qty, price) VALUES ($1, $2, $3, $4)",
            [(o.order_id, sku, qty, price) for o in orders for sku, qty, price in o.lines])
        # Unpaid orders wait for cash on delivery, so the payment deadline leaves these
        # orders of years ago as they are while the reports read them.
        await conn.executemany(
            "INSERT INTO payments (id, order_id, user_id, provider, amount)"
            " VALUES ($1, $2, $3, 'cod', $4)",
            [(f"cod{o.order_id[-28:]}", o.order_id, o.user_id, max(o.goods - o.discount, 0))
             for o in orders if o.status == "pending_payment"])
        await conn.executemany(
            "INSERT INTO refunds (order_id, source, amount, currency, status, completed_at)"
            " VALUES ($1, 'cancel', $2, 'CNY', 'completed', $3)",
            [(o.order_id, o.refunded, o.paid_at) for o in orders if o.refunded])
        # A refund still owed is not money given back yet: it must not change the numbers.
        await conn.executemany(
            "INSERT INTO refunds (order_id, source, amount, currency)"
            " VALUES ($1, 'after_sales:owed', 1, 'CNY')",
            [(o.order_id,) for o in orders if o.refunded])


def new_order_id() -> str:
    return f"rpt-{uuid.uuid4().hex}"


def shanghai(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
